"""The quantization report: typed per variant, written into the manifest as JSON, and as quantization.md / .png.

The manifest's `artifacts[variant]["report"]` is `QuantizeReport.to_dict()`; its keys are read by
lstm_edge.tolerances.tolerance (`error_profile`), verify, bench and embed (`deployable` on the artifact entry), so
they stay as they were. Reports already in a manifest (from an earlier run) come back through `from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from lstm_edge.config import OUTPUT_NAMES
from lstm_edge.formats import quantize_reference
from lstm_edge.plots import png_bytes, pyplot

# A variant's verdict. "unverified": made and measured for output error, but its task metric could not be measured
# (no task data), so nothing says whether it is good enough; the manifest's `deployable` stays false for it, which
# is what readers that know only `deployable` should assume.
DEPLOYABLE, NOT_DEPLOYABLE, UNVERIFIED = "deployable", "not-deployable", "unverified"

ErrorStats = dict[str, float | None]  # lstm_edge.tolerances.error_stats of one output

# What a stateful bundle without a checkpoint is measured against, appended to measured_on
# (formats.quantize_reference reads "float64" and "streamed" from it).
FLOAT64_REFERENCE = "; error against the fp32 graph in float64 (onnx.reference), streamed and full"


_SCHEMES = {"ort": "ONNX Runtime's dynamic int8", "c": "lstm-edge codegen's int8 C, not this variant's arithmetic"}


@dataclass(kw_only=True)
class Int8AwareTraining:
    """The checkpoint was fine-tuned through simulated int8 (lstm_edge.train.int8_aware): the fp32 baseline moved."""

    epochs: int
    kept_epoch: int
    fp32_test_before: float  # the task metric of the fp32-only model
    fp32_test_after: float  # ... and after the fine-tuning
    scheme: str = "ort"  # whose int8 it simulated: "ort" (this variant's kind) or "c" (lstm-edge codegen's int8 C)


@dataclass(kw_only=True)
class MetricReport:
    """The task metric (MSE in the target's units², or accuracy %) of PyTorch, fp32 ORT and the variant on the
    evaluation data, and the variant's drop against fp32 with its budget. torch/fp32/variant/drop are None when the
    metric was not measured (no task data)."""

    name: str  # "mse" | "accuracy"
    torch: float | None = None
    fp32: float | None = None
    variant: float | None = None
    drop: float | None = None  # relative (MSE: (variant - fp32) / fp32) or accuracy points (fp32 - variant)
    drop_kind: str  # "relative" | "points"
    budget: float
    int8_aware_training: Int8AwareTraining | None = None

    @property
    def measured(self) -> bool:
        """Whether the task metric was measured (there was task data)."""
        return self.variant is not None


@dataclass(kw_only=True)
class Settings:
    """How the variant was made; None where a setting does not apply to its mode."""

    per_channel: bool
    reduce_range: bool = False  # int8 weights in [-64, 64] (lstm_edge.int8_sim.WEIGHT_LEVELS); False in older reports
    method: str | None = None  # static: minmax | entropy | percentile
    calibration_samples: int | None = None  # static
    quantize_state: bool | None = None  # static
    input_equalization: dict | None = None  # dynamic: {x_min, x_max, source} or {"skipped": why}


@dataclass(kw_only=True)
class ParityBound:
    """fp16's fixed bound (tolerances.FP16_ABS) and the worst scaled error measured against PyTorch."""

    tolerance: float
    max_scaled: float


@dataclass(kw_only=True)
class QuantizeReport:
    """What one variant is and what it costs, as measured at quantize time.

    Errors are statistics of each output (y, hn, cn) against fp32 ORT and against PyTorch on the evaluation data;
    error_vs_seq_len is the max |Δ| against fp32 per T in (1, 10, 100, 1000); error_profile is the max scaled error
    against PyTorch per T over zero and random initial states, full and streamed (verify's int8 bound);
    c_error_profile is the same for the int8 C (the c runtime's int8 bound).
    """

    bytes: int
    size_ratio: float  # bytes / fp32 model bytes
    ops_before: dict[str, int] = field(default_factory=dict)
    ops_after: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, list[str]] = field(default_factory=lambda: {"quantized": [], "float": []})
    settings: Settings
    error_vs_fp32: dict[str, ErrorStats]
    error_vs_torch: dict[str, ErrorStats] = field(default_factory=dict)
    metric: MetricReport
    error_vs_seq_len: dict[str, dict[str, float]]
    error_profile: dict[str, dict[str, float]] = field(default_factory=dict)
    # int8 only: the same profile of lstm-edge codegen's int8 C (export/quant_c.py), which the c runtime serves for
    # this variant name with its own arithmetic and is held to instead of ORT's; {} for other variants, a model the
    # C cannot express, and reports written before it (the c runtime then keeps ORT's)
    c_error_profile: dict[str, dict[str, float]] = field(default_factory=dict)
    # what measured c_error_profile: "compiled C (cc -O3 …)", or the simulation where no C compiler was found (and
    # why); the two agree bit for bit (tests/test_quant_c.py). "" where there is no c_error_profile.
    c_measured_with: str = ""
    eval_samples: int = 0
    seconds: float = 0.0  # wall time to make the variant
    parity_bound: ParityBound | None = None  # fp16 only
    deployable: bool
    verdict: str = ""  # DEPLOYABLE | NOT_DEPLOYABLE | UNVERIFIED; "" → from `deployable`
    measured_on: str = ""  # what the evaluation data was

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = DEPLOYABLE if self.deployable else NOT_DEPLOYABLE

    def to_dict(self) -> dict:
        """The manifest's JSON form (asdict), without parity_bound where it does not apply, as before."""
        d = asdict(self)
        if d["parity_bound"] is None:
            del d["parity_bound"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> QuantizeReport:
        """A report read back from a manifest; keys an older lstm-edge did not write take their defaults, unknown
        keys are ignored. Raises KeyError/TypeError when the keys every report has are missing."""
        d = dict(d)
        m = dict(d.pop("metric"))
        aware = m.pop("int8_aware_training", None)
        metric = MetricReport(
            **{k: v for k, v in m.items() if k in _names(MetricReport)},
            int8_aware_training=Int8AwareTraining(**aware) if aware else None,
        )
        raw = d.pop("settings", None) or {"per_channel": True}
        settings = Settings(**{k: v for k, v in raw.items() if k in _names(Settings)})
        bound = d.pop("parity_bound", None)
        rest = {k: v for k, v in d.items() if k in _names(cls)}
        return cls(**rest, metric=metric, settings=settings, parity_bound=ParityBound(**bound) if bound else None)


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _deployable_cell(r: QuantizeReport) -> str:
    return {DEPLOYABLE: "yes", NOT_DEPLOYABLE: "NO", UNVERIFIED: "unverified"}.get(r.verdict, r.verdict)


def _metric_cells(m: MetricReport) -> tuple[str, str]:
    relative = m.drop_kind == "relative"
    budget = f"{m.budget * 100:.1f}%" if relative else f"{m.budget:.1f} pts"
    if not m.measured:
        return f"{m.name} not measured (no data)", f"— ({budget})"
    drop = f"{m.drop * 100:+.2f}%" if relative else f"{m.drop:+.2f} pts"
    return f"{m.name} {m.torch:.4g} / {m.fp32:.4g} / {m.variant:.4g}", f"{drop} ({budget})"


def _max_abs(errors: Mapping[str, ErrorStats], name: str) -> str:
    """The output's max |Δ| as a cell, or — where the graph has no such output (a GRU's cn; a stateless graph)."""
    return f"{errors[name]['max_abs']:.2e}" if name in errors else "—"


def _growth_lines(r: QuantizeReport, state: str) -> list[str]:
    """The state's error against T, each figure naming what it compares against: max |Δ| against the fp32 graph in
    ONNX Runtime (0 where quantize left the output's path in float) and, where measured, the max scaled error
    against quantize's reference (formats.quantize_reference: PyTorch, or the fp32 graph in float64) — what verify
    judges. A trial read the two as one figure: a GRU's 0.00e+00 beside a larger scaled error."""
    growth = ", ".join(f"T={T}: {d[state]:.2e}" for T, d in r.error_vs_seq_len.items())
    same = all(d[state] == 0 for d in r.error_vs_seq_len.values())
    lines = [
        f"  max |Δ{state}| against T, vs the fp32 graph in ONNX Runtime — {growth}"
        + (" (identical: no node on its path was quantized)" if same else "")
    ]
    if r.error_profile and all(state in d for d in r.error_profile.values()):
        scaled = ", ".join(f"T={T}: {d[state]:.2e}" for T, d in r.error_profile.items())
        what, _ = quantize_reference(r.measured_on)
        lines.append(f"  max scaled |Δ{state}| / max(1, |{state}|) against {what} (what verify judges) — {scaled}")
    if r.c_error_profile and all(state in d for d in r.c_error_profile.values()):
        scaled = ", ".join(f"T={T}: {d[state]:.2e}" for T, d in r.c_error_profile.items())
        what, _ = quantize_reference(r.measured_on)
        how = f"measured with the {r.c_measured_with}" if r.c_measured_with else "simulated bit for bit"
        lines.append(
            f"  the int8 C (codegen's scheme, the c runtime's int8; {how}): max scaled "
            f"|Δ{state}| / max(1, |{state}|) against {what} — {scaled}"
        )
    return lines


# Said once under the per-variant notes when a report has a cell state (an LSTM's).
CELL_STATE_NOTE = (
    "Why |Δcn| is large: the cell state c is not squashed by a tanh as h is, so on a long sequence |c| grows to "
    "tens and an absolute error grows with it; the scaled error |Δ| / max(1, |c|), which verify judges, is the "
    "figure to read."
)


def format_report(reports: Mapping[str, QuantizeReport], skipped: Mapping[str, str] | None = None) -> str:
    """quantization.md: one table row per variant, then per-variant notes (nodes, error against T, fp16's bound,
    unverified and skipped variants). Returns Markdown text without a trailing newline; raises nothing."""
    first = next(iter(reports.values()), None)
    reference = "torch" if first is None or quantize_reference(first.measured_on)[0] == "PyTorch" else "float64 graph"
    lines = [
        f"| variant | bytes (× fp32) | metric: {reference} / fp32 / variant | drop (budget) | max abs y / hn / cn | "
        "SQNR y dB | deployable |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, r in reports.items():
        e = r.error_vs_fp32
        metric, drop = _metric_cells(r.metric)
        sqnr = e["y"]["sqnr_db"]
        lines.append(
            f"| {v} | {r.bytes:,} ({r.size_ratio:.3f}) | {metric} | {drop} | {e['y']['max_abs']:.2e} / "
            f"{_max_abs(e, 'hn')} / {_max_abs(e, 'cn')} | "
            f"{'∞' if sqnr is None else f'{sqnr:.1f}'} | "
            f"{_deployable_cell(r)} |"
        )
    lines.append("")
    for v, r in reports.items():
        aware = r.metric.int8_aware_training
        if aware:
            lines.append(
                f"**{v}**: the checkpoint was fine-tuned {aware.epochs} epochs through simulated int8 arithmetic "
                f"({_SCHEMES.get(aware.scheme, aware.scheme)}; kept epoch {aware.kept_epoch}); its fp32 test {r.metric.name} went "
                f"{aware.fp32_test_before:.4g} → {aware.fp32_test_after:.4g}."
            )
        if r.verdict == UNVERIFIED:
            lines.append(
                f"**{v}**: unverified — its output error was measured on {r.measured_on}, but its task metric could "
                "not be, so nothing says whether the loss is acceptable. The manifest marks it `verdict: unverified` "
                "with `deployable: false`; verify still checks its parity and reports it as not deployable. Re-run "
                "`lstm-edge quantize BUNDLE --data FILE` to judge it against the budget."
            )
        eq = r.settings.input_equalization
        if eq and "x_min" in eq:
            lines.append(f"**{v}**: input scaled by range (from {eq['source']}) so one uint8 scale fits every feature.")
        lines.append(
            f"**{v}** quantized nodes: {', '.join(r.nodes['quantized']) or 'none'}; "
            f"float nodes: {', '.join(r.nodes['float']) or 'none'}."
        )
        # a GRU's state is h alone; a whole graph exported from the model's own forward has none: y
        state = next(n for n in ("cn", "hn", "y") if n in r.error_vs_fp32)
        lines += _growth_lines(r, state)
        if r.parity_bound is not None:
            pb = r.parity_bound
            verdict = "within" if pb.max_scaled <= pb.tolerance else "OVER"
            what, how = quantize_reference(r.measured_on)
            lines.append(
                f"  parity vs {what} up to T=1000, {how}: max scaled error {pb.max_scaled:.2e} "
                f"({verdict} the fp16 bound {pb.tolerance:.0e})"
            )
    if any("cn" in r.error_vs_fp32 for r in reports.values()):
        lines += ["", CELL_STATE_NOTE]
    for v, why in (skipped or {}).items():
        lines.append(f"**{v}**: not made — {why}.")
    return "\n".join(lines)


def plot_error_growth(reports: Mapping[str, QuantizeReport]) -> bytes:
    """quantization.png: max |Δ| against fp32 per output (y, hn, cn) over T, log-log, one line per variant.
    Returns the PNG's bytes."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
    for ax, name in zip(axes, OUTPUT_NAMES, strict=True):
        for v, r in reports.items():
            Ts = [int(t) for t in r.error_vs_seq_len]
            if any(name not in d for d in r.error_vs_seq_len.values()):
                continue  # a GRU has no cn
            errs = [max(d[name], 1e-12) for d in r.error_vs_seq_len.values()]
            ax.plot(Ts, errs, marker="o", label=v)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"max |Δ{name}| vs fp32")
        ax.set_xlabel("sequence length T")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Quantization error against sequence length (recurrent error compounds)")
    fig.tight_layout()
    return png_bytes(fig, dpi=90)

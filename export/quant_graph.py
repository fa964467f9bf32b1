"""int8 and fp16 of a whole-graph bundle: one whose graph carries no state I/O (manifest `streaming: false`) — the
user's own forward exported by torch.onnx (the fallback route: a norm, a conv front-end, an autoencoder, attention
around an LSTM), or a stateless import.

What is made (onnxruntime 1.32):
- int8 (dynamic): `onnxruntime.quantization.quantize_dynamic` of the whole graph, op types LSTM, MatMul and Conv
  (Gemm is rewritten by ORT to MatMul + Add first): an LSTM whose W and R are plain initializers in ONNX gate order
  becomes com.microsoft::DynamicQuantizeLSTM, a MatMul MatMulInteger, a Conv ConvInteger. ORT has no int8 GRU
  kernel: a GRU stays float32, and the report lists every float node by name.
- fp16: onnxruntime.transformers.float16 (inputs and outputs stay float32), sorted topologically.
- static int8 is not made: its calibration reader feeds the seed form's x, h0, c0.

Each variant is measured against the fp32 graph evaluated in float64 (onnx.reference; the reference verify uses
for such a bundle) at T ∈ ERROR_VS_T from zero state, whole sequences only (there is no state to carry), and against
fp32 ONNX Runtime. With task data (--data) its task metric is measured too and the verdict is deployable or
not-deployable against the budget; without, "unverified" (fp16 over its fixed bound: not-deployable either way).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from lstm_edge.bundle import Bundle, variant_for_mode
from lstm_edge.data import TaskSpec, held_out, metric, model_inputs
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.export.quant_bundle import QuantizeResult, quantize_result, write_variants
from lstm_edge.export.quant_config import QuantizeConfig
from lstm_edge.export.quant_measure import ERROR_VS_T, node_roles, op_counts
from lstm_edge.export.quant_ort import make_variant, quantize_dynamic_graph
from lstm_edge.export.quant_report import (
    DEPLOYABLE,
    NOT_DEPLOYABLE,
    UNVERIFIED,
    MetricReport,
    ParityBound,
    QuantizeReport,
    Settings,
)
from lstm_edge.export.validate import ort_cpu_session, probe_ort_cpu
from lstm_edge.forms import FORMS
from lstm_edge.onnx_io import load_onnx_checked
from lstm_edge.progress import stage
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.tolerances import (
    ACCURACY_POINTS_DROP,
    FP16_ABS,
    MSE_RELATIVE_DROP,
    error_stats,
    metric_drop,
    scaled_error,
)

STATIC_WHOLE_GRAPH = FORMS["fallback"].refused_by["quantize:static"]
PROBE_T = 100  # the probe sequences' length where there is no task data
NO_EQUALIZATION = {"skipped": "input equalization rescales the seed form's first LSTM only"}


@dataclass
class _Graph:
    """The fp32 graph of a whole-graph bundle and what every variant is compared with."""

    path: Path
    proto: onnx.ModelProto
    inputs: list[str]  # the graph's own input names (x; lengths where it takes them)
    outputs: list[str]
    reference: object  # feeds → {output: float64 array}: the fp32 graph in float64 (onnx.reference)
    session: object  # fp32 ONNX Runtime
    feeds: dict[str, np.ndarray]  # the evaluation inputs (task data or probes)
    y: np.ndarray | None  # the task's targets, None without data
    source: str
    ref_out: list[np.ndarray]
    fp32_out: list[np.ndarray]
    metric: MetricReport


def whole_graph(bundle: Bundle) -> bool:
    """Whether `bundle` takes the whole-graph route here: its graph has no state input (manifest io without h0)."""
    return not bundle.stateful


def _plan(cfg: QuantizeConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """The modes to make and the variants skipped with why; raises LstmEdgeError for --mode static."""
    if cfg.mode == "all":
        return ("dynamic", "fp16"), {variant_for_mode("static").name: STATIC_WHOLE_GRAPH}
    mode = variant_for_mode(cfg.mode).mode
    if mode == "static":
        raise LstmEdgeError(STATIC_WHOLE_GRAPH, "quantize with --mode dynamic or --mode fp16")
    return (mode,), {}


def _run(session, names: list[str], feeds: dict[str, np.ndarray], what: str) -> list[np.ndarray]:
    """session.run, its failure one line (a data file whose width or dtype the graph does not take)."""
    try:
        return session.run(names, feeds)
    except Exception as e:  # ORT raises its own types
        raise LstmEdgeError(
            f"{what} does not run on the evaluation data ({first_line(e, 160)})",
            "pass --data with the inputs the model takes ([N, T, F] as at export)",
        ) from e


def _reference(evaluate, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    out = evaluate(feeds)
    return [out[n] for n in names]


def _eval_feeds(bundle: Bundle, cfg: QuantizeConfig, inputs: list[str]):
    """(feeds, targets or None, source line): the task's held-out data where --data is given, else probes."""
    config = bundle.config
    n = min(cfg.eval_samples, 256)
    spec = TaskSpec.recorded(config.task, None, cfg.data)
    if spec.has_data:
        X, y = held_out(spec, "test", n)
        if not config.batch_first and X.ndim >= 2:
            X = np.swapaxes(X, 0, 1)
        x = X.astype(np.int64) if config.vocab_size else X.astype(np.float32)
        return {inputs[0]: x}, y, f"{len(X)} held-out sequences of the task ({spec.data or spec.task})"
    x = model_inputs(config, n, PROBE_T, False, seed=11)[0]
    return (
        {inputs[0]: x},
        None,
        (
            f"{n} probe sequences of T={PROBE_T} of the model's own inputs, zero state (no task data: pass --data to "
            "measure the task metric)"
        ),
    )


def _baseline(bundle: Bundle, cfg: QuantizeConfig) -> _Graph:
    """The fp32 graph, its float64 evaluation and its ORT run on the evaluation data, and the metric budget."""
    path = bundle.artifact("fp32")
    load_onnx_checked(path)  # external data outside the bundle or through a symlink: one line, never read
    proto = onnx.load(str(path))
    inputs, outputs = [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    if len(inputs) != 1:
        raise LstmEdgeError(
            f"the graph takes {len(inputs)} inputs ({', '.join(inputs)}); quantize measures a whole graph on x alone",
            "quantize a bundle whose graph takes x alone, or export it with state I/O",
        )
    feeds, y, source = _eval_feeds(bundle, cfg, inputs)
    evaluate, session = evaluator(proto), ort_cpu_session(path.read_bytes())
    fp32_out = _run(session, outputs, feeds, "the fp32 graph")
    ref_out = _reference(evaluate, outputs, feeds)
    kind = bundle.config.kind
    classify = kind == "classification"
    budget = cfg.max_metric_drop
    if budget is None:
        budget = ACCURACY_POINTS_DROP if classify else MSE_RELATIVE_DROP
    m = MetricReport(name="accuracy" if classify else "mse", drop_kind="points" if classify else "relative",
                     budget=budget)  # fmt: skip
    if y is not None:
        if fp32_out[0].shape[: y.ndim] != y.shape[: fp32_out[0].ndim] and kind != "classification":
            raise LstmEdgeError(
                f"the data's targets have shape {y.shape} but the model gives {fp32_out[0].shape}",
                "pass --data whose y matches the model's output",
            )
        m = replace(m, torch=metric(kind, ref_out[0], y)[1], fp32=metric(kind, fp32_out[0], y)[1])
    return _Graph(path, proto, inputs, outputs, evaluate, session, feeds, y, source, ref_out, fp32_out, m)


def _error_vs_t(session, base: _Graph, config) -> tuple[dict, dict]:
    """Per T in ERROR_VS_T: max |Δ| against fp32 ORT and max scaled error against the float64 fp32 graph, whole
    sequences from zero state (the profile verify and the self-check hold the variant to)."""
    vs_fp32, profile = {}, {}
    for T in ERROR_VS_T:
        feeds = {base.inputs[0]: model_inputs(config, 16 if T <= 100 else 4, T, False, seed=99 + T)[0]}
        got = _run(session, base.outputs, feeds, "the variant")
        fp32 = _run(base.session, base.outputs, feeds, "the fp32 graph")
        ref = _reference(base.reference, base.outputs, feeds)
        vs_fp32[str(T)] = {n: float(np.abs(a - b).max()) for n, a, b in zip(base.outputs, got, fp32, strict=True)}
        profile[str(T)] = {n: float(scaled_error(a, r).max()) for n, a, r in zip(base.outputs, got, ref, strict=True)}
    return vs_fp32, profile


def _measure(variant: str, dst: Path, base: _Graph, config, cfg: QuantizeConfig, seconds: float) -> QuantizeReport:
    """The variant run on the evaluation data and at every T; judged against the budget (and fp16 its bound)."""
    probe_ort_cpu(dst, f"the new {variant} variant")  # a native crash becomes one line, not exit 139
    session = ort_cpu_session(dst.read_bytes())
    out = _run(session, base.outputs, base.feeds, f"the {variant} variant")
    m = base.metric
    if base.y is not None:
        value = metric(config.kind, out[0], base.y)[1]
        m = replace(m, variant=value, drop=metric_drop(config.kind, m.fp32, value)[0])
    growth, profile = _error_vs_t(session, base, config)
    bound = None
    within = m.drop <= m.budget if m.measured else True
    if variant == "fp16":  # held to its fixed parity bound at every T
        bound = ParityBound(tolerance=FP16_ABS, max_scaled=max(v for errs in profile.values() for v in errs.values()))
        within = within and bound.max_scaled <= FP16_ABS
    verdict = NOT_DEPLOYABLE if not within else DEPLOYABLE if m.measured else UNVERIFIED
    qmodel = onnx.load(str(dst))
    size = dst.stat().st_size
    return QuantizeReport(
        bytes=size,
        size_ratio=size / base.path.stat().st_size,
        ops_before=op_counts(base.proto),
        ops_after=op_counts(qmodel),
        nodes=node_roles(qmodel),
        settings=Settings(
            per_channel=cfg.per_channel,
            reduce_range=cfg.reduce_range if variant != "fp16" else False,
            input_equalization=NO_EQUALIZATION if variant != "fp16" else None,
        ),
        error_vs_fp32={n: error_stats(a, b) for n, a, b in zip(base.outputs, out, base.fp32_out, strict=True)},
        error_vs_torch={n: error_stats(a, b) for n, a, b in zip(base.outputs, out, base.ref_out, strict=True)},
        metric=m,
        error_vs_seq_len=growth,
        error_profile=profile,
        eval_samples=len(next(iter(base.feeds.values()))),
        seconds=seconds,
        parity_bound=bound,
        deployable=verdict == DEPLOYABLE,
        verdict=verdict,
        measured_on=f"{base.source}; error against the fp32 graph in float64 (onnx.reference)",
    )


def quantize_graph(bundle: Bundle, cfg: QuantizeConfig) -> QuantizeResult:
    """quantize_bundle for a whole-graph bundle (see the module docstring): dynamic int8 and fp16 of the whole graph,
    measured against its fp32 graph in float64, written into the bundle with their reports.

    Returns QuantizeResult (static int8 skipped with why under --mode all). Raises LstmEdgeError (exit 2, nothing
    written) for --mode static, a graph that takes more than x, data the graph does not take, or a variant ORT
    cannot load."""
    modes, skipped = _plan(cfg)
    stage("quantize: the fp32 graph in float64 on the evaluation data", cfg.progress)
    base = _baseline(bundle, cfg)
    reports: dict[str, QuantizeReport] = {}
    with tempfile.TemporaryDirectory() as tmp:
        made: dict[str, Path] = {}
        for mode in modes:
            v = variant_for_mode(mode)
            dst = made[v.name] = Path(tmp) / v.file
            stage(f"quantize {v.name}: making it", cfg.progress)
            seconds = make_variant(mode, base.path, dst, cfg, quantize_dynamic_graph)
            stage(f"quantize {v.name}: error against the float64 graph at T = {ERROR_VS_T}", cfg.progress)
            reports[v.name] = _measure(v.name, dst, base, bundle.config, cfg, seconds)
        write_variants(bundle, made, reports, skipped)
    return quantize_result(bundle, reports, skipped)

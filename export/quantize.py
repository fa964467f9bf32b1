"""int8 and fp16 variants through onnxruntime.quantization, with a report of what got quantized and what it cost.

- int8 (dynamic): every LSTM becomes com.microsoft::DynamicQuantizeLSTM, the head's MatMul becomes integer ops.
- int8-static (QDQ): calibrated on real task data. ORT's static path has no LSTM kernel, so the LSTMs stay float;
  only the head is quantized. The state outputs hn/cn never pass through Q/DQ unless asked (quantize_state).
- fp16: weights and arithmetic in fp16 for GPUs; inputs and outputs stay float32.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from tqdm.auto import tqdm

from lstm_edge.atomic import staged_dir
from lstm_edge.bundle import QUANTIZE_MODES, Bundle, variant_for_mode
from lstm_edge.bundle import variant as bundle_variant
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint
from lstm_edge.config import OUTPUT_NAMES as OUTPUTS
from lstm_edge.data import TASKS, adding_problem, held_out, load_task, metric, probe_inputs
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.export.graph import build_onnx
from lstm_edge.export.manifest import artifact_entry, write_manifest
from lstm_edge.export.validate import ort_cpu_session
from lstm_edge.model import run_numpy
from lstm_edge.tolerances import (
    ACCURACY_POINTS_DROP,
    FP16_ABS,
    FP32_ABS,
    MSE_RELATIVE_DROP,
    error_stats,
    scaled_error,
)

ERROR_VS_T = (1, 10, 100, 1000)


@dataclass
class QuantizeConfig:
    mode: str = "all"  # dynamic | static | fp16 | all
    calibration_samples: int = 256
    method: str = "minmax"  # minmax | entropy | percentile
    per_channel: bool = True  # measured better on LSTM weights (see the README's quantization table)
    # Weights in [-64, 64]: without it ORT's u8×s8 kernels saturate on x86 CPUs without VNNI, so the same int8 file
    # gives 13× its fp32 MSE there (measured; see lstm_edge.int8_sim.WEIGHT_LEVELS) and a verdict that depends on
    # the CPU it was measured on.
    reduce_range: bool = True
    max_metric_drop: float | None = None  # None: 5% relative for MSE, 0.5 points for accuracy
    data: str | None = None
    quantize_state: bool = False
    eval_samples: int = 512
    progress: bool = True


@dataclass
class QuantizeResult:
    bundle: Path
    reports: dict[str, dict]
    seconds: dict[str, float]

    @property
    def over_budget(self) -> list[str]:
        return [v for v, r in self.reports.items() if not r["deployable"]]


def _op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(n.op_type for n in model.graph.node))


def _task_data(config, training: dict, cfg: QuantizeConfig, part: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibration ('train') or evaluation ('test') data of the checkpoint's own task, or of --data."""
    seq_len = int((training.get("config") or {}).get("seq_len") or 100)
    seed = int(training.get("seed") or 0)
    if config.task == "adding" and cfg.data is None:
        return adding_problem(n, seq_len, seed + (2_000_003 if part == "train" else 1_000_003))
    if part == "test":
        return held_out(config.task, seq_len, n, seed, cfg.data)
    if config.task not in TASKS and cfg.data is None:
        raise LstmEdgeError(
            f"static quantization needs calibration data, and the model's task {config.task!r} is not built in",
            "pass the data it was trained on with --data FILE (.npz or .csv)",
        )
    X, y = load_task(config.task, seq_len=seq_len, seed=seed, data=cfg.data).split("train")
    return X[:n], y[:n]


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over task data, with a progress bar."""

    def __init__(self, X: np.ndarray, layers: int, hidden: int, progress: bool, batch: int = 16) -> None:
        self._batches = [X[i : i + batch] for i in range(0, len(X), batch)]
        self._bar = tqdm(total=len(X), desc="calibrate", unit="seq", disable=not progress)
        self._it = iter(self._batches)
        self._shape = (layers, hidden)

    def get_next(self):
        xb = next(self._it, None)
        if xb is None:
            self._bar.close()
            return None
        self._bar.update(len(xb))
        h = np.zeros((self._shape[0], len(xb), self._shape[1]), np.float32)
        return {"x": xb, "h0": h, "c0": h.copy()}

    def rewind(self) -> None:
        self._it = iter(self._batches)


@contextlib.contextmanager
def _quiet_ort_advice():
    """ORT logs 'consider pre-processing' on the root logger for every call; that advice is for CNNs."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _input_ranges(config, training: dict, cfg: QuantizeConfig) -> dict | None:
    """Per-feature input range for input equalization: the training data's (recorded in the config by
    `lstm-edge train`), else the calibration data's; None where neither exists (a custom task without --data)."""
    if config.x_min and config.x_max and cfg.data is None:
        return {"x_min": list(config.x_min), "x_max": list(config.x_max), "source": "training data (checkpoint config)"}
    try:
        X = _task_data(config, training, cfg, "train", cfg.calibration_samples)[0]
    except LstmEdgeError:
        return None
    flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
    return {"x_min": flat.min(0).tolist(), "x_max": flat.max(0).tolist(), "source": "calibration data"}


def _equalized_fp32(model, fp32_path: Path, fp32_session, ranges: dict, dst: Path, X: np.ndarray) -> None:
    """The fp32 graph rebuilt with range-equalized input (model.equalize_input): same function, checked here."""
    source = onnx.load(str(fp32_path), load_external_data=False)
    opset = next(o.version for o in source.opset_import if o.domain in ("", "ai.onnx"))
    twin = model.input_equalized(ranges["x_min"], ranges["x_max"])
    keep = {p.key: p.value for p in source.metadata_props if p.key not in ("config", "normalization")}
    keep["normalization"] = json.dumps({k: getattr(twin.config, k) for k in ("x_mean", "x_std", "y_mean", "y_std")})
    keep["input_equalization"] = json.dumps(ranges)
    dst.write_bytes(build_onnx(twin, opset=opset, metadata=keep).SerializeToString())
    L, H = model.config.num_layers, model.config.hidden_size
    got, want = _run(ort_cpu_session(dst.read_bytes()), X, L, H), _run(fp32_session, X, L, H)
    worst = max(float(scaled_error(a, b).max()) for a, b in zip(got, want, strict=True))
    if worst > FP32_ABS:
        raise LstmEdgeError(
            f"the input-equalized graph differs from model.onnx by {worst:.1e} (bound {FP32_ABS:.0e})",
            "re-export the bundle from its checkpoint; report this if it persists",
        )


def _quantize_dynamic(src: Path, dst: Path, cfg: QuantizeConfig) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=["LSTM", "MatMul"],
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        weight_type=QuantType.QInt8,
    )
    q = onnx.load(str(dst))
    n_lstm = _op_counts(onnx.load(str(src))).get("LSTM", 0)
    if _op_counts(q).get("DynamicQuantizeLSTM", 0) != n_lstm:
        raise LstmEdgeError(
            "onnxruntime did not turn every LSTM into DynamicQuantizeLSTM",
            "the LSTM weights must be plain initializers in ONNX gate order: re-export the bundle",
        )


def _quantize_static(src: Path, dst: Path, cfg: QuantizeConfig, X_cal: np.ndarray, config) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cfg.method]
    # LSTM has no static int8 kernel; quantizing Concat/Squeeze/Slice would fake-quantize the carried state.
    ops = ["MatMul", "Gemm"] + (["Concat", "Squeeze", "Slice"] if cfg.quantize_state else [])
    reader = _Calibration(X_cal, config.num_layers, config.hidden_size, cfg.progress)
    quantize_static(
        src,
        dst,
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=ops,
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        extra_options={"ActivationSymmetric": False},
    )


def _to_fp16(src: Path, dst: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def _node_roles(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Which compute nodes run quantized and which stay float (Q/DQ and casts themselves are plumbing)."""
    produced_by_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    integer_ops = {
        "DynamicQuantizeLSTM",
        "MatMulInteger",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "QLinearMatMul",
    }
    plumbing = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "Identity"}
    quantized, float_ = [], []
    for n in model.graph.node:
        if n.op_type in plumbing:
            continue
        label = f"{n.name or n.output[0]} ({n.op_type})"
        if n.op_type in integer_ops or any(i in produced_by_dq for i in n.input[:2] if n.op_type in ("MatMul", "Gemm")):
            quantized.append(label)
        else:
            float_.append(label)
    return {"quantized": quantized, "float": float_}


def _errors(got: list[np.ndarray], want: list[np.ndarray]) -> dict:
    return {name: error_stats(a, b) for name, a, b in zip(OUTPUTS, got, want, strict=True)}


def _run(session, X: np.ndarray, layers: int, hidden: int, batch: int = 256) -> list[np.ndarray]:
    parts = []
    for i in range(0, len(X), batch):
        xb = X[i : i + batch]
        h = np.zeros((layers, len(xb), hidden), np.float32)
        parts.append(session.run(list(OUTPUTS), {"x": xb, "h0": h, "c0": h}))
    return [np.concatenate([p[k] for p in parts], axis=0 if k == 0 else 1) for k in range(3)]


def _error_growth(session, fp32_session, model, config) -> tuple[dict, dict]:
    """Per T: the variant's max |Δ| against fp32 ORT (the plot), and its max scaled error against PyTorch over
    zero and random initial states, full-sequence and streamed one step per call (the profile verify holds the
    variant to). Streaming matters: a variant whose state I/O is rounded (fp16) drifts with every call."""
    vs_fp32, profile = {}, {}
    for T in ERROR_VS_T:
        worst_abs = dict.fromkeys(OUTPUTS, 0.0)
        worst_scaled = dict.fromkeys(OUTPUTS, 0.0)
        for random_state in (False, True):
            x, h0, c0 = probe_inputs(config, 64 if T <= 100 else 16, T, random_state, seed=99 + T)
            feeds = {"x": x, "h0": h0, "c0": c0}
            got, fp32 = session.run(list(OUTPUTS), feeds), fp32_session.run(list(OUTPUTS), feeds)
            ref = run_numpy(model, x, h0, c0)
            for name, a, b, r in zip(OUTPUTS, got, fp32, ref, strict=True):
                worst_abs[name] = max(worst_abs[name], float(np.abs(a - b).max()))
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        if T >= 10:
            x, h, c = probe_inputs(config, 16, T, True, seed=7 + T)
            ref = run_numpy(model, x, h, c)
            ys = []
            for t in range(T):
                y, h, c = session.run(list(OUTPUTS), {"x": x[:, t : t + 1], "h0": h, "c0": c})
                ys.append(y)
            if y.ndim == 3:  # a head on every step: the streamed outputs, in order, are the sequence's y
                y = np.concatenate(ys, axis=1)  # (B, T, O)
            for name, a, r in zip(OUTPUTS, (y, h, c), ref, strict=True):
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        vs_fp32[str(T)], profile[str(T)] = worst_abs, worst_scaled
    return vs_fp32, profile


def quantize_bundle(bundle_path: str | Path, cfg: QuantizeConfig | None = None) -> QuantizeResult:
    """Make the requested variants, measure them, and add them (with the report) to the bundle atomically."""
    cfg = cfg or QuantizeConfig()
    modes = QUANTIZE_MODES if cfg.mode == "all" else (variant_for_mode(cfg.mode).mode,)
    if cfg.method not in ("minmax", "entropy", "percentile"):
        raise LstmEdgeError(f"unknown --method {cfg.method!r}", "choose minmax, entropy or percentile")
    if cfg.calibration_samples < 1 or cfg.eval_samples < 1:
        raise LstmEdgeError("sample counts must be ≥ 1", "pass a positive --calibration-samples")
    bundle = Bundle.open(bundle_path)
    fp32_path = bundle.artifact("fp32")
    ckpt = bundle.checkpoint()
    config = bundle.config
    payload = read_checkpoint(ckpt)
    training = payload.get("training") or {}
    int8_aware = (payload.get("metrics") or {}).get("int8_aware")
    model, _ = load_checkpoint(ckpt)
    L, H = config.num_layers, config.hidden_size

    X_eval, y_eval = _task_data(config, training, cfg, "test", cfg.eval_samples)
    X_cal = _task_data(config, training, cfg, "train", cfg.calibration_samples)[0] if "static" in modes else None
    h0 = np.zeros((L, len(X_eval), H), np.float32)
    torch_out = list(run_numpy(model, X_eval, h0, h0))
    fp32_session = ort_cpu_session(fp32_path.read_bytes())
    fp32_out = _run(fp32_session, X_eval, L, H)
    kind = config.kind
    metric_name, torch_metric = metric(kind, torch_out[0], y_eval)
    _, fp32_metric = metric(kind, fp32_out[0], y_eval)
    budget = (
        cfg.max_metric_drop
        if cfg.max_metric_drop is not None
        else (ACCURACY_POINTS_DROP if kind == "classification" else MSE_RELATIVE_DROP)
    )
    fp32_ops = _op_counts(onnx.load(str(fp32_path)))
    ranges = _input_ranges(config, training, cfg) if "dynamic" in modes else None

    reports: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        made: dict[str, Path] = {}
        for mode in modes:
            variant = variant_for_mode(mode).name
            dst = Path(tmp) / variant_for_mode(mode).file
            start = time.perf_counter()
            with _quiet_ort_advice():
                if mode == "dynamic":
                    src = fp32_path
                    if ranges is not None:
                        src = Path(tmp) / "model.equalized.onnx"
                        _equalized_fp32(model, fp32_path, fp32_session, ranges, src, X_eval[:64])
                    _quantize_dynamic(src, dst, cfg)
                elif mode == "static":
                    _quantize_static(fp32_path, dst, cfg, X_cal, config)
                else:
                    _to_fp16(fp32_path, dst)
            seconds[variant] = time.perf_counter() - start
            session = ort_cpu_session(dst.read_bytes())
            out = _run(session, X_eval, L, H)
            _, m = metric(kind, out[0], y_eval)
            drop = (m - fp32_metric) / fp32_metric if kind == "regression" else fp32_metric - m
            qmodel = onnx.load(str(dst))
            growth, profile = _error_growth(session, fp32_session, model, config)
            reports[variant] = {
                "bytes": dst.stat().st_size,
                "size_ratio": dst.stat().st_size / fp32_path.stat().st_size,
                "ops_before": fp32_ops,
                "ops_after": _op_counts(qmodel),
                "nodes": _node_roles(qmodel),
                "settings": {
                    "per_channel": cfg.per_channel,
                    "reduce_range": cfg.reduce_range,
                    "method": cfg.method if mode == "static" else None,
                    "calibration_samples": cfg.calibration_samples if mode == "static" else None,
                    "quantize_state": cfg.quantize_state if mode == "static" else None,
                    "input_equalization": (ranges or {"skipped": "no training ranges or calibration data"})
                    if mode == "dynamic"
                    else None,
                },
                "error_vs_fp32": _errors(out, fp32_out),
                "error_vs_torch": _errors(out, torch_out),
                "metric": {
                    "name": metric_name,
                    "torch": torch_metric,
                    "fp32": fp32_metric,
                    "variant": m,
                    "drop": drop,
                    "drop_kind": "relative" if kind == "regression" else "points",
                    "budget": budget,
                    # The fp32 baseline itself moved when the checkpoint was fine-tuned for int8: say from where.
                    "int8_aware_training": None
                    if int8_aware is None
                    else {
                        "epochs": int8_aware["epochs"],
                        "kept_epoch": int8_aware["kept_epoch"],
                        "fp32_test_before": int8_aware["fp32_only"][f"test_{metric_name}"],
                        "fp32_test_after": int8_aware["test_fp32"],
                    },
                },
                "error_vs_seq_len": growth,
                "error_profile": profile,
                "eval_samples": len(X_eval),
                "seconds": seconds[variant],
            }
            within = drop <= budget
            if variant == "fp16":  # fp16 is also held to its fixed parity bound at every T, streamed or not
                worst = max(v for errs in profile.values() for v in errs.values())
                reports[variant]["parity_bound"] = {"tolerance": FP16_ABS, "max_scaled": worst}
                within = within and worst <= FP16_ABS
            reports[variant]["deployable"] = bool(within)
            made[variant] = dst
        _write(bundle, made, reports)
    result = QuantizeResult(bundle.root, reports, seconds)
    if result.over_budget:
        raise ParityError(
            f"{', '.join(result.over_budget)} exceed the metric budget (or, for fp16, its parity bound); kept in the "
            "bundle but marked not deployable",
            "see quantization.md in the bundle; deploy fp32 or a deployable variant, or accept the loss with a larger --max-metric-drop",
            report=format_report(reports),
        )
    return result


def _write(bundle: Bundle, made: dict[str, Path], reports: dict[str, dict]) -> None:
    with staged_dir(bundle.root, copy_existing=True) as stage:
        manifest = json.loads(json.dumps(bundle.manifest))
        for variant, src in made.items():
            v = bundle_variant(variant)
            (stage / v.file).write_bytes(src.read_bytes())
            manifest["artifacts"][variant] = artifact_entry(
                stage,
                v.file,
                v.precision,
                manifest["artifacts"]["fp32"].get("opset"),
                deployable=reports[variant]["deployable"],
                report=reports[variant],
            )
        all_reports = {v: e["report"] for v, e in manifest["artifacts"].items() if "report" in e}
        (stage / "quantization.md").write_text(format_report(all_reports) + "\n")
        buf = io.BytesIO()
        plot_error_growth(all_reports, buf)
        (stage / "quantization.png").write_bytes(buf.getvalue())
        manifest["artifacts"]["quantization_report"] = artifact_entry(stage, "quantization.md", "text")
        manifest["artifacts"]["quantization_plot"] = artifact_entry(stage, "quantization.png", "image")
        write_manifest(stage, manifest)


def format_report(reports: dict[str, dict]) -> str:
    lines = [
        "| variant | bytes (× fp32) | metric: torch / fp32 / variant | drop (budget) | max abs y / hn / cn | "
        "SQNR y dB | deployable |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, r in reports.items():
        m, e = r["metric"], r["error_vs_fp32"]
        drop = f"{m['drop'] * 100:+.2f}%" if m["drop_kind"] == "relative" else f"{m['drop']:+.2f} pts"
        budget = f"{m['budget'] * 100:.1f}%" if m["drop_kind"] == "relative" else f"{m['budget']:.1f} pts"
        sqnr = e["y"]["sqnr_db"]
        lines.append(
            f"| {v} | {r['bytes']:,} ({r['size_ratio']:.3f}) | {m['name']} {m['torch']:.4g} / {m['fp32']:.4g} / "
            f"{m['variant']:.4g} | {drop} ({budget}) | {e['y']['max_abs']:.2e} / {e['hn']['max_abs']:.2e} / "
            f"{e['cn']['max_abs']:.2e} | {'∞' if sqnr is None else f'{sqnr:.1f}'} | {'yes' if r['deployable'] else 'NO'} |"
        )
    lines.append("")
    for v, r in reports.items():
        aware = r["metric"].get("int8_aware_training")
        if aware:
            lines.append(
                f"**{v}**: the checkpoint was fine-tuned {aware['epochs']} epochs through simulated int8 arithmetic "
                f"(kept epoch {aware['kept_epoch']}); its fp32 test {r['metric']['name']} went "
                f"{aware['fp32_test_before']:.4g} → {aware['fp32_test_after']:.4g}."
            )
        eq = (r.get("settings") or {}).get("input_equalization")
        if eq and "x_min" in eq:
            lines.append(f"**{v}**: input scaled by range (from {eq['source']}) so one uint8 scale fits every feature.")
        lines.append(
            f"**{v}** quantized nodes: {', '.join(r['nodes']['quantized']) or 'none'}; "
            f"float nodes: {', '.join(r['nodes']['float']) or 'none'}."
        )
        growth = ", ".join(f"T={T}: {d['cn']:.2e}" for T, d in r["error_vs_seq_len"].items())
        lines.append(f"  max |Δcn| against T — {growth}")
        if "parity_bound" in r:
            pb = r["parity_bound"]
            verdict = "within" if pb["max_scaled"] <= pb["tolerance"] else "OVER"
            lines.append(
                f"  parity vs PyTorch up to T=1000, streamed and full: max scaled error {pb['max_scaled']:.2e} "
                f"({verdict} the fp16 bound {pb['tolerance']:.0e})"
            )
    return "\n".join(lines)


def plot_error_growth(reports: dict[str, dict], out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
    for ax, name in zip(axes, OUTPUTS, strict=True):
        for v, r in reports.items():
            Ts = [int(t) for t in r["error_vs_seq_len"]]
            errs = [max(d[name], 1e-12) for d in r["error_vs_seq_len"].values()]
            ax.plot(Ts, errs, marker="o", label=v)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"max |Δ{name}| vs fp32")
        ax.set_xlabel("sequence length T")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Quantization error against sequence length (recurrent error compounds)")
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)

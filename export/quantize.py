"""int8 and fp16 variants through onnxruntime.quantization, measured, and written into the bundle.

- int8 (dynamic): every LSTM becomes com.microsoft::DynamicQuantizeLSTM, the head's MatMul becomes integer ops.
- int8-static (QDQ): calibrated on real task data. ORT's static path has no LSTM kernel, so the LSTMs stay float;
  only the head is quantized. The state outputs hn/cn never pass through Q/DQ unless asked (quantize_state).
- fp16: weights and arithmetic in fp16 for GPUs; inputs and outputs stay float32.

This module holds the ORT calls, the measurements and the bundle writing; the data it measures and calibrates on
lives in export/calibration.py, the typed report with its Markdown and plot in export/quant_report.py.

Without task data (a model whose task is not built in, and no --data), dynamic int8 and fp16 are still made and
measured for output error on probe inputs; their task metric is not measured and their verdict is "unverified".
Static int8 cannot be calibrated without data: asked for alone it is refused, under --mode all it is skipped.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from lstm_edge import limits
from lstm_edge.bundle import QUANTIZE_MODES, Bundle, variant_for_mode
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint
from lstm_edge.config import C0, CN, H0, HN, ModelConfig, X, Y, is_seed_form
from lstm_edge.data import TaskSpec, metric
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.export.calibration import (
    EvalData,
    calibration_inputs,
    evaluation_data,
    input_ranges,
)
from lstm_edge.export.graph import build_onnx
from lstm_edge.export.quant_bundle import QuantizeResult, over_budget_finding, quantize_result, write_variants
from lstm_edge.export.quant_c import CInt8Profile
from lstm_edge.export.quant_config import QuantizeConfig, check_options
from lstm_edge.export.quant_forms import quantize_form
from lstm_edge.export.quant_graph import quantize_graph, whole_graph
from lstm_edge.export.quant_measure import (
    Probes,
    error_growth,
    node_roles,
    op_counts,
    output_errors,
    run_outputs,
)
from lstm_edge.export.quant_ort import quantize_dynamic_file, quantize_static_file, quiet_ort_advice, to_fp16_file
from lstm_edge.export.quant_report import (
    DEPLOYABLE,
    FLOAT64_REFERENCE,
    NOT_DEPLOYABLE,
    UNVERIFIED,
    Int8AwareTraining,
    MetricReport,
    ParityBound,
    QuantizeReport,
    Settings,
    format_report,
)
from lstm_edge.export.validate import ort_cpu_session, probe_ort_cpu
from lstm_edge.model import LSTMModel, run_numpy
from lstm_edge.onnx_io import load_onnx_checked
from lstm_edge.progress import stage
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.tolerances import (
    ACCURACY_POINTS_DROP,
    FP16_ABS,
    FP32_ABS,
    MSE_RELATIVE_DROP,
    metric_drop,
    scaled_error,
)

STATIC_NEEDS_DATA = "static int8 needs calibration data and the model's task is not built in: pass --data FILE"

__all__ = [
    "QuantizeConfig",
    "QuantizeReport",
    "QuantizeResult",
    "format_report",
    "over_budget_finding",
    "quantize_bundle",
]


@dataclass
class _Baseline:
    """What every variant is compared with: the fp32 model in PyTorch (or, for an imported bundle, the fp32 ONNX
    in float64 through onnx.reference) and in ORT, on the evaluation data."""

    model: LSTMModel | None  # None for an imported bundle: no checkpoint, no input equalization
    streaming: bool
    reference: Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]
    config: ModelConfig
    fp32_path: Path
    fp32_session: object
    fp32_ops: dict[str, int]
    data: EvalData
    torch_out: list[np.ndarray]
    fp32_out: list[np.ndarray]
    metric: MetricReport  # torch and fp32 filled; variant/drop per variant
    probes: Probes  # error_growth's probes with the fp32 and reference outputs, shared by every variant


def _equalized_fp32(model, fp32_path: Path, fp32_session, ranges: dict, dst: Path, xs: np.ndarray) -> None:
    """The fp32 graph rebuilt with range-equalized input (model.equalize_input): same function, checked here."""
    source = onnx.load(str(fp32_path), load_external_data=False)
    opset = next(o.version for o in source.opset_import if o.domain in ("", "ai.onnx"))
    twin = model.input_equalized(ranges["x_min"], ranges["x_max"])
    keep = {p.key: p.value for p in source.metadata_props if p.key not in ("config", "normalization")}
    keep["normalization"] = json.dumps({k: getattr(twin.config, k) for k in ("x_mean", "x_std", "y_mean", "y_std")})
    keep["input_equalization"] = json.dumps(ranges)
    dst.write_bytes(build_onnx(twin, opset=opset, metadata=keep).SerializeToString())
    L, H = model.config.num_layers, model.config.hidden_size
    got, want = run_outputs(ort_cpu_session(dst.read_bytes()), xs, L, H), run_outputs(fp32_session, xs, L, H)
    worst = max(float(scaled_error(a, b).max()) for a, b in zip(got, want, strict=True))
    if worst > FP32_ABS:
        raise LstmEdgeError(
            f"the input-equalized graph differs from model.onnx by {worst:.1e} (bound {FP32_ABS:.0e})",
            "re-export the bundle from its checkpoint; report this if it persists",
        )


def _task_spec(bundle: Bundle, payload: dict, cfg: QuantizeConfig) -> TaskSpec:
    """The checkpoint's recorded task, checked before any data is drawn from it: a seq_len that is not an integer
    in 1..MAX_MODEL_DIM (a checkpoint recording 1e7 steps asked for 512 × 10⁷ × F floats), or data the run could
    not hold in memory (limits.check_run_memory over the larger of the eval and calibration sets), is one line."""
    fix = "re-train the checkpoint with `lstm-edge train`, or pass --data with the task's data"
    try:
        spec = TaskSpec.recorded(bundle.config.task, payload.get("training"), cfg.data)
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        raise LstmEdgeError(f"the checkpoint's training record is malformed ({first_line(e, 120)})", fix) from e
    limits.check_dims({"seq_len": spec.seq_len}, "the checkpoint's training record", fix)
    c = bundle.config
    n = max(cfg.eval_samples, cfg.calibration_samples)
    limits.check_run_memory(
        (n, spec.seq_len, c.input_size),
        c.num_layers,
        c.hidden_size,
        f"{fix}; or lower --calibration-samples",
    )
    return spec


def _plan(cfg: QuantizeConfig, spec: TaskSpec) -> tuple[tuple[str, ...], dict[str, str]]:
    """The modes to make, and the variants skipped with why; raises LstmEdgeError for bad options."""
    if cfg.mode != "all":
        return (variant_for_mode(cfg.mode).mode,), {}
    if spec.has_data:
        return QUANTIZE_MODES, {}
    skipped = {variant_for_mode("static").name: STATIC_NEEDS_DATA}
    return tuple(m for m in QUANTIZE_MODES if m != "static"), skipped


def _baseline(bundle: Bundle, payload: dict, data: EvalData, cfg: QuantizeConfig) -> _Baseline:
    """The fp32 references on the evaluation data, and the metric budget."""
    config = bundle.config
    fp32_path = bundle.artifact("fp32")
    load_onnx_checked(fp32_path)  # external data outside the bundle or through a symlink: one line, never read
    if _imported(bundle):
        model, reference = None, _onnx_reference(fp32_path)
    else:
        model = load_checkpoint(bundle.checkpoint())[0]

        def reference(x, h0, c0):
            return list(run_numpy(model, x, h0, c0))

    h0 = np.zeros((config.num_layers, len(data.X), config.hidden_size), np.float32)
    torch_out = list(reference(data.X, h0, h0))
    fp32_session = ort_cpu_session(fp32_path.read_bytes())
    fp32_out = run_outputs(fp32_session, data.X, config.num_layers, config.hidden_size)
    classify = config.kind == "classification"
    budget = cfg.max_metric_drop
    if budget is None:
        budget = ACCURACY_POINTS_DROP if classify else MSE_RELATIVE_DROP
    name = "accuracy" if classify else "mse"
    torch_metric = fp32_metric = None
    if data.has_targets:
        name, torch_metric = metric(config.kind, torch_out[0], data.y)
        fp32_metric = metric(config.kind, fp32_out[0], data.y)[1]
    aware = (payload.get("metrics") or {}).get("int8_aware")
    # The fp32 baseline itself moved when the checkpoint was fine-tuned for int8: say from where.
    int8_aware = None
    if aware is not None:
        try:
            int8_aware = Int8AwareTraining(
                epochs=aware["epochs"],
                kept_epoch=aware["kept_epoch"],
                fp32_test_before=aware["fp32_only"][f"test_{name}"],
                fp32_test_after=aware["test_fp32"],
                # Older records name it only in the TrainConfig; before the C scheme existed it was ORT's.
                scheme=aware.get("scheme")
                or ((payload.get("training") or {}).get("config") or {}).get("int8_scheme")
                or "ort",
            )
        except (KeyError, TypeError, IndexError) as e:
            raise LstmEdgeError(
                f"the checkpoint's metrics.int8_aware record is malformed ({type(e).__name__}: {first_line(e, 80)})",
                "re-train with `lstm-edge train --int8-aware-epochs`, or remove the record",
            ) from e
    streaming = bool(bundle.manifest.get("streaming", True))
    return _Baseline(
        model=model,
        streaming=streaming,
        reference=reference,
        config=config,
        fp32_path=fp32_path,
        fp32_session=fp32_session,
        fp32_ops=op_counts(onnx.load(str(fp32_path))),
        data=data,
        torch_out=torch_out,
        fp32_out=fp32_out,
        metric=MetricReport(
            name=name,
            torch=torch_metric,
            fp32=fp32_metric,
            drop_kind="points" if classify else "relative",
            budget=budget,
            int8_aware_training=int8_aware,
        ),
        probes=Probes(fp32_session, reference, config, streaming),
    )


def _make(mode: str, dst: Path, base: _Baseline, cfg: QuantizeConfig, ranges: dict | None, X_cal) -> None:
    """Write the variant of `mode` to `dst` through onnxruntime.quantization (or its fp16 converter)."""
    with quiet_ort_advice():
        if mode == "dynamic":
            src = base.fp32_path
            if ranges is not None and base.model is not None:
                src = dst.with_name("model.equalized.onnx")
                _equalized_fp32(base.model, base.fp32_path, base.fp32_session, ranges, src, base.data.X[:64])
            quantize_dynamic_file(src, dst, cfg)
        elif mode == "static":
            quantize_static_file(base.fp32_path, dst, cfg, X_cal, base.config)
        else:
            to_fp16_file(base.fp32_path, dst)


def _settings(mode: str, cfg: QuantizeConfig, ranges: dict | None) -> Settings:
    static = mode == "static"
    return Settings(
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        method=cfg.method if static else None,
        calibration_samples=cfg.calibration_samples if static else None,
        quantize_state=cfg.quantize_state if static else None,
        input_equalization=(ranges or {"skipped": "no training ranges or calibration data"})
        if mode == "dynamic"
        else None,
    )


def _measure(variant: str, dst: Path, base: _Baseline, settings: Settings, seconds: float) -> QuantizeReport:
    """Run the variant on the evaluation data and the probe inputs; judge it against its budget and bound."""
    L, H = base.config.num_layers, base.config.hidden_size
    probe_ort_cpu(dst, f"the new {variant} variant")  # a native crash becomes one line, not exit 139
    session = ort_cpu_session(dst.read_bytes())
    out = run_outputs(session, base.data.X, L, H)
    m = base.metric
    if base.data.has_targets:
        value = metric(base.config.kind, out[0], base.data.y)[1]
        drop = metric_drop(base.config.kind, m.fp32, value)[0]
        m = replace(m, variant=value, drop=drop)
    qmodel = onnx.load(str(dst))
    growth, profile = error_growth(session, base.probes)
    within = m.drop <= m.budget if m.measured else True
    bound = None
    if variant == "fp16":  # fp16 is also held to its fixed parity bound at every T, streamed or not
        bound = ParityBound(tolerance=FP16_ABS, max_scaled=max(v for errs in profile.values() for v in errs.values()))
        within = within and bound.max_scaled <= FP16_ABS
    verdict = NOT_DEPLOYABLE if not within else DEPLOYABLE if m.measured else UNVERIFIED
    size = dst.stat().st_size
    return QuantizeReport(
        bytes=size,
        size_ratio=size / base.fp32_path.stat().st_size,
        ops_before=base.fp32_ops,
        ops_after=op_counts(qmodel),
        nodes=node_roles(qmodel),
        settings=settings,
        error_vs_fp32=output_errors(out, base.fp32_out),
        error_vs_torch=output_errors(out, base.torch_out),
        metric=m,
        error_vs_seq_len=growth,
        error_profile=profile,
        eval_samples=len(base.data.X),
        seconds=seconds,
        parity_bound=bound,
        deployable=verdict == DEPLOYABLE,
        verdict=verdict,
        measured_on=base.data.source + (FLOAT64_REFERENCE if base.model is None else ""),
    )


def quantize_bundle(bundle_path: str | Path, cfg: QuantizeConfig | None = None) -> QuantizeResult:
    """Make the requested variants, measure them, and add them (with the report) to the bundle atomically.

    Args:
        bundle_path: a bundle folder written by `lstm-edge export` or `import`: it carries its checkpoint, or its
            graph has no state I/O (the model's own forward exported whole; export/quant_graph.py measures that
            against its fp32 graph in float64).
        cfg: the options (QuantizeConfig()); cfg.data stands in for the task's data where it is not built in.

    Returns:
        QuantizeResult with one QuantizeReport per made variant. Without task data, dynamic int8 and fp16 are made
        with verdict "unverified" and, under --mode all, static int8 is skipped (QuantizeResult.skipped says why).
        A variant over its metric budget or (fp16) its parity bound is not an error: it is written, marked not
        deployable and listed in QuantizeResult.over_budget (`quantize` prints it as a finding; exit 1 only with
        --strict).

    Raises:
        LstmEdgeError: bad options, an unreadable bundle or data file, or --mode static without task data (exit 2;
            nothing written).
    """
    cfg = cfg or QuantizeConfig()
    check_options(cfg)
    bundle = Bundle.open(bundle_path)
    if whole_graph(bundle):  # no state I/O: the user's forward exported whole, or a stateless import (quant_graph.py)
        return quantize_graph(bundle, cfg)
    foreign = (bundle.manifest.get("reference") or {}).get("kind") == "onnx-float64"  # imports keep the seed's path
    if not foreign and not is_seed_form(bundle.config):  # GRU, bidirectional, tokens… (quant_forms.py)
        return quantize_form(bundle, cfg)
    payload = {} if _imported(bundle) else read_checkpoint(bundle.checkpoint())
    spec = _task_spec(bundle, payload, cfg)
    modes, skipped = _plan(cfg, spec)
    X_cal = calibration_inputs(spec, cfg.calibration_samples) if "static" in modes else None
    stage("quantize: the fp32 references on the held-out data", cfg.progress)
    base = _baseline(bundle, payload, evaluation_data(spec, bundle.config, cfg.eval_samples), cfg)
    equalize = "dynamic" in modes and not _imported(bundle)  # equalization rebuilds layer 0 from the checkpoint
    ranges = input_ranges(bundle.config, spec, cfg.calibration_samples) if equalize else None
    reports: dict[str, QuantizeReport] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as later:
        made: dict[str, Path] = {}
        c_int8 = None  # the c runtime's int8 is its own scheme, with its own bound (export/quant_c.py)
        for mode in modes:
            v = variant_for_mode(mode)
            made[v.name] = Path(tmp) / v.file
            start = time.perf_counter()
            stage(f"quantize {v.name}: making it", cfg.progress)
            _make(mode, made[v.name], base, cfg, ranges, X_cal)
            seconds = time.perf_counter() - start
            stage(f"quantize {v.name}: its task metric and error against T", cfg.progress)
            reports[v.name] = r = _measure(v.name, made[v.name], base, _settings(mode, cfg, ranges), seconds)
            if v.name == "int8":  # the probes' references are made: the C compiles while the other variants run
                stage("quantize int8: compiling the int8 C (in the background)", cfg.progress)
                c_int8 = later.enter_context(CInt8Profile(bundle, asdict(r.settings)))
        if c_int8 is not None:
            stage("quantize int8: the int8 C's own error against T (compiled, else simulated)", cfg.progress)
            r = reports["int8"]
            r.c_error_profile, r.c_measured_with = c_int8.measure(
                lambda s: error_growth(s, base.probes, streamed=False)
            )
        write_variants(bundle, made, reports, skipped)
    return quantize_result(bundle, reports, skipped)


def _imported(bundle: Bundle) -> bool:
    """A bundle with no checkpoint to compare with, judged against its fp32 graph in float64 (as cases.reference_artifact):
    an imported ONNX model (reference kind "onnx-float64"), or a forward exported whole with its states exposed."""
    kind = (bundle.manifest.get("reference") or {}).get("kind")
    return kind == "onnx-float64" or "checkpoint" not in bundle.manifest["artifacts"]


def _onnx_reference(fp32_path: Path) -> Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]:
    """(x, h0, c0) → [y, hn, cn] of the bundle's fp32 model in float64 (onnx.reference): an imported bundle's
    reference. State the model does not take is not fed; state it does not return comes back as given."""
    model = onnx.load(str(fp32_path))
    evaluate, names = evaluator(model), {i.name for i in model.graph.input}

    def reference(x, h0, c0):
        out = evaluate({k: v for k, v in ((X, x), (H0, h0), (C0, c0)) if k in names})
        return [out[Y], out.get(HN, h0), out.get(CN, c0)]

    return reference

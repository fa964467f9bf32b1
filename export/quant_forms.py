"""int8 and fp16 for every ModelSpec form but the seed's (bidirectional, time-major, no bias, GRU, token input,
variable lengths, projection), measured on the model's own inputs and judged like a model without task data.

What each form gets (measured with onnxruntime 1.32, see the README's forms table):
- LSTM in every fused form (bidirectional, time-major, no bias, tokens, lengths): each LSTM node becomes
  com.microsoft::DynamicQuantizeLSTM; the head's MatMul becomes MatMulInteger.
- GRU: ONNX Runtime has no int8 GRU kernel (no DynamicQuantizeGRU among its contrib ops), so the GRU layers stay
  float32 and only the head's MatMul is int8. The report lists the float nodes by name.
- Projection (the Scan form): quantize_dynamic with EnableSubgraph makes every MatMul int8 — x·W_ih outside the Scan,
  W_hh·h and W_hr·(o ⊙ tanh C) inside its body; the gate nonlinearities stay float, as in DynamicQuantizeLSTM.
  fp16 is not made: ONNX Runtime 1.32 crashes (segfault, measured) creating a session for a float16 Scan body,
  whether converted by onnxruntime.transformers.float16 or written in float16 by the builder.
- Static int8 calibrates the seed's form only (its calibration reader feeds x, h0, c0): skipped, with the reason.
The task metric is not measured here (these bundles carry no task data), so every variant's verdict is
"unverified" unless its error says "not deployable" (fp16 over its fixed bound).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx

from lstm_edge.bundle import variant_for_mode
from lstm_edge.checkpoint import load_checkpoint
from lstm_edge.config import LENGTHS, ModelConfig
from lstm_edge.data import model_inputs
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.quant_bundle import quantize_result, write_variants
from lstm_edge.export.quant_c import c_error_profile
from lstm_edge.export.quant_measure import node_roles, op_counts
from lstm_edge.export.quant_ort import make_variant, quantize_dynamic_file
from lstm_edge.export.quant_report import (
    FLOAT64_REFERENCE,
    NOT_DEPLOYABLE,
    UNVERIFIED,
    MetricReport,
    ParityBound,
    QuantizeReport,
)
from lstm_edge.export.quant_report import Settings as QSettings
from lstm_edge.export.validate import ort_cpu_session
from lstm_edge.forms import quantize_refusals
from lstm_edge.model import LSTMModel, forward_numpy
from lstm_edge.progress import stage
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.tolerances import ACCURACY_POINTS_DROP, FP16_ABS, MSE_RELATIVE_DROP, error_stats, scaled_error

ERROR_VS_T = (1, 10, 100, 1000)  # as quant_measure: verify's int8 buckets


def eval_feeds(config: ModelConfig, n: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    """n sequences of the model's own inputs (zero initial state; lengths mixed; token ids at both table edges)."""
    return dict(zip(config.input_names, model_inputs(config, n, seq, False, seed), strict=True))


def reference_outputs(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The rebuild in float64 on `feeds` (or, for a bundle without a checkpoint, `model` is float64_graph's
    function): outputs in config.output_names order."""
    if not isinstance(model, LSTMModel):
        return model(feeds)
    twin = model.double()
    try:
        return list(forward_numpy(twin, *(a.astype(np.float64) if a.dtype.kind == "f" else a for a in feeds.values())))
    finally:
        model.float()


def float64_graph(fp32_model: onnx.ModelProto, config: ModelConfig):
    """feeds → outputs (config.output_names order) of the fp32 graph cast to float64 and run by onnx.reference: the
    reference of a bundle without a checkpoint (a forward exported whole with its states exposed)."""
    evaluate = evaluator(fp32_model)
    return lambda feeds: [evaluate(feeds)[n] for n in config.output_names]


def output_errors(config: ModelConfig, got: list[np.ndarray], want: list[np.ndarray]) -> dict:
    """error_stats of each output against `want`, keyed by the model's output names."""
    return {name: error_stats(a, b) for name, a, b in zip(config.output_names, got, want, strict=True)}


def _streamed(session, config: ModelConfig, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The session stepped one time step per call, carrying its state (every sequence runs to T)."""
    x = feeds["x"]
    axis = 1 if config.batch_first else 0
    state = {n: feeds[n] for n in config.state_shapes}
    outs: list[np.ndarray] = []
    ys = []
    for t in range(x.shape[axis]):
        step = {"x": np.take(x, [t], axis=axis), **state}
        if config.lengths:
            step[LENGTHS] = np.ones(x.shape[1 - axis], np.int64)
        outs = session.run(list(config.output_names), step)
        ys.append(outs[0])
        state = dict(zip(config.state_shapes, outs[1:], strict=True))
    if config.head in ("sequence", "none"):  # y at every step: [B, 1, O] / [1, B, O] per call
        outs[0] = np.concatenate(ys, axis=axis)
    return outs


def error_growth(session, fp32_session, model: LSTMModel, config: ModelConfig, streamed: bool = True) -> tuple:
    """Per T: the variant's max |Δ| against fp32 ORT, and its max scaled error against the float64 rebuild over
    zero and random initial states, full and (unidirectional models, `streamed`) streamed one step per call — the
    profile verify holds an int8 variant to. Returns (max |Δ| per T, profile per T), each {T: {output: error}}."""
    names = list(config.output_names)
    vs_fp32, profile = {}, {}
    for T in ERROR_VS_T:
        worst_abs, worst_scaled = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
        for random_state in (False, True):
            feeds = dict(zip(config.input_names, model_inputs(config, 16, T, random_state, 99 + T), strict=True))
            got, fp32 = session.run(names, feeds), fp32_session.run(names, feeds)
            ref = reference_outputs(model, feeds)
            for name, a, b, r in zip(names, got, fp32, ref, strict=True):
                worst_abs[name] = max(worst_abs[name], float(np.abs(a - b).max()))
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        if T >= 10 and config.streamable and streamed:
            feeds = dict(zip(config.input_names, model_inputs(config, 4, T, True, 7 + T), strict=True))
            if config.lengths:
                feeds[LENGTHS] = np.full_like(feeds[LENGTHS], T)  # a stream feeds whole steps
            ref = reference_outputs(model, feeds)
            for name, a, r in zip(names, _streamed(session, config, feeds), ref, strict=True):
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        vs_fp32[str(T)], profile[str(T)] = worst_abs, worst_scaled
    return vs_fp32, profile


def plan(cfg, config: ModelConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """The modes to make for a non-seed form and the variants skipped with why. Raises LstmEdgeError when the one
    mode asked for cannot be made (static int8; fp16 of the Scan form)."""

    refused = quantize_refusals(config)  # lstm_edge.forms: static for every non-seed form, fp16 for the Scan one
    if cfg.mode != "all":
        mode = variant_for_mode(cfg.mode).mode
        if mode in refused:
            raise LstmEdgeError(refused[mode], "quantize with --mode dynamic")
        return (mode,), {}
    return tuple(m for m in ("dynamic", "fp16") if m not in refused), {
        variant_for_mode(m).name: why for m, why in refused.items()
    }


def quantize_form(bundle, cfg):
    """quantize_bundle for a non-seed ModelSpec form (the module docstring says what each form gets): dynamic int8
    and fp16, measured on the model's own inputs against fp32 ORT and the float64 rebuild. Returns QuantizeResult;
    fp16 over its fixed bound is written, marked not deployable and listed in result.over_budget."""
    config = bundle.config
    fp32_path = bundle.artifact("fp32")
    fp32_model = onnx.load(str(fp32_path))
    modes, skipped = plan(cfg, config)
    has_checkpoint = "checkpoint" in bundle.manifest["artifacts"]  # a forward exported whole has none
    model = load_checkpoint(bundle.checkpoint())[0] if has_checkpoint else float64_graph(fp32_model, config)
    fp32_session = ort_cpu_session(fp32_path.read_bytes())
    n = min(cfg.eval_samples, 64)
    feeds = eval_feeds(config, n, 100, seed=2)
    names = list(config.output_names)
    torch_out, fp32_out = reference_outputs(model, feeds), fp32_session.run(names, feeds)
    classify = config.kind == "classification"
    budget = cfg.max_metric_drop
    if budget is None:
        budget = ACCURACY_POINTS_DROP if classify else MSE_RELATIVE_DROP
    source = f"{n} sequences of T=100 of the model's own inputs (no task data: the task metric is not measured)"
    source += "" if has_checkpoint else FLOAT64_REFERENCE
    reports = {}
    with tempfile.TemporaryDirectory() as tmp:
        made = {}
        for mode in modes:
            v = variant_for_mode(mode)
            dst = made[v.name] = Path(tmp) / v.file
            stage(f"quantize {v.name}: making it", cfg.progress)
            seconds = make_variant(mode, fp32_path, dst, cfg, quantize_dynamic_file)
            stage(
                f"quantize {v.name}: error against fp32 and float64 at T = {', '.join(map(str, ERROR_VS_T))}",
                cfg.progress,
            )
            session = ort_cpu_session(dst.read_bytes())
            out = session.run(names, feeds)
            growth, profile = error_growth(session, fp32_session, model, config)
            bound = None
            if mode == "fp16":  # held to its fixed parity bound at every T, streamed or not
                worst = max(e for errs in profile.values() for e in errs.values())
                bound = ParityBound(tolerance=FP16_ABS, max_scaled=worst)
            qmodel = onnx.load(str(dst))
            settings = QSettings(
                per_channel=cfg.per_channel,
                input_equalization={"skipped": "input equalization rescales the seed form's first LSTM only"}
                if mode == "dynamic"
                else None,
            )
            c_profile, c_with = {}, ""
            if v.name == "int8":  # the c runtime's int8 is its own scheme: its own bound (export/quant_c.py)
                stage("quantize int8: the int8 C's own error against T (compiled, else simulated)", cfg.progress)
                c_profile, c_with = c_error_profile(
                    bundle, asdict(settings), lambda s: error_growth(s, fp32_session, model, config, streamed=False)
                )
            reports[v.name] = QuantizeReport(
                bytes=dst.stat().st_size,
                size_ratio=dst.stat().st_size / fp32_path.stat().st_size,
                ops_before=op_counts(fp32_model),
                ops_after=op_counts(qmodel),
                nodes=node_roles(qmodel),
                settings=settings,
                error_vs_fp32=output_errors(config, out, fp32_out),
                error_vs_torch=output_errors(config, out, torch_out),
                metric=MetricReport(
                    name="accuracy" if classify else "mse",
                    drop_kind="points" if classify else "relative",
                    budget=budget,
                ),
                error_vs_seq_len=growth,
                error_profile=profile,
                c_error_profile=c_profile,
                c_measured_with=c_with,
                eval_samples=n,
                seconds=seconds,
                parity_bound=bound,
                deployable=False,
                verdict=NOT_DEPLOYABLE if bound and bound.max_scaled > FP16_ABS else UNVERIFIED,
                measured_on=source,
            )
        write_variants(bundle, made, reports, skipped)
    return quantize_result(bundle, reports, skipped)

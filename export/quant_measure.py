"""What quantize measures on a variant: op counts, which nodes run quantized, output error statistics, and error
growth over the sequence length (full and streamed). Sessions are ORT CPU sessions made by the caller."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from lstm_edge.config import C0, H0, ModelConfig, X
from lstm_edge.config import OUTPUT_NAMES as OUTPUTS
from lstm_edge.data import probe_inputs
from lstm_edge.model import LSTMModel, run_numpy
from lstm_edge.tolerances import error_stats, scaled_error

ERROR_VS_T = (1, 10, 100, 1000)  # the sequence lengths of error_vs_seq_len and error_profile (verify's buckets)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each op type the graph holds."""
    return dict(Counter(n.op_type for n in model.graph.node))


def node_roles(model: onnx.ModelProto) -> dict[str, list[str]]:
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


def output_errors(got: list[np.ndarray], want: list[np.ndarray]) -> dict:
    """error_stats of each output (y, hn, cn) of `got` against `want`, keyed by output name."""
    return {name: error_stats(a, b) for name, a, b in zip(OUTPUTS, got, want, strict=True)}


def run_outputs(session, xs: np.ndarray, layers: int, hidden: int, batch: int = 256) -> list[np.ndarray]:
    """y, hn, cn of `session` on xs (N, T, F) from zero state, in batches of `batch` sequences."""
    parts = []
    for i in range(0, len(xs), batch):
        xb = xs[i : i + batch]
        h = np.zeros((layers, len(xb), hidden), np.float32)
        parts.append(session.run(list(OUTPUTS), {X: xb, H0: h, C0: h}))
    return [np.concatenate([p[k] for p in parts], axis=0 if k == 0 else 1) for k in range(3)]


def error_growth(session, fp32_session, model: LSTMModel, config: ModelConfig) -> tuple[dict, dict]:
    """Per T: the variant's max |Δ| against fp32 ORT (the plot), and its max scaled error against PyTorch over
    zero and random initial states, full-sequence and streamed one step per call (the profile verify holds the
    variant to). Streaming matters: a variant whose state I/O is rounded (fp16) drifts with every call."""
    vs_fp32, profile = {}, {}
    for T in ERROR_VS_T:
        worst_abs = dict.fromkeys(OUTPUTS, 0.0)
        worst_scaled = dict.fromkeys(OUTPUTS, 0.0)
        for random_state in (False, True):
            x, h0, c0 = probe_inputs(config, 64 if T <= 100 else 16, T, random_state, seed=99 + T)
            feeds = {X: x, H0: h0, C0: c0}
            got, fp32 = session.run(list(OUTPUTS), feeds), fp32_session.run(list(OUTPUTS), feeds)
            ref = run_numpy(model, x, h0, c0)
            for name, a, b, r in zip(OUTPUTS, got, fp32, ref, strict=True):
                worst_abs[name] = max(worst_abs[name], float(np.abs(a - b).max()))
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        if T >= 10:
            x, h, c = probe_inputs(config, 16, T, True, seed=7 + T)
            ref = run_numpy(model, x, h, c)
            for t in range(T):
                y, h, c = session.run(list(OUTPUTS), {X: x[:, t : t + 1], H0: h, C0: c})
            for name, a, r in zip(OUTPUTS, (y, h, c), ref, strict=True):
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        vs_fp32[str(T)], profile[str(T)] = worst_abs, worst_scaled
    return vs_fp32, profile

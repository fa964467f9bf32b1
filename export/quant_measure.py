"""What quantize measures on a variant: op counts, which nodes run quantized, output error statistics, and error
growth over the sequence length (full and streamed). Sessions are ORT CPU sessions made by the caller."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

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


def takes(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feeds `session` declares: an imported model whose state is not a graph input takes x alone."""
    names = {i.name for i in session.get_inputs()}
    return {k: v for k, v in feeds.items() if k in names}


def run_outputs(session, xs: np.ndarray, layers: int, hidden: int, batch: int = 256) -> list[np.ndarray]:
    """y, hn, cn of `session` on xs (N, T, F) from zero state, in batches of `batch` sequences."""
    parts = []
    for i in range(0, len(xs), batch):
        xb = xs[i : i + batch]
        h = np.zeros((layers, len(xb), hidden), np.float32)
        parts.append(session.run(list(OUTPUTS), takes(session, {X: xb, H0: h, C0: h})))
    return [np.concatenate([p[k] for p in parts], axis=0 if k == 0 else 1) for k in range(3)]


Reference = Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]


class Probes:
    """error_growth's probe inputs with the fp32 graph's and the reference's outputs on them, made on first use and
    kept for every variant of one quantize run: none of them depends on the variant (fixed seeds), and making them
    again per variant was a quarter of quantize at the seed's size (PyTorch on the probes, 3.9 s of 15 s, measured
    with cProfile at load ~2).

    Args:
        fp32_session: the fp32 graph in ORT CPU.
        reference: (x, h0, c0) → [y, hn, cn]: PyTorch, or an LSTMModel called through run_numpy, or an imported
            model's float64 ONNX.
        config: the bundle's ModelConfig (probe_inputs draws from it).
        streaming: False for a model without state I/O: zero state, whole sequences only.
    """

    def __init__(self, fp32_session, reference: Reference | LSTMModel, config: ModelConfig, streaming: bool = True):
        if isinstance(reference, LSTMModel):
            model = reference

            def reference(x, h0, c0):
                return list(run_numpy(model, x, h0, c0))

        self.fp32_session, self.reference, self.config, self.streaming = fp32_session, reference, config, streaming
        self.memo: dict[tuple, tuple] = {}

    def full(self, T: int, random_state: bool) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
        """(feeds x/h0/c0, fp32 outputs, reference outputs) of the whole-sequence probe at length T: 64 sequences
        up to T=100, 16 beyond."""
        key = ("full", T, random_state)
        if key not in self.memo:
            x, h0, c0 = probe_inputs(self.config, 64 if T <= 100 else 16, T, random_state, seed=99 + T)
            feeds = {X: x, H0: h0, C0: c0}
            fp32 = self.fp32_session.run(list(OUTPUTS), takes(self.fp32_session, feeds))
            self.memo[key] = (feeds, fp32, self.reference(x, h0, c0))
        return self.memo[key]

    def streamed(self, T: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]:
        """((x, h0, c0), reference outputs) of the streamed probe at length T: 16 sequences from a random state."""
        key = ("streamed", T)
        if key not in self.memo:
            x, h, c = probe_inputs(self.config, 16, T, True, seed=7 + T)
            self.memo[key] = ((x, h, c), self.reference(x, h, c))
        return self.memo[key]


def error_growth(session, probes: Probes, streamed: bool = True) -> tuple[dict, dict]:
    """Per T: the variant's max |Δ| against fp32 ORT (the plot), and its max scaled error against the reference
    over zero and random initial states, full-sequence and streamed one step per call (the profile verify holds the
    variant to). Streaming matters: a variant whose state I/O is rounded (fp16) drifts with every call. A model
    without state I/O (probes.streaming False) is measured from zero state, whole sequences only; `streamed` False
    leaves out the streamed probe (the int8 C: its one step per call equals its whole sequence, export/quant_c.py)."""
    vs_fp32, profile = {}, {}
    for T in ERROR_VS_T:
        worst_abs = dict.fromkeys(OUTPUTS, 0.0)
        worst_scaled = dict.fromkeys(OUTPUTS, 0.0)
        for random_state in (False, True) if probes.streaming else (False,):
            feeds, fp32, ref = probes.full(T, random_state)
            got = session.run(list(OUTPUTS), takes(session, feeds))
            for name, a, b, r in zip(OUTPUTS, got, fp32, ref, strict=True):
                worst_abs[name] = max(worst_abs[name], float(np.abs(a - b).max()))
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        if T >= 10 and probes.streaming and streamed:
            (x, h, c), ref = probes.streamed(T)
            ys = []
            for t in range(T):
                y, h, c = session.run(list(OUTPUTS), {X: x[:, t : t + 1], H0: h, C0: c})
                ys.append(y)
            if y.ndim == 3:  # a head on every step: the streamed outputs, in order, are the sequence's y
                y = np.concatenate(ys, axis=1)  # (B, T, O)
            for name, a, r in zip(OUTPUTS, (y, h, c), ref, strict=True):
                worst_scaled[name] = max(worst_scaled[name], float(scaled_error(a, r).max()))
        vs_fp32[str(T)], profile[str(T)] = worst_abs, worst_scaled
    return vs_fp32, profile

"""The onnxruntime.quantization calls that make a variant file from an fp32 ONNX file (dynamic int8, static QDQ
int8, fp16), each checked for what it must have produced. Used by quantize.py (seed form) and quant_forms.py."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.calibration import CalibrationReader
from lstm_edge.export.onnx_order import sort_topologically
from lstm_edge.export.quant_config import QuantizeConfig
from lstm_edge.export.quant_measure import op_counts


@contextlib.contextmanager
def quiet_ort_advice():
    """ORT logs 'consider pre-processing' on the root logger for every call; that advice is for CNNs."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_dynamic_file(src: Path, dst: Path, cfg: QuantizeConfig) -> None:
    """Dynamic int8 of `src` into `dst` (LSTM → DynamicQuantizeLSTM, MatMul → integer ops).

    Raises LstmEdgeError when not every LSTM became DynamicQuantizeLSTM (weights not plain initializers)."""
    # deferred: onnxruntime.quantization is heavy
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=["LSTM", "MatMul"],
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        weight_type=QuantType.QInt8,
        # The projected LSTM's recurrence is a Scan: its body's MatMuls (W_hh·h, W_hr·…) are int8 only with this.
        extra_options={"EnableSubgraph": True},
    )
    q = onnx.load(str(dst))
    n_lstm = op_counts(onnx.load(str(src))).get("LSTM", 0)
    if op_counts(q).get("DynamicQuantizeLSTM", 0) != n_lstm:
        raise LstmEdgeError(
            "onnxruntime did not turn every LSTM into DynamicQuantizeLSTM",
            "the LSTM weights must be plain initializers in ONNX gate order: re-export the bundle",
        )


# The whole graph's op types that dynamic int8 takes (ORT rewrites Gemm to MatMul + Add first). Not Gather: an
# Embedding table stays float, as in the fused forms. GRU has no int8 kernel in ORT.
WHOLE_GRAPH_OPS = ("LSTM", "MatMul", "Conv")


def quantize_dynamic_graph(src: Path, dst: Path, cfg: QuantizeConfig) -> None:
    """Dynamic int8 of a whole graph (export/quant_graph.py): every LSTM, MatMul (Gemm) and Conv of `src` into `dst`.

    Raises LstmEdgeError when an LSTM did not become DynamicQuantizeLSTM (ORT makes it only from weights that are
    plain initializers in ONNX gate order), or when nothing was quantized at all."""
    # deferred: onnxruntime.quantization is heavy
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=list(WHOLE_GRAPH_OPS),
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        weight_type=QuantType.QInt8,
        extra_options={"EnableSubgraph": True},
    )
    before, after = op_counts(onnx.load(str(src))), op_counts(onnx.load(str(dst)))
    if after.get("DynamicQuantizeLSTM", 0) != before.get("LSTM", 0):
        raise LstmEdgeError(
            f"onnxruntime made {after.get('DynamicQuantizeLSTM', 0)} of the graph's {before.get('LSTM', 0)} LSTM "
            "nodes int8 (DynamicQuantizeLSTM takes W and R only as plain initializers in ONNX gate order)",
            "re-export with constant folding (lstm-edge export does), or quantize with --mode fp16",
        )
    if not any(after.get(op) for op in ("DynamicQuantizeLSTM", "MatMulInteger", "ConvInteger")):
        raise LstmEdgeError(
            f"the graph holds no {', '.join(WHOLE_GRAPH_OPS)} node with constant weights, so int8 changes nothing",
            "quantize with --mode fp16",
        )


def quantize_static_file(src: Path, dst: Path, cfg: QuantizeConfig, X_cal: np.ndarray, config: ModelConfig) -> None:
    """Static QDQ int8 of `src` into `dst`, calibrated on X_cal [N, T, F]: the head only (no static LSTM kernel)."""
    # deferred: onnxruntime.quantization is heavy
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cfg.method]
    # LSTM has no static int8 kernel; quantizing Concat/Squeeze/Slice would fake-quantize the carried state.
    ops = ["MatMul", "Gemm"] + (["Concat", "Squeeze", "Slice"] if cfg.quantize_state else [])
    reader = CalibrationReader(X_cal, config.num_layers, config.hidden_size, cfg.progress)
    reader.inputs = {i.name for i in onnx.load(str(src), load_external_data=False).graph.input}
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


def to_fp16_file(src: Path, dst: Path) -> None:
    """fp16 weights and arithmetic of `src` into `dst`; inputs and outputs stay float32."""
    # deferred: onnxruntime.transformers is heavy
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = onnx.load(str(src))
    # ONNX Runtime 1.32 crashes (SIGSEGV, measured) creating a CPU session for an fp16 Transpose feeding a MatMul (an
    # LSTM's [T, B, H] output turned batch-first before a Linear, as torch.onnx writes it): that Transpose stays fp32.
    into_matmul = {i for n in source.graph.node if n.op_type in ("MatMul", "Gemm") for i in n.input}
    keep = [n.name for n in source.graph.node if n.op_type == "Transpose" and n.output[0] in into_matmul and n.name]
    model = convert_float_to_float16(source, keep_io_types=True, node_block_list=keep or None)
    # The converter appends its input Casts after the nodes that read them: sort, or onnx.checker refuses the file.
    sort_topologically(model.graph)
    onnx.save(model, str(dst))


def make_variant(
    mode: str, src: Path, dst: Path, cfg: QuantizeConfig, dynamic: Callable[[Path, Path, QuantizeConfig], None]
) -> float:
    """Write `mode`'s variant of `src` to `dst`: "dynamic" through `dynamic` (quantize_dynamic_file for a recognized
    graph, quantize_dynamic_graph for a whole one), else fp16 (to_fp16_file), ORT's advice silenced. Returns the
    seconds it took. Raises what the quantizer raises."""
    start = time.perf_counter()
    with quiet_ort_advice():
        dynamic(src, dst, cfg) if mode == "dynamic" else to_fp16_file(src, dst)
    return time.perf_counter() - start

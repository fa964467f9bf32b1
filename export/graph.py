"""Build the ONNX graph straight from the weights: one LSTM node per layer, weights as plain initializers.

Why by hand rather than torch.onnx: the dynamo exporter leaves the i,f,g,o → i,o,f,c gate reordering as
Slice/Concat on the weights (which also stops onnxruntime from producing DynamicQuantizeLSTM), freezes axes traced
at 1, and its streaming step ran slower. Here the reordering is done once, in numpy, on exact float32 copies.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lstm_edge import __version__
from lstm_edge.model import LSTMModel, ModelConfig

# PyTorch stacks gate blocks as i, f, g(=c), o; ONNX as i, o, f, c.
TORCH_TO_ONNX_GATES = (0, 3, 1, 2)
GATE_LAYOUT = "onnx LSTM gate blocks i,o,f,c (reordered from PyTorch's i,f,g,o); B = [Wb, Rb]"


def reorder_gates(w: np.ndarray, hidden: int) -> np.ndarray:
    """Rows of a (4H, …) or (4H,) PyTorch gate stack, reordered to ONNX's i,o,f,c."""
    blocks = [w[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in TORCH_TO_ONNX_GATES], axis=0)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    if array.dtype.kind == "i":
        array = array.astype(np.int64)
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def build_onnx(
    model: LSTMModel, opset: int = 17, metadata: dict[str, str] | None = None, with_head: bool = True
) -> onnx.ModelProto:
    """The fused graph for `model`: inputs x [batch, seq, F], h0/c0 [L, batch, H]; outputs y, hn, cn.

    with_head=False gives the bare recurrent graph of an nn.LSTM (y is the last layer's output sequence).
    """
    c: ModelConfig = model.config
    L, H, F = c.num_layers, c.hidden_size, c.input_size
    nodes: list[onnx.NodeProto] = []
    inits: dict[str, onnx.TensorProto] = {}

    def const(name: str, array: np.ndarray) -> str:
        inits.setdefault(name, _const(name, array))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    x = "x"
    if not (np.all(np.array(c.x_mean) == 0) and np.all(np.array(c.x_std) == 1)):
        mean, std = (
            const("x_mean", np.array(c.x_mean, np.float32)),
            const("x_std", np.array(c.x_std, np.float32)),
        )
        x = node("Div", [node("Sub", [x, mean], "x_centered"), std], "x_normalized")
    seq = node("Transpose", [x], "x_time_major", perm=[1, 0, 2])  # (seq, batch, F)

    h_last, c_last = [], []
    for layer, w in enumerate(model.lstm_weights()):
        w_ih, w_hh = w["w_ih"].float().numpy(), w["w_hh"].float().numpy()
        b = np.concatenate([reorder_gates(w["b_ih"].float().numpy(), H), reorder_gates(w["b_hh"].float().numpy(), H)])
        W = const(f"W{layer}", reorder_gates(w_ih, H)[None])  # (1, 4H, F_l)
        R = const(f"R{layer}", reorder_gates(w_hh, H)[None])  # (1, 4H, H)
        B = const(f"B{layer}", b[None])  # (1, 8H)
        if L == 1:
            h0, c0 = "h0", "c0"
        else:
            rows = [const(f"i{k}", np.array([k], np.int64)) for k in (layer, layer + 1)] + [const("i0", np.array([0]))]
            h0 = node("Slice", ["h0", *rows], f"h0_l{layer}")  # (1, batch, H)
            c0 = node("Slice", ["c0", *rows], f"c0_l{layer}")
        last = layer == L - 1
        need_seq = not last or c.head == "sequence" or not with_head
        y_name = f"Y{layer}" if need_seq else ""
        h_name = "hn" if L == 1 else f"Yh{layer}"
        c_name = "cn" if L == 1 else f"Yc{layer}"
        nodes.append(
            helper.make_node(
                "LSTM",
                [seq, W, R, B, "", h0, c0],
                [y_name, h_name, c_name],
                name=f"lstm{layer}",
                hidden_size=H,
                layout=0,
            )
        )
        h_last.append(h_name)
        c_last.append(c_name)
        if need_seq:
            seq = node("Squeeze", [y_name, const("i1", np.array([1]))], f"Y{layer}_seq")  # (seq, batch, H)
    if L > 1:
        node("Concat", h_last, "hn", axis=0)
        node("Concat", c_last, "cn", axis=0)

    if not with_head:
        node("Transpose", [seq], "y", perm=[1, 0, 2])  # (batch, seq, H)
        out_shape: list = ["batch", "seq", H]
    else:
        if c.head == "last":
            feats = node("Squeeze", [h_last[-1], const("i0", np.array([0]))], "h_last")  # (batch, H)
            out_shape = ["batch", c.output_size]
        else:
            # The head runs time-major, then one Transpose of O (not H) features. Transpose → 3-D MatMul crashed
            # ONNX Runtime 1.32's CPU session creation (SIGSEGV, graph optimization ALL) once converted to fp16.
            feats = seq  # (seq, batch, H)
            out_shape = ["batch", "seq", c.output_size]
        head_W = const("head_W", model.head.weight.detach().float().numpy().T)  # (H, O)
        head_b = const("head_b", model.head.bias.detach().float().numpy())  # (O,)
        y = node("Add", [node("MatMul", [feats, head_W], "head_matmul"), head_b], "head_out")
        if c.head != "last":
            y = node("Transpose", [y], "head_batch_major", perm=[1, 0, 2])  # (batch, seq, O)
        if c.kind == "regression" and not (np.all(np.array(c.y_std) == 1) and np.all(np.array(c.y_mean) == 0)):
            y_std, y_mean = (
                const("y_std", np.array(c.y_std, np.float32)),
                const("y_mean", np.array(c.y_mean, np.float32)),
            )
            y = node("Add", [node("Mul", [y, y_std], "y_scaled"), y_mean], "y_units")
        nodes.append(helper.make_node("Identity", [y], ["y"], name="y"))

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "lstm_edge",
        inputs=[
            helper.make_tensor_value_info("x", f32, ["batch", "seq", F]),
            helper.make_tensor_value_info("h0", f32, [L, "batch", H]),
            helper.make_tensor_value_info("c0", f32, [L, "batch", H]),
        ],
        outputs=[
            helper.make_tensor_value_info("y", f32, out_shape),
            helper.make_tensor_value_info("hn", f32, [L, "batch", H]),
            helper.make_tensor_value_info("cn", f32, [L, "batch", H]),
        ],
        initializer=list(inits.values()),
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="lstm-edge",
        producer_version=__version__,
    )
    # ir_version the opset needs, not the newest onnx knows: older runtimes refuse a newer IR.
    onnx_model.ir_version = min(onnx.IR_VERSION, 8 if opset <= 17 else 9 if opset <= 20 else 10)
    props = {"config": json.dumps(c.to_dict()), "gate_layout": GATE_LAYOUT, "lstm_edge_version": __version__}
    props.update(metadata or {})
    helper.set_model_props(onnx_model, props)
    return onnx_model

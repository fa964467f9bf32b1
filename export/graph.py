"""Build the ONNX graph straight from the weights: one fused LSTM/GRU node per layer, weights as plain initializers.

Why by hand rather than torch.onnx: the dynamo exporter leaves the i,f,g,o → i,o,f,c gate reordering as
Slice/Concat on the weights (which also stops onnxruntime from producing DynamicQuantizeLSTM), freezes axes traced
at 1, and its streaming step ran slower. Here the reordering is done once, in numpy, on exact float32 copies.

Every ModelSpec form (lstm_edge.config.ModelConfig) is built here:
- LSTM: ONNX `LSTM`, direction forward or bidirectional (state rows l·D + d, PyTorch's order); no-bias layers leave
  the optional B input empty. GRU: ONNX `GRU` with linear_before_reset=1, which is PyTorch's
  n_t = tanh(W_in·x_t + b_in + r_t ⊙ (W_hn·h_{t-1} + b_hn)).
- Projection (nn.LSTM proj_size): ONNX's LSTM has none, so each layer and direction is a `Scan` whose body is the
  documented cell plus h_t = W_hr·(o_t ⊙ tanh(C_t)); x·W_ih for every step is one MatMul outside the loop.
- Token input: int64 ids → `Gather` on the embedding table. Time-major models take and give [seq, batch, …].
- Variable lengths: `lengths` [batch] int64, cast to int32 for the fused nodes' sequence_lens (outputs past a
  sequence's length are zero, its final state is the state at its last valid step — PyTorch's packed semantics);
  the Scan form masks its steps with the same rule.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lstm_edge import __version__
from lstm_edge.config import C0, CN, H0, HN, LENGTHS, X, Y
from lstm_edge.model import LSTMModel, ModelConfig

# PyTorch stacks LSTM gate blocks as i, f, g(=c), o; ONNX as i, o, f, c. GRU: PyTorch r, z, n; ONNX z, r, h.
TORCH_TO_ONNX_GATES = (0, 3, 1, 2)
TORCH_TO_ONNX_GRU_GATES = (1, 0, 2)
GATE_LAYOUT = "onnx LSTM gate blocks i,o,f,c (reordered from PyTorch's i,f,g,o); B = [Wb, Rb]"
GRU_GATE_LAYOUT = "onnx GRU gate blocks z,r,h (reordered from PyTorch's r,z,n), linear_before_reset=1; B = [Wb, Rb]"
SCAN_GATE_LAYOUT = "Scan body per layer and direction, PyTorch's gate blocks i,f,g,o, then h = W_hr·(o ⊙ tanh(C))"


def gate_layout(config: ModelConfig) -> str:
    """The manifest's one-line description of how the gate weights sit in the graph."""
    if config.proj_size:
        return SCAN_GATE_LAYOUT
    return GATE_LAYOUT if config.family == "lstm" else GRU_GATE_LAYOUT


def reorder_gates(w: np.ndarray, hidden: int, order: tuple[int, ...] = TORCH_TO_ONNX_GATES) -> np.ndarray:
    """Rows of a (G·H, …) or (G·H,) PyTorch gate stack, reordered to ONNX's order (LSTM i,o,f,c by default)."""
    blocks = [w[k * hidden : (k + 1) * hidden] for k in range(len(order))]
    return np.concatenate([blocks[k] for k in order], axis=0)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    if array.dtype.kind == "i":
        array = array.astype(np.int64)
    return numpy_helper.from_array(np.array(array, order="C"), name)  # ascontiguousarray would make a 0-d array 1-d


class _Graph:
    """Nodes and initializers being collected, with the float type every weight is written in."""

    def __init__(self, dtype: type) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.dtype = np.dtype(dtype)

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.setdefault(name, _const(name, array))
        return name

    def weight(self, name: str, t) -> str:
        """A tensor (torch or numpy) written as an initializer in the graph's float type."""
        a = t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t)
        return self.const(name, a.astype(self.dtype))

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def ints(self, name: str, values: list[int]) -> str:
        return self.const(name, np.array(values, np.int64))


def build_onnx(
    model: LSTMModel,
    opset: int = 17,
    metadata: dict[str, str] | None = None,
    with_head: bool = True,
    dtype: type = np.float32,
) -> onnx.ModelProto:
    """The graph for `model` and its ModelConfig (see the module docstring for each form).

    Inputs (config.input_names): x [batch, seq, F] float (time-major: [seq, batch, F]; with an embedding: int64 ids
    [batch, seq] / [seq, batch]), lengths [batch] int64 when config.lengths, h0 [L·D, batch, H_out], c0 [L·D, batch,
    H] (LSTM only). Outputs (config.output_names): y ([batch, O] for heads last/final; [batch, seq, O] or
    [seq, batch, O] for sequence/none), hn, cn (LSTM only). with_head=False gives the bare recurrent graph (y is the
    last layer's output sequence, as head "none"). dtype float64 writes every weight and value in double, for the
    float64 mapping checks with onnx.reference (ONNX Runtime's recurrent kernels are float32 only).
    """
    c: ModelConfig = model.config
    if not with_head and c.head != "none":
        c = ModelConfig.from_dict(c.to_dict() | {"head": "none", "output_size": c.recurrent_width})
    g = _Graph(dtype)
    L, D = c.num_layers, c.num_directions

    x = X
    if c.vocab_size:
        x = g.node("Gather", [g.weight("embedding", model.embedding.weight), X], "x_embedded", axis=0)
    elif not (np.all(np.array(c.x_mean) == 0) and np.all(np.array(c.x_std) == 1)):
        mean, std = g.weight("x_mean", np.array(c.x_mean)), g.weight("x_std", np.array(c.x_std))
        x = g.node("Div", [g.node("Sub", [x, mean], "x_centered"), std], "x_normalized")
    seq = g.node("Transpose", [x], "x_time_major", perm=[1, 0, 2]) if c.batch_first else x  # (seq, batch, F)
    lens = g.node("Cast", [LENGTHS], "lengths_i32", to=TensorProto.INT32) if c.lengths else ""
    mask = _step_mask(g, seq) if c.lengths and c.proj_size else ""

    h_last, c_last = [], []
    weights = model.recurrent_weights()
    for layer in range(L):
        last = layer == L - 1
        need_seq = not last or c.head in ("sequence", "none") or (c.head == "last" and D == 2)
        h0 = _rows(g, H0, layer * D, D, f"h0_l{layer}", L * D)  # (D, batch, H_out)
        c0 = _rows(g, C0, layer * D, D, f"c0_l{layer}", L * D) if c.has_cell_state else ""
        names = {"y": f"Y{layer}" if need_seq else "", "h": HN if L == 1 else f"Yh{layer}"}
        names["c"] = (CN if L == 1 else f"Yc{layer}") if c.has_cell_state else ""
        if c.proj_size:
            y = _projected_layer(g, c, layer, weights[layer], seq, h0, c0, mask, names)
        else:
            y = _fused_layer(g, c, layer, weights[layer], seq, h0, c0, lens, names)
        h_last.append(names["h"])
        c_last.append(names["c"])
        if need_seq:
            seq = y  # (seq, batch, D·H_out)
    if L > 1:
        g.node("Concat", h_last, HN, axis=0)
        if c.has_cell_state:
            g.node("Concat", c_last, CN, axis=0)

    time_axes = ["batch", "seq"] if c.batch_first else ["seq", "batch"]
    per_step = c.head in ("sequence", "none")
    if per_step:
        feats = seq  # (seq, batch, D·H_out): the head runs time-major
        out_shape: list = [*time_axes, c.output_size]
    else:
        feats = _head_features(g, c, seq, h_last[-1])  # (batch, D·H_out)
        out_shape = ["batch", c.output_size]
    y = feats
    if c.head != "none":
        head_W = g.weight("head_W", model.head.weight.detach().T)  # (D·H_out, O)
        y = g.node("MatMul", [feats, head_W], "head_matmul")
        if model.head.bias is not None:
            y = g.node("Add", [y, g.weight("head_b", model.head.bias)], "head_out")
    if per_step and c.batch_first:
        # One Transpose of the O outputs after the head, not of the D·H_out features before it: Transpose → 3-D
        # MatMul crashed ONNX Runtime 1.32's CPU session creation (SIGSEGV, graph optimization ALL) once in fp16.
        y = g.node("Transpose", [y], "y_batch_major", perm=[1, 0, 2])  # (batch, seq, O)
    if c.kind == "regression" and not (np.all(np.array(c.y_std) == 1) and np.all(np.array(c.y_mean) == 0)):
        y_std, y_mean = g.weight("y_std", np.array(c.y_std)), g.weight("y_mean", np.array(c.y_mean))
        y = g.node("Add", [g.node("Mul", [y, y_std], "y_scaled"), y_mean], "y_units")
    g.nodes.append(helper.make_node("Identity", [y], [Y], name=Y))

    return _model_proto(g, c, out_shape, time_axes, opset, metadata)


def _model_proto(
    g: _Graph, c: ModelConfig, out_shape: list, time_axes: list[str], opset: int, metadata: dict[str, str] | None
) -> onnx.ModelProto:
    """The built nodes as a model: declared inputs and outputs, opset and the IR version it needs, metadata."""
    elem = helper.np_dtype_to_tensor_dtype(g.dtype)
    L, D, H, H_out = c.num_layers, c.num_directions, c.hidden_size, c.state_size
    x_info = (
        helper.make_tensor_value_info(X, TensorProto.INT64, time_axes)
        if c.vocab_size
        else helper.make_tensor_value_info(X, elem, [*time_axes, c.input_size])
    )
    inputs = [x_info]
    if c.lengths:
        inputs.append(helper.make_tensor_value_info(LENGTHS, TensorProto.INT64, ["batch"]))
    state = [(H0, HN, H_out)] + ([(C0, CN, H)] if c.has_cell_state else [])
    inputs += [helper.make_tensor_value_info(i, elem, [L * D, "batch", w]) for i, _, w in state]
    outputs = [helper.make_tensor_value_info(Y, elem, out_shape)]
    outputs += [helper.make_tensor_value_info(o, elem, [L * D, "batch", w]) for _, o, w in state]
    graph = helper.make_graph(g.nodes, "lstm_edge", inputs, outputs, initializer=list(g.inits.values()))
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="lstm-edge",
        producer_version=__version__,
    )
    # ir_version the opset needs, not the newest onnx knows: older runtimes refuse a newer IR.
    onnx_model.ir_version = min(onnx.IR_VERSION, 8 if opset <= 17 else 9 if opset <= 20 else 10)
    props = {
        "config": json.dumps(c.to_dict()),
        "gate_layout": gate_layout(c),
        "layout": "batch_first" if c.batch_first else "time_major",
        "lstm_edge_version": __version__,
    }
    props.update(metadata or {})
    helper.set_model_props(onnx_model, props)
    return onnx_model


def _rows(g: _Graph, name: str, start: int, count: int, out: str, total: int) -> str:
    """Rows [start, start+count) of a state input [L·D, batch, W]; the input itself when that is all of it."""
    if count == total:
        return name
    return g.node("Slice", [name, g.ints(f"i{start}", [start]), g.ints(f"i{start + count}", [start + count]),
                            g.ints("i0", [0])], out)  # fmt: skip


def _to_sequence(g: _Graph, y: str, D: int, out: str) -> str:
    """ONNX's Y (seq, D, batch, H_out) → (seq, batch, D·H_out), directions side by side as PyTorch's `out`."""
    if D == 1:
        return g.node("Squeeze", [y, g.ints("i1", [1])], out)
    t = g.node("Transpose", [y], f"{out}_t", perm=[0, 2, 1, 3])  # (seq, batch, D, H_out)
    return g.node("Reshape", [t, g.ints("shape_00m1", [0, 0, -1])], out)


def _fused_layer(g: _Graph, c: ModelConfig, layer: int, dirs: list[dict], seq, h0, c0, lens, names) -> str:
    """One ONNX LSTM or GRU node for all directions of a layer; returns its output sequence (seq, batch, D·H)."""
    H, D = c.hidden_size, c.num_directions
    order = TORCH_TO_ONNX_GATES if c.family == "lstm" else TORCH_TO_ONNX_GRU_GATES
    W = g.weight(f"W{layer}", np.stack([reorder_gates(d["w_ih"].double().numpy(), H, order) for d in dirs]))
    R = g.weight(f"R{layer}", np.stack([reorder_gates(d["w_hh"].double().numpy(), H, order) for d in dirs]))
    B = ""
    if c.bias:
        b = [np.concatenate([reorder_gates(d[k].double().numpy(), H, order) for k in ("b_ih", "b_hh")]) for d in dirs]
        B = g.weight(f"B{layer}", np.stack(b))  # (D, 2·G·H)
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if c.family == "lstm":
        ins, outs, op = [seq, W, R, B, lens, h0, c0], [names["y"], names["h"], names["c"]], "LSTM"
        attrs["layout"] = 0
    else:
        ins, outs, op = [seq, W, R, B, lens, h0], [names["y"], names["h"]], "GRU"
        attrs["linear_before_reset"] = 1
    while ins[-1] == "":
        ins.pop()
    g.nodes.append(helper.make_node(op, ins, outs, name=f"{op.lower()}{layer}", **attrs))
    return _to_sequence(g, names["y"], D, f"Y{layer}_seq") if names["y"] else ""


def _step_mask(g: _Graph, seq: str) -> str:
    """(seq, batch, 1) bool: step t of sequence b is valid when t < lengths[b]."""
    T = g.node("Gather", [g.node("Shape", [seq], "seq_shape"), g.ints("i0s", [0])], "seq_len")  # (1,)
    T0 = g.node("Squeeze", [T, g.ints("i0", [0])], "seq_len_scalar")
    t = g.node("Range", [g.const("zero_i64", np.array(0, np.int64)), T0, g.const("one_i64", np.array(1, np.int64))],
               "steps")  # fmt: skip
    t = g.node("Unsqueeze", [t, g.ints("i1", [1])], "steps_col")  # (seq, 1)
    valid = g.node("Less", [t, LENGTHS], "valid_steps")  # (seq, batch)
    return g.node("Unsqueeze", [valid, g.ints("i2", [2])], "valid_mask")  # (seq, batch, 1)


def _projected_layer(g: _Graph, c: ModelConfig, layer: int, dirs: list[dict], seq, h0, c0, mask, names) -> str:
    """A projected LSTM layer as one Scan per direction; returns its output sequence (seq, batch, D·H_out)."""
    D = c.num_directions
    ys, hs, cs = [], [], []
    for d, w in enumerate(dirs):
        tag = f"l{layer}d{d}"
        W_x = g.weight(f"W_ih_{tag}", w["w_ih"].T)  # (F_l, 4H)
        xw = g.node("MatMul", [seq, W_x], f"xw_{tag}")  # (seq, batch, 4H) = W_ih·x_t for every t
        if c.bias:
            xw = g.node("Add", [xw, g.weight(f"b_{tag}", w["b_ih"].double() + w["b_hh"].double())], f"xwb_{tag}")
        scan_in = [xw] + ([mask] if mask else [])
        body = _projected_cell(c, w, g.dtype, tag, bool(mask))
        outs = [f"hn_{tag}", f"cn_{tag}", f"y_{tag}"]
        g.nodes.append(
            helper.make_node(
                "Scan",
                [_row(g, h0, d, D, tag), _row(g, c0, d, D, tag), *scan_in],
                outs,
                name=f"scan_{tag}",
                body=body,
                num_scan_inputs=len(scan_in),
                scan_input_directions=[d] * len(scan_in),
                scan_output_directions=[d],
            )
        )
        ys.append(outs[2])
        hs.append(g.node("Unsqueeze", [outs[0], g.ints("i0", [0])], f"hn_{tag}_3d"))
        cs.append(g.node("Unsqueeze", [outs[1], g.ints("i0", [0])], f"cn_{tag}_3d"))
    for name, parts in ((names["h"], hs), (names["c"], cs)):
        g.node("Concat", parts, name, axis=0) if len(parts) > 1 else g.node("Identity", parts, name)
    if not names["y"]:
        return ""
    return g.node("Concat", ys, f"Y{layer}_seq", axis=2) if D == 2 else ys[0]


def _row(g: _Graph, state: str, d: int, D: int, tag: str) -> str:
    """Direction d of a layer's state (D, batch, W) as (batch, W), what the Scan carries."""
    return g.node("Squeeze", [_rows(g, state, d, 1, f"{state}_{tag}", D), g.ints("i0", [0])], f"{state}_{tag}_2d")


def _projected_cell(c: ModelConfig, w: dict, dtype: np.dtype, tag: str, masked: bool) -> onnx.GraphProto:
    """The Scan body: state (h [batch, H_out], C [batch, H]), scan input xw_t [batch, 4H] (+ valid [batch, 1]).

        z = xw_t + W_hh·h_{t-1}; i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o)   (PyTorch's blocks i, f, g, o)
        C_t = f ⊙ C_{t-1} + i ⊙ g;   h_t = W_hr·(o ⊙ tanh(C_t))
    Masked (variable lengths): a step past the sequence's length keeps the state and outputs zero.
    """
    b = _Graph(dtype)
    elem = helper.np_dtype_to_tensor_dtype(b.dtype)
    H = c.hidden_size
    z = b.node("Add", ["xw_t", b.node("MatMul", ["h", b.weight(f"W_hh_{tag}", w["w_hh"].T)], "zh")], "z")  # (B, 4H)
    split = b.ints("gate_split", [H, H, H, H])
    b.nodes.append(helper.make_node("Split", [z, split], ["z_i", "z_f", "z_g", "z_o"], name="gates", axis=1))
    i, f, o = (b.node("Sigmoid", [f"z_{k}"], f"{k}_t") for k in ("i", "f", "o"))
    g_t = b.node("Tanh", ["z_g"], "g_t")
    C = b.node("Add", [b.node("Mul", [f, "C"], "fC"), b.node("Mul", [i, g_t], "ig")], "C_new")  # (B, H)
    h = b.node(
        "MatMul",
        [b.node("Mul", [o, b.node("Tanh", [C], "tanh_C")], "o_tanh_C"), b.weight(f"W_hr_{tag}", w["w_hr"].T)],
        "h_new",
    )  # fmt: skip  (B, H_out)
    outs = [h, C, h]
    if masked:
        zero = b.const("zero", np.zeros((), b.dtype))
        outs = [b.node("Where", ["valid_t", h, "h"], "h_out"), b.node("Where", ["valid_t", C, "C"], "C_out"),
                b.node("Where", ["valid_t", h, zero], "y_t")]  # fmt: skip
    else:
        outs[2] = b.node("Identity", [h], "y_t")
    ins = [helper.make_tensor_value_info(n, elem, None) for n in ("h", "C", "xw_t")]
    if masked:
        ins.append(helper.make_tensor_value_info("valid_t", TensorProto.BOOL, None))
    out_info = [helper.make_tensor_value_info(n, elem, None) for n in outs]
    return helper.make_graph(b.nodes, f"cell_{tag}", ins, out_info, initializer=list(b.inits.values()))


def _head_features(g: _Graph, c: ModelConfig, seq: str, h_final: str) -> str:
    """(batch, D·H_out): what heads "last" and "final" read, as LSTMModel._features."""
    D = c.num_directions
    if D == 1:  # out[:, -1] and the final state coincide (with lengths: both at the sequence's last valid step)
        return g.node("Squeeze", [h_final, g.ints("i0", [0])], "h_last")
    if c.head == "final":  # cat(h_n[-2], h_n[-1]): (D, batch, H_out) → (batch, D·H_out)
        t = g.node("Transpose", [h_final], "h_final_t", perm=[1, 0, 2])
        return g.node("Reshape", [t, g.ints("shape_0m1", [0, -1])], "h_final")
    if not c.lengths:  # out[:, -1]: forward's last step beside the backward direction's output at T-1
        return g.node("Gather", [seq, g.const("last_step", np.array(-1, np.int64))], "h_last", axis=0)
    # out[b, lengths[b] - 1]: GatherElements along time with the index broadcast over the features.
    idx = g.node("Sub", [LENGTHS, g.const("one_i64", np.array(1, np.int64))], "last_valid")  # (batch,)
    idx = g.node("Unsqueeze", [idx, g.ints("i02", [0, 2])], "last_valid_3d")  # (1, batch, 1)
    shape = g.node(
        "Concat", [g.ints("i1v", [1]), g.node("Shape", [LENGTHS], "batch_shape"), g.ints("width", [c.recurrent_width])],
        "gather_shape", axis=0,
    )  # fmt: skip
    idx = g.node("Expand", [idx, shape], "last_valid_idx")  # (1, batch, D·H_out)
    picked = g.node("GatherElements", [seq, idx], "h_last_3d", axis=0)  # (1, batch, D·H_out)
    return g.node("Squeeze", [picked, g.ints("i0", [0])], "h_last")

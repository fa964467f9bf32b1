"""The weights codegen writes, read from a bundle's fp32 `model.onnx` (the graph lstm-edge's builder writes).

Only bundle reading and onnx: no torch, no exporter. Anything the C cannot express is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_edge.bundle import Bundle
from lstm_edge.c_support import SUPPORTED as SUPPORTED  # re-exported: codegen's callers read the form check here
from lstm_edge.c_support import bundle_sha256 as bundle_sha256
from lstm_edge.c_support import check_supported, refuse
from lstm_edge.c_support import unsupported as unsupported
from lstm_edge.onnx_io import load_onnx_checked

# ONNX stacks gate blocks i, o, f, c; the C (like GateLSTM and the seed's equations) uses i, f, c, o.
ONNX_TO_IFCO = (0, 2, 3, 1)
# ONNX stacks GRU gate blocks z, r, h; the C (like torch.nn.GRU) uses r, z, n.
ONNX_TO_RZN = (1, 0, 2)


@dataclass
class CellWeights:
    """One layer's weights as the C takes them, float32. LSTM: gate blocks i, f, c, o, biases summed (b_h None).
    GRU: gate blocks r, z, n (torch.nn.GRU's), b = b_ih and b_h = b_hh kept apart (n = tanh(W_in x + b_in +
    r ⊙ (W_hn h + b_hn)): the recurrent bias of n sits inside the reset gate's product)."""

    W_x: np.ndarray  # (G·H, F_l) float32, G = 4 (LSTM) or 3 (GRU)
    W_h: np.ndarray  # (G·H, H) float32
    b: np.ndarray  # (G·H,) float32: LSTM Wb + Rb; GRU Wb (b_ih)
    b_h: np.ndarray | None = None  # (3H,) float32: GRU Rb (b_hh); None for an LSTM


@dataclass
class ModelWeights:
    """One unidirectional, batch-first LSTM or GRU stack with normalization (or an embedding table in front) and a
    Linear head, as float32 numpy."""

    layers: list[CellWeights]
    head_w: np.ndarray  # (O, H)
    head_b: np.ndarray  # (O,)
    x_mean: np.ndarray  # (F,)
    x_std: np.ndarray  # (F,)
    y_mean: np.ndarray | None  # (O,) regression only
    y_std: np.ndarray | None
    head: str  # last | sequence
    kind: str  # regression | classification
    family: str = "lstm"  # lstm | gru
    embedding: np.ndarray | None = None  # (V, F) float32: token id → layer 0's input; None for float inputs

    @property
    def input_size(self) -> int:
        """F: the model's input features (layer 0's W_x columns)."""
        return self.layers[0].W_x.shape[1]

    @property
    def hidden_size(self) -> int:
        """H: the hidden size."""
        return self.layers[0].W_h.shape[1]

    @property
    def output_size(self) -> int:
        """O: the head's outputs."""
        return self.head_w.shape[0]


def _reorder(a: np.ndarray, H: int, order: tuple[int, ...]) -> np.ndarray:
    """Gate blocks of H rows from ONNX's order to the C's (`order`: ONNX_TO_IFCO or ONNX_TO_RZN)."""
    blocks = [a[k * H : (k + 1) * H] for k in range(len(order))]
    return np.concatenate([blocks[k] for k in order], axis=0)


# The op types of the builder's graph of a unidirectional LSTM or GRU stack with a Linear head (and, for token
# input, the embedding's Gather): all the C emits.
C_NODES = frozenset(
    {"LSTM", "GRU", "Gather", "Sub", "Div", "Transpose", "Slice", "Squeeze", "Concat", "MatMul", "Add", "Mul",
     "Identity"}
)  # fmt: skip

# Shape plumbing a torch.onnx graph carries around what it computes: named after the node that computes, if any.
SHAPE_NODES = frozenset({"Shape", "Reshape", "Expand", "Gather", "Unsqueeze", "Concat", "Cast", "Constant", "Slice"})


def read_weights(bundle: Bundle, verify_hash: bool = True) -> ModelWeights:
    """Weights, normalization and head of the bundle's fp32 graph. Raises LstmEdgeError for anything else."""
    # deferred: onnx (heavy to import), needed only when weights are read, not by the c runner's support check
    import onnx
    from onnx import numpy_helper  # deferred: onnx, as above

    c = bundle.config
    check_supported(c)  # the form first, in its own words; the graph checks below catch a graph not the builder's
    path: Path = bundle.artifact("fp32", verify_hash)
    model: onnx.ModelProto = load_onnx_checked(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    op = "GRU" if c.family == "gru" else "LSTM"
    cells = [n for n in model.graph.node if n.op_type == op]
    alien = [n for n in model.graph.node if n.op_type not in C_NODES]
    gathers = [n for n in model.graph.node if n.op_type == "Gather"]
    if not c.vocab_size or len(gathers) != 1 or list(gathers[0].input[:1]) != ["embedding"]:
        alien += gathers  # a Gather is the C's only as the embedding lookup of a token model
    if alien:  # a whole graph exported from the model's own forward, or a foreign one: name the node
        first = next((n for n in alien if n.op_type not in SHAPE_NODES), alien[0])  # the computing node first
        more = sorted({n.op_type for n in alien} - {first.op_type})
        also = f"; its graph also holds {', '.join(more)} nodes" if more else ""
        raise refuse(
            f"node {first.name or first.output[0]!r} ({first.op_type}) is not one the C emits{also} (not the "
            f"builder's graph of a unidirectional {op})"
        )
    if len(cells) != c.num_layers:
        raise refuse(f"{len(cells)} fused {op} nodes for {c.num_layers} layers (not the builder's graph)")
    layers = [_layer_weights(k, node, inits, c.hidden_size) for k, node in enumerate(cells)]
    if "head_W" not in inits or "head_b" not in inits:
        raise refuse("no Linear head (head_W, head_b) in the graph")
    regression = c.kind == "regression"
    F = layers[0].W_x.shape[1]
    embedding = np.ascontiguousarray(inits["embedding"], dtype=np.float32) if c.vocab_size else None
    return ModelWeights(
        layers=layers,
        head_w=np.ascontiguousarray(inits["head_W"].T, dtype=np.float32),
        head_b=inits["head_b"].astype(np.float32),
        x_mean=np.asarray(c.x_mean or [0.0] * F, np.float32),  # a token model has none: its input is the table's
        x_std=np.asarray(c.x_std or [1.0] * F, np.float32),
        y_mean=np.asarray(c.y_mean, np.float32) if regression else None,
        y_std=np.asarray(c.y_std, np.float32) if regression else None,
        head=c.head,
        kind=c.kind,
        family=c.family,
        embedding=embedding,
    )


def _layer_weights(k: int, node, inits: dict, H: int) -> CellWeights:
    """Layer k's fused LSTM or GRU node as CellWeights (gate blocks reordered to the C's, float64 sums rounded
    once). Raises LstmEdgeError for anything but a forward, batch-first-fed node with stored weights and biases."""
    import onnx  # deferred: onnx, as read_weights

    gru = node.op_type == "GRU"
    G = 3 if gru else 4
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        raise refuse(f"layer {k} is {direction} (bidirectional and reverse {node.op_type}s are not supported)")
    if attrs.get("layout", 0) != 0:
        raise refuse(f"layer {k} has layout={attrs['layout']}")
    if attrs.get("input_forget", 0) or "clip" in attrs or "activations" in attrs:
        raise refuse(f"layer {k} uses input_forget, clip or custom activations")
    if gru and attrs.get("linear_before_reset", 0) != 1:
        raise refuse(f"layer {k} is a GRU with linear_before_reset=0 (not torch.nn.GRU's formula)")
    ins = list(node.input) + [""] * (8 - len(node.input))
    if ins[4]:
        raise refuse("it takes per-sequence lengths (variable-length batches)")
    if ins[7]:
        raise refuse(f"layer {k} has peephole weights")
    try:
        W, R, B = inits[ins[1]][0], inits[ins[2]][0], inits[ins[3]][0]  # (G·H, F), (G·H, H), (2·G·H,)
    except KeyError as e:
        raise refuse(f"layer {k}'s weights are computed in the graph, not stored as initializers") from e
    if R.shape != (G * H, H) or W.shape[0] != G * H or B.shape != (2 * G * H,):
        raise refuse(f"layer {k} has weight shapes {W.shape}, {R.shape}, {B.shape} for hidden {H}")
    order = ONNX_TO_RZN if gru else ONNX_TO_IFCO
    wx, wh = _reorder(W, H, order).astype(np.float32), _reorder(R, H, order).astype(np.float32)
    if gru:
        return CellWeights(wx, wh, _reorder(B[: G * H], H, order).astype(np.float32),
                           _reorder(B[G * H :], H, order).astype(np.float32))  # fmt: skip
    b = (B[: G * H].astype(np.float64) + B[G * H :]).astype(np.float32)
    return CellWeights(wx, wh, _reorder(b, H, order))

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


@dataclass
class CellWeights:
    """One LSTM layer's weights as the C takes them: float32, gate blocks i, f, c, o, biases summed."""

    W_x: np.ndarray  # (4H, F_l) float32, gate blocks i, f, c, o
    W_h: np.ndarray  # (4H, H) float32
    b: np.ndarray  # (4H,) float32 = Wb + Rb


@dataclass
class ModelWeights:
    """One unidirectional, batch-first LSTM stack with normalization and a Linear head, as float32 numpy."""

    layers: list[CellWeights]
    head_w: np.ndarray  # (O, H)
    head_b: np.ndarray  # (O,)
    x_mean: np.ndarray  # (F,)
    x_std: np.ndarray  # (F,)
    y_mean: np.ndarray | None  # (O,) regression only
    y_std: np.ndarray | None
    head: str  # last | sequence
    kind: str  # regression | classification

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


def _ifco(a: np.ndarray, H: int) -> np.ndarray:
    blocks = [a[k * H : (k + 1) * H] for k in range(4)]
    return np.concatenate([blocks[k] for k in ONNX_TO_IFCO], axis=0)


# The op types of the builder's graph of a unidirectional LSTM stack with a Linear head: all the C emits.
C_NODES = frozenset(
    {"LSTM", "Sub", "Div", "Transpose", "Slice", "Squeeze", "Concat", "MatMul", "Add", "Mul", "Identity"}
)

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
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    alien = [n for n in model.graph.node if n.op_type not in C_NODES]
    if alien:  # a whole graph exported from the model's own forward, or a foreign one: name the node
        first = next((n for n in alien if n.op_type not in SHAPE_NODES), alien[0])  # the computing node first
        more = sorted({n.op_type for n in alien} - {first.op_type})
        also = f"; its graph also holds {', '.join(more)} nodes" if more else ""
        raise refuse(
            f"node {first.name or first.output[0]!r} ({first.op_type}) is not one the C emits{also} (not the "
            "builder's graph of a unidirectional LSTM)"
        )
    if len(lstms) != c.num_layers:
        raise refuse(f"{len(lstms)} fused LSTM nodes for {c.num_layers} layers (not the builder's graph)")
    H = c.hidden_size
    layers = []
    for k, node in enumerate(lstms):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction != "forward":
            raise refuse(f"layer {k} is {direction} (bidirectional and reverse LSTMs are not supported)")
        if attrs.get("layout", 0) != 0:
            raise refuse(f"layer {k} has layout={attrs['layout']}")
        if attrs.get("input_forget", 0) or "clip" in attrs or "activations" in attrs:
            raise refuse(f"layer {k} uses input_forget, clip or custom activations")
        ins = list(node.input) + [""] * (8 - len(node.input))
        if ins[4]:
            raise refuse("it takes per-sequence lengths (variable-length batches)")
        if ins[7]:
            raise refuse(f"layer {k} has peephole weights")
        try:
            W, R, B = inits[ins[1]][0], inits[ins[2]][0], inits[ins[3]][0]  # (4H, F), (4H, H), (8H,)
        except KeyError as e:
            raise refuse(f"layer {k}'s weights are computed in the graph, not stored as initializers") from e
        if R.shape != (4 * H, H) or W.shape[0] != 4 * H or B.shape != (8 * H,):
            raise refuse(f"layer {k} has weight shapes {W.shape}, {R.shape}, {B.shape} for hidden {H}")
        b = (B[: 4 * H].astype(np.float64) + B[4 * H :]).astype(np.float32)
        layers.append(CellWeights(_ifco(W, H).astype(np.float32), _ifco(R, H).astype(np.float32), _ifco(b, H)))
    if "head_W" not in inits or "head_b" not in inits:
        raise refuse("no Linear head (head_W, head_b) in the graph")
    regression = c.kind == "regression"
    return ModelWeights(
        layers=layers,
        head_w=np.ascontiguousarray(inits["head_W"].T, dtype=np.float32),
        head_b=inits["head_b"].astype(np.float32),
        x_mean=np.asarray(c.x_mean, np.float32),
        x_std=np.asarray(c.x_std, np.float32),
        y_mean=np.asarray(c.y_mean, np.float32) if regression else None,
        y_std=np.asarray(c.y_std, np.float32) if regression else None,
        head=c.head,
        kind=c.kind,
    )

"""A recurrent ONNX graph lstm-edge did not write, read into lstm-edge's I/O contract: its sequence-length input
dropped, its declared sizes freed, its I/O learned from a probe run in float64 (Contract), and the graph wrapped in
exact adapter nodes. What `import` (importer.py) and `import --rebuild` (rebuild.py) share, with their options and
result types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lstm_edge.config import C0, CN, H0, HN, X, Y
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.lint import Finding
from lstm_edge.onnx_io import RECURRENT_OPS
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.runtimes.signature import Signature

PROBE_B, PROBE_T = 2, 5  # distinct, so the batch and time axes of every output can be told apart


@dataclass
class ImportConfig:
    """Options of `lstm-edge import`: overwrite (force), re-export through the builder (rebuild), an .npz of arrays
    for graph inputs that are really weights, the bundle's name (default: the file's stem), and the opset of a
    rebuild."""

    force: bool = False
    rebuild: bool = False
    weights: str | Path | None = None  # .npz of arrays for graph inputs that are really weights (W, R, B, …)
    name: str | None = None
    opset: int = 17


@dataclass
class ImportResult:
    """What an import wrote: the bundle, seconds taken, whether it was rebuilt, whether it streams, the source's
    lint findings, notes on what was changed, and ONNX Runtime CPU's worst scaled error against the reference."""

    bundle: Path
    seconds: float
    rebuilt: bool
    streaming: bool
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    max_scaled_error: float = 0.0  # ONNX Runtime CPU fp32 against the float64 reference, over the golden cases


def drop_lengths(model: onnx.ModelProto, sig: Signature, notes: list[str]) -> onnx.ModelProto:
    """The graph without its sequence-lengths input (a bundle runs whole sequences of one length), said in `notes`.

    Raises LstmEdgeError when that input feeds anything besides the recurrent nodes' sequence_lens."""
    lengths = sig.port("lengths")
    if lengths is None:
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n in m.graph.node:
        if n.op_type in RECURRENT_OPS and len(n.input) > 4 and n.input[4] == lengths.name:
            n.input[4] = ""
    if any(lengths.name in n.input for n in m.graph.node):
        raise LstmEdgeError(
            f"{lengths.name!r} is used beyond the recurrent nodes' sequence_lens", "import it without lengths"
        )
    m.graph.input.remove(next(i for i in m.graph.input if i.name == lengths.name))
    notes.append(
        f"dropped the sequence_lens input {lengths.name!r}: a bundle runs whole sequences of one length "
        "(OpenVINO ignores sequence_lens and tract cannot load it)"
    )
    return m


def free_axes(model: onnx.ModelProto, sig: Signature, notes: list[str]) -> onnx.ModelProto:
    """Batch and time of x, and batch of the state inputs, declared symbolic (see FREED)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    axes = {}
    x = sig.port("x")
    if x is not None and x.dims and len(x.dims) == 3:
        axes[x.name] = {sig.x_time: "seq", 1 - sig.x_time: "batch"}
    for role in ("h0", "c0"):
        p = sig.port(role)
        if p is not None and p.dims and len(p.dims) == 3:
            axes[p.name] = {sig.state_batch: "batch"}
    freed = []
    for vi in m.graph.input:
        for k, sym in axes.get(vi.name, {}).items():
            d = vi.type.tensor_type.shape.dim[k]
            if d.HasField("dim_value"):
                freed.append(f"{vi.name} axis {k} ({d.dim_value} → {sym})")
                d.Clear()
                d.dim_param = sym
    for vi in m.graph.output:  # wrap declares the contract's outputs; the foreign ones become inner values
        vi.type.tensor_type.ClearField("shape")
    if freed:
        notes.append(
            "declared fixed sizes freed (the probe and ONNX Runtime prove other sizes run): " + ", ".join(freed)
        )
    return m


def _probe(model: onnx.ModelProto, sig: Signature, seed: int = 0) -> tuple[dict, dict]:
    """Feeds at B=PROBE_B, T=PROBE_T (random state where the state is an input) and the float64 outputs."""
    x = sig.port("x")
    F = x.dims[2] if x.dims and isinstance(x.dims[2], int) else None
    if F is None:
        raise LstmEdgeError(f"{x.describe()} does not declare its feature count", "re-export with a fixed feature axis")
    rng = np.random.default_rng(seed)
    shape = (PROBE_T, PROBE_B, F) if sig.x_time == 0 else (PROBE_B, PROBE_T, F)
    given = {x.name: rng.standard_normal(shape).astype(np.float32)}
    feeds = sig.bind(given)
    for role in ("h0", "c0"):
        p = sig.port(role)
        if p is not None:
            feeds[p.name] = rng.uniform(-0.9, 0.9, feeds[p.name].shape).astype(np.float32)
    return feeds, evaluator(model)(feeds)


@dataclass
class Contract:
    """How the foreign graph's I/O maps to x/h0/c0 → y/hn/cn, learned from the signature and a probe run."""

    family: str
    x_time: int
    y_form: str  # "raw" [T, D, B, H] | "time-major" [T, B, O] | "batch-first" [B, T, O] | "last" [B, O]
    input_size: int
    hidden_size: int
    num_layers: int
    directions: int
    output_size: int
    stateful: bool
    names: dict[str, str]  # contract name → foreign name
    state_batch: int = 1  # 0 with layout=1: the foreign state is [B, L·D, H]


def learn_contract(model: onnx.ModelProto, sig: Signature) -> Contract:
    """How the graph's I/O maps onto x/h0/c0 → y/hn/cn, from its signature and a float64 probe run.

    Raises LstmEdgeError for a graph bundles cannot hold (no recurrent node, mixed or RNN nodes, GRU or
    bidirectional for now, an undeclared feature count, or a y that is neither a sequence nor a last step)."""
    recurrent = [n for n in model.graph.node if n.op_type in RECURRENT_OPS]
    if not recurrent:
        raise LstmEdgeError("the model has no LSTM or GRU node", "lstm-edge imports recurrent models (lint says why)")
    ops = {n.op_type for n in recurrent}
    if ops - {"LSTM", "GRU"} or len(ops) > 1:
        raise LstmEdgeError(f"the model's recurrent nodes are {', '.join(sorted(ops))}", "bundles hold LSTM or GRU")
    family = recurrent[0].op_type.lower()
    if family == "gru":  # bundle runners carry (h, c) today; the (h,) state of SEAMS item 4 is not in them yet
        raise LstmEdgeError(
            "bundles of GRU models need runners that carry a GRU's single state, which lstm-edge does not have yet",
            "run the model as it is: lstm-edge run MODEL.onnx --input x.npy (h0 starts at zero)",
        )
    attrs = {a.name: helper.get_attribute_value(a) for a in recurrent[0].attribute}
    direction = attrs.get("direction", b"forward")
    D = 2 if (direction.decode() if isinstance(direction, bytes) else direction) == "bidirectional" else 1
    H = int(attrs["hidden_size"])
    if D == 2:  # bundle runners size the state [layers, B, H]; a bidirectional state has layers·2 rows
        raise LstmEdgeError(
            "bundles of bidirectional models need runners whose state has layers × 2 rows, which lstm-edge does not "
            "have yet",
            "run the model as it is: lstm-edge run MODEL.onnx --input x.npz",
        )
    feeds, outs = _probe(model, sig)
    x = sig.port("x")
    names = {X: x.name}
    h0, c0 = sig.port("h0"), sig.port("c0")
    hn, cn = sig.port("hn"), sig.port("cn")
    stateful = h0 is not None and hn is not None and (family == "gru" or (c0 is not None and cn is not None))
    if stateful:
        names |= {H0: h0.name, HN: hn.name} | ({C0: c0.name, CN: cn.name} if family == "lstm" else {})
    elif hn is not None:
        names |= {HN: hn.name} | ({CN: cn.name} if family == "lstm" and cn is not None else {})
    y = sig.port("y") or next((o for o in sig.outputs if o.name not in names.values()), None)
    if y is None:
        raise LstmEdgeError("the model has no output besides its state", "import a model that returns y")
    names[Y] = y.name
    ya = outs[y.name]
    if ya.ndim == 4 and ya.shape[0] == PROBE_T and ya.shape[2] == PROBE_B:
        form, O = "raw", ya.shape[1] * ya.shape[3]
    elif ya.ndim == 4 and ya.shape[:2] == (PROBE_B, PROBE_T):  # layout=1: [B, T, D, H]
        form, O = "raw-batch-first", ya.shape[2] * ya.shape[3]
    elif ya.ndim == 3 and ya.shape[:2] == (PROBE_T, PROBE_B):
        form, O = "time-major", ya.shape[2]
    elif ya.ndim == 3 and ya.shape[:2] == (PROBE_B, PROBE_T):
        form, O = "batch-first", ya.shape[2]
    elif ya.ndim == 2 and ya.shape[0] == PROBE_B:
        form, O = "last", ya.shape[1]
    else:
        raise LstmEdgeError(
            f"output {y.name!r} has shape {ya.shape} for B={PROBE_B}, T={PROBE_T}: neither a sequence nor a last step",
            "import a model whose y is [T, B, …], [B, T, …] or [B, O]",
        )
    state = outs[hn.name] if hn is not None else None
    rows = state.shape[1 - sig.state_batch] if state is not None else len(recurrent) * D
    return Contract(family, sig.x_time, form, int(x.dims[2]), H, rows // D, D, int(O), stateful, names, sig.state_batch)


def wrap(model: onnx.ModelProto, c: Contract) -> onnx.ModelProto:
    """The foreign graph inside lstm-edge's I/O contract: its own I/O renamed out of the way, adapter nodes
    (Transpose/Reshape/Identity, exact) from x/h0/c0 and to y/hn/cn. Nothing inside the graph changes."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    contract = {X, H0, C0, Y, HN, CN}
    # Any value the foreign graph calls x, y, h0, … is renamed first, so adapter names cannot collide.
    rename = {v: f"{v}__foreign" for n in g.node for v in (*n.input, *n.output) if v in contract}
    rename |= {i.name: f"{i.name}__foreign" for i in (*g.input, *g.output) if i.name in contract}
    for n in g.node:
        n.input[:] = [rename.get(v, v) for v in n.input]
        n.output[:] = [rename.get(v, v) for v in n.output]
    for vi in (*g.input, *g.output, *g.value_info):
        vi.name = rename.get(vi.name, vi.name)
    inner = {k: rename.get(v, v) for k, v in c.names.items()}
    f32 = TensorProto.FLOAT
    nodes = []
    if c.x_time == 0:
        nodes.append(helper.make_node("Transpose", [X], [inner[X]], perm=[1, 0, 2], name="import_x"))
    else:
        nodes.append(helper.make_node("Identity", [X], [inner[X]], name="import_x"))
    state_op = {"op_type": "Identity"} if c.state_batch == 1 else {"op_type": "Transpose", "perm": [1, 0, 2]}
    for k in (H0, C0):
        if k in inner:
            nodes.append(helper.make_node(inputs=[k], outputs=[inner[k]], name=f"import_{k}", **state_op))
    keep_inputs = [i for i in g.input if i.name not in {inner.get(k) for k in (X, H0, C0)}]
    new_inputs = [helper.make_tensor_value_info(X, f32, ["batch", "seq", c.input_size])]
    rows = c.num_layers * c.directions
    for k in (H0, C0):
        if k in inner:
            new_inputs.append(helper.make_tensor_value_info(k, f32, [rows, "batch", c.hidden_size]))
    tail = []
    y_in = inner[Y]
    if c.y_form == "raw":  # [T, D, B, H] → [B, T, D, H] → [B, T, D·H]
        tail.append(helper.make_node("Transpose", [y_in], ["import_y_bf"], perm=[2, 0, 1, 3], name="import_y_bf"))
        shape = numpy_helper.from_array(np.array([0, 0, -1], np.int64), "import_y_shape")
        g.initializer.append(shape)
        tail.append(helper.make_node("Reshape", ["import_y_bf", "import_y_shape"], [Y], name="import_y"))
    elif c.y_form == "raw-batch-first":  # [B, T, D, H] → [B, T, D·H]
        shape = numpy_helper.from_array(np.array([0, 0, -1], np.int64), "import_y_shape")
        g.initializer.append(shape)
        tail.append(helper.make_node("Reshape", [y_in, "import_y_shape"], [Y], name="import_y"))
    elif c.y_form == "time-major":
        tail.append(helper.make_node("Transpose", [y_in], [Y], perm=[1, 0, 2], name="import_y"))
    else:
        tail.append(helper.make_node("Identity", [y_in], [Y], name="import_y"))
    y_shape = ["batch", c.output_size] if c.y_form == "last" else ["batch", "seq", c.output_size]
    new_outputs = [helper.make_tensor_value_info(Y, f32, y_shape)]
    for k in (HN, CN):
        if k in inner:
            tail.append(helper.make_node(inputs=[inner[k]], outputs=[k], name=f"import_{k}", **state_op))
            new_outputs.append(helper.make_tensor_value_info(k, f32, [rows, "batch", c.hidden_size]))
    del g.input[:]
    g.input.extend(new_inputs + keep_inputs)
    del g.output[:]
    g.output.extend(new_outputs)
    all_nodes = nodes + list(g.node) + tail
    del g.node[:]
    g.node.extend(all_nodes)
    del g.value_info[:]  # stale after renaming; runtimes infer shapes themselves
    onnx.checker.check_model(m)
    return m

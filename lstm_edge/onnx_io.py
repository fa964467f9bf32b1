"""Reading an ONNX file's declared inputs and outputs safely (for bare models; runtimes and lint use it)."""

from __future__ import annotations

from pathlib import Path

from lstm_edge import limits
from lstm_edge.errors import LstmEdgeError

# Checked before onnx.load reads a byte: protobuf's own limit is 2 GiB, and a near-2 GiB model was read whole
# before that refusal came (issue 17); see limits.MAX_ARTIFACT_BYTES for the figure.
MAX_ONNX_BYTES = limits.MAX_ARTIFACT_BYTES


def load_onnx_checked(path: str | Path):
    """Parse an .onnx, refusing empty, oversized, malformed files and external data outside the model's folder.

    Raises:
        LstmEdgeError: no file (or a directory, or a symlink loop) at path, an empty or over-cap file, one onnx cannot
            parse, no graph, or external data through a symlink, unusable, or outside the model's folder.
    """
    import onnx  # deferred: onnx (~70 ms to import) loads only when a model is read

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise LstmEdgeError(f"ONNX file not found: {path}", "check the path") from e
    except OSError as e:  # ELOOP: a symlink to itself
        raise LstmEdgeError(f"{path} cannot be opened ({e.strerror})", "point at the .onnx file itself") from e
    if path.is_dir():
        raise LstmEdgeError(f"{path} is a directory, not an ONNX file", "pass the .onnx file (or the bundle to run)")
    size = st.st_size
    if size == 0:
        raise LstmEdgeError(f"{path} is empty", "re-export the model")
    if size > MAX_ONNX_BYTES:
        raise LstmEdgeError(
            f"{path} is {size} bytes, over the {MAX_ONNX_BYTES}-byte cap (not read)",
            "lstm-edge models are far smaller; check the file, or re-export the model",
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise LstmEdgeError(f"{path} is not a readable ONNX model ({type(e).__name__})", "re-export the model") from e
    if not model.graph.node:
        raise LstmEdgeError(f"{path} holds no graph", "re-export the model")
    root = path.parent.resolve()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            if (root / loc).is_symlink():  # onnx.load itself refuses these, with a traceback
                raise LstmEdgeError(
                    f"{path}: tensor {t.name!r} reads external data through a symlink ({loc!r})",
                    "refusing to follow it; keep the external data file itself beside the model",
                )
            try:
                target = (root / loc).resolve()
            except (OSError, RuntimeError, ValueError) as e:  # a loop, a NUL byte
                raise LstmEdgeError(f"{path}: tensor {t.name!r} names unusable external data ({loc!r})", str(e)) from e
            if Path(loc).is_absolute() or root not in target.parents:
                raise LstmEdgeError(
                    f"{path}: tensor {t.name!r} points to external data outside the model's folder ({loc!r})",
                    "refusing to read it; keep external data files beside the model",
                )
    return model


def read_onnx_io(path: str | Path, model=None) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    """([(name, dims)], [(name, dims)]) of the graph inputs (initializers excluded) and outputs; each dim an int,
    a symbolic name, or None. `model`: the already-loaded proto of `path`, to skip a second parse.

    Raises LstmEdgeError for an unreadable model, no inputs, or a fixed dim over limits.MAX_MODEL_DIM (a declared
    sequence of 10**12 steps or hidden size of 2**40 sizes every buffer a run allocates)."""
    model = model if model is not None else load_onnx_checked(path)
    inits = {t.name for t in model.graph.initializer}

    def dims(vi) -> list:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim
        ]

    ins = [(i.name, dims(i)) for i in model.graph.input if i.name not in inits]
    outs = [(o.name, dims(o)) for o in model.graph.output]
    if not ins:
        raise LstmEdgeError(f"{path} declares no inputs", "re-export the model")
    for name, ds in ins + outs:
        for axis, d in enumerate(ds):
            if isinstance(d, int) and d > limits.MAX_MODEL_DIM:
                raise LstmEdgeError(
                    f"{path} declares {name} with a fixed axis {axis} of {d} (over {limits.MAX_MODEL_DIM})",
                    "re-export the model with dynamic batch and sequence axes and its real sizes",
                )
    return ins, outs


# ---- recurrent-node features foreign exporters use, and what each runtime does with them ---------------------------
RECURRENT_OPS = ("LSTM", "GRU", "RNN")

# The features of recurrent nodes that foreign exporters use and some runtimes reject or compute wrongly (which, and
# why, is each runtime's entry in lstm_edge.runtimes.registry): what recurrent_traits reports.
RECURRENT_TRAITS = ("layout-1", "sequence-lens", "peephole", "zero-state-free-batch", "reverse", "repeated-input")
# Ops tract 0.23.9 moves a Tile/Expand across on its way into a recurrent node, losing the repetition (measured with
# benchmarks/foreign_runtime_limits.py's graph: each of these between the Tile and the LSTM keeps the error, while an
# elementwise op — Relu, Add or Mul of a constant — stops it and tract computes the node right).
PASS_THROUGH_OPS = {"Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze", "MatMul"}


def repeated_input(graph, node, inits: set[str]) -> bool:
    """True when the recurrent `node`'s X is one tensor repeated over time by a Tile or Expand (an autoencoder's
    decoder input: the encoder's last h repeated T times), reached through ops that carry the repetition unchanged
    (PASS_THROUGH_OPS; a MatMul by a constant weight). Raises nothing."""
    producers = {o: n for n in graph.node for o in n.output}
    name, seen = node.input[0], set()
    while name in producers and name not in seen:
        seen.add(name)
        src = producers[name]
        if src.op_type in ("Tile", "Expand"):
            return True
        if src.op_type not in PASS_THROUGH_OPS:
            return False
        if src.op_type == "MatMul" and not (src.input[1] in inits or _is_constant(producers.get(src.input[1]))):
            return False
        name = src.input[0]
    return False


def _is_constant(node) -> bool:
    return node is not None and node.op_type == "Constant"


def x_time_axis(graph, x: str) -> int:
    """Which axis of graph input `x` is time: 0 when it feeds a layout=0 recurrent node directly, 1 with layout=1,
    perm[0] through a Transpose — and 1 (lstm-edge's contract, batch-first) when it cannot be told."""
    producers = {o: n for n in graph.node for o in n.output}
    for n in graph.node:
        if n.op_type not in RECURRENT_OPS:
            continue
        layout = next((a.i for a in n.attribute if a.name == "layout"), 0)
        if n.input[0] == x:
            return 1 if layout else 0
        src = producers.get(n.input[0])
        if src is not None and src.op_type == "Transpose" and src.input[0] == x:
            perm = next((list(a.ints) for a in src.attribute if a.name == "perm"), [2, 1, 0])
            return perm[1 if layout else 0]
    return 1


# Shape-only ops a final state may pass through on its way to a graph output.
STATE_PLUMBING = {"Identity", "Concat", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Cast", "Slice"}


def state_outputs(g, recurrent: list) -> set[str]:
    """Graph outputs that carry a recurrent node's final state (Y_h, Y_c), directly or through shape-only ops
    (Concat of layers, Squeeze, Transpose, Identity, Cast): their axes are [L·D, B, H], never time."""
    producer = {o: n for n in g.node for o in n.output}
    state = {o for n in recurrent for o in n.output[1:] if o}
    found = set()
    for out in g.output:
        todo, seen = [out.name], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in state:
                found.add(out.name)
                break
            node = producer.get(name)
            if node is not None and node.op_type in STATE_PLUMBING:
                todo.extend(i for i in node.input if i)
    return found


def recurrent_traits(model) -> dict[str, list[str]]:
    """{trait: [node names]} for the RECURRENT_TRAITS the model's LSTM/GRU/RNN nodes carry (subgraphs too).

    layout-1: attribute layout=1; sequence-lens: input 4 set; peephole: LSTM input 7 (P) set; reverse:
    direction=reverse; zero-state-free-batch: no initial_h (or an LSTM without initial_c) while a 3-D graph input's
    batch or time axis is symbolic; repeated-input: X is a Tile/Expand over time (repeated_input). Raises nothing."""
    from onnx import helper  # deferred: onnx (~70 ms to import) loads only when a model is read

    out: dict[str, list[str]] = {}
    inits = {t.name for t in model.graph.initializer}
    free_batch = any(
        any(not d.HasField("dim_value") for d in i.type.tensor_type.shape.dim[:2])
        for i in model.graph.input
        if i.name not in inits and len(i.type.tensor_type.shape.dim) == 3
    )

    def walk(graph) -> None:
        for n in graph.node:
            for a in n.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    walk(g)
            if n.op_type not in RECURRENT_OPS:
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            name = n.name or n.output[0]
            direction = attrs.get("direction", b"forward")
            direction = direction.decode() if isinstance(direction, bytes) else direction
            states = (5, 6) if n.op_type == "LSTM" else (5,)  # initial_h, and an LSTM's initial_c
            graph_inits = {t.name for t in graph.initializer}
            for trait, on in (
                ("layout-1", attrs.get("layout", 0) == 1),
                ("sequence-lens", len(n.input) > 4 and bool(n.input[4])),
                ("peephole", n.op_type == "LSTM" and len(n.input) > 7 and bool(n.input[7])),
                ("reverse", direction == "reverse"),
                ("zero-state-free-batch", free_batch and not all(len(n.input) > k and n.input[k] for k in states)),
                ("repeated-input", repeated_input(graph, n, graph_inits | inits)),
            ):
                if on:
                    out.setdefault(trait, []).append(name)

    walk(model.graph)
    return out

"""Reading an ONNX file's declared inputs and outputs safely (for bare models; runtimes and lint use it)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

from lstm_edge import limits
from lstm_edge.errors import LstmEdgeError, first_line

# Checked before onnx.load reads a byte: protobuf's own limit is 2 GiB, and a near-2 GiB model was read whole
# before that refusal came (issue 17); see limits.MAX_ARTIFACT_BYTES for the figure.
MAX_ONNX_BYTES = limits.MAX_ARTIFACT_BYTES


def check_onnx_path(path: Path) -> None:
    """An .onnx the user named, before a byte is read: it exists, is a regular file, is not empty nor over the cap.
    load_onnx_checked starts here; `lstm-edge lint` and `import` call it before importing onnx and torch.

    Raises:
        LstmEdgeError: no file (or a directory, a FIFO, a symlink loop) at path, or an empty or over-cap file.
    """
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise LstmEdgeError(f"ONNX file not found: {path}", "check the path") from e
    except OSError as e:  # ELOOP: a symlink to itself
        raise LstmEdgeError(f"{path} cannot be opened ({e.strerror})", "point at the .onnx file itself") from e
    if path.is_dir():
        raise LstmEdgeError(f"{path} is a directory, not an ONNX file", "pass the .onnx file (or the bundle to run)")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever, a device never end
        raise LstmEdgeError(f"{path} is a {_file_kind(st.st_mode)}, not a regular file", "pass the .onnx file itself")
    size = st.st_size
    if size == 0:
        raise LstmEdgeError(f"{path} is empty", "re-export the model")
    if size > MAX_ONNX_BYTES:
        raise LstmEdgeError(
            f"{path} is {size} bytes, over the {MAX_ONNX_BYTES}-byte cap (not read)",
            "lstm-edge models are far smaller; check the file, or re-export the model",
        )


def load_onnx_checked(path: str | Path, load_external: bool = False):
    """Parse an .onnx, refusing empty, oversized, malformed files and unusable external data, before any of it is read.

    load_external: read the external data (checked first, see check_external_data) into the proto, so the model is
    self-contained for what runs it from memory (import's float64 reference, its rewritten graph); otherwise it stays
    where it is, for ONNX Runtime to read from the model's folder.

    Raises:
        LstmEdgeError: no file (or a directory, or a symlink loop) at path, an empty or over-cap file, one onnx cannot
            parse, no graph, or external data that check_external_data refuses.
    """
    import onnx  # deferred: onnx (~70 ms to import) loads only when a model is read

    path = Path(path)
    check_onnx_path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise LstmEdgeError(f"{path} is not a readable ONNX model ({type(e).__name__})", "re-export the model") from e
    if not model.graph.node:
        raise LstmEdgeError(f"{path} holds no graph", "re-export the model")
    external = check_external_data(path, model)
    if load_external and external:
        from onnx.external_data_helper import load_external_data_for_model  # deferred: with onnx, above

        try:
            load_external_data_for_model(model, str(path.parent.resolve()))
        except Exception as e:  # onnx's ValidationError / OSError: the files changed since they were checked
            raise LstmEdgeError(f"{path}: its external data cannot be read ({first_line(e, 160)})", EXT_FIX) from e
    return model


EXT_FIX = "save the model self-contained: onnx.save(model, PATH, save_as_external_data=False)"


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device")):
        if test(mode):
            return name
    return "device" if stat.S_ISBLK(mode) else "special file"


def _all_tensors(graph) -> Iterator:
    """Every TensorProto of `graph`: initializers, and attribute tensors of its nodes and their subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _all_tensors(g)


def check_external_data(path: Path, model) -> int:
    """Check every external-data entry of `model` (loaded from `path`) against the file it names, from metadata
    alone: a regular file (not a FIFO, which blocks a reader forever), not a symlink, inside the model's folder;
    offset and length integers with offset + length within the file; length equal to the tensor's declared
    dims × item size. Returns the bytes the entries name in all.

    Raises:
        LstmEdgeError: the first entry that fails, naming the tensor and what is wrong; or more than
            MAX_ONNX_BYTES named in all.
    """
    import onnx  # deferred: onnx (~70 ms to import) loads only when a model is read

    root = path.parent.resolve()
    total = 0
    for t in _all_tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        where = f"{path}: tensor {t.name!r}"
        target = _external_file(where, root, loc)
        try:
            offset, length = int(info.get("offset") or 0), info.get("length")
            length = int(length) if length is not None else None
        except ValueError as e:
            raise LstmEdgeError(f"{where} has external data offset/length that are not integers", EXT_FIX) from e
        try:
            st = target.stat()
        except OSError as e:
            raise LstmEdgeError(
                f"{where} names external data {loc!r} that cannot be opened ({e.strerror})", EXT_FIX
            ) from e
        if not stat.S_ISREG(st.st_mode):
            raise LstmEdgeError(
                f"{where} names external data {loc!r}, a {_file_kind(st.st_mode)}, not a regular file (not read)",
                EXT_FIX,
            )
        length = st.st_size - offset if length is None else length
        if offset < 0 or length < 0 or offset + length > st.st_size:
            raise LstmEdgeError(
                f"{where} reads bytes {offset}..{offset + length} of {loc!r}, which holds {st.st_size} (not read)",
                EXT_FIX,
            )
        need = _tensor_bytes(t)
        if need is not None and need != length:
            raise LstmEdgeError(
                f"{where} declares dims {list(t.dims)} ({need} bytes) over {length} bytes of {loc!r} (not read)",
                EXT_FIX,
            )
        total += length
        if total > MAX_ONNX_BYTES:
            raise LstmEdgeError(
                f"{path}: its external data holds over {MAX_ONNX_BYTES} bytes, over the cap (not read)",
                "lstm-edge models are far smaller; check the file, or re-export the model",
            )
    return total


def _external_file(where: str, root: Path, loc: str) -> Path:
    """The external-data file `loc` names, refused through a symlink, unresolvable, or outside `root`."""
    if not loc:
        raise LstmEdgeError(f"{where} is stored externally but names no file", EXT_FIX)
    if (root / loc).is_symlink():  # onnx.load itself refuses these, with a traceback
        raise LstmEdgeError(
            f"{where} reads external data through a symlink ({loc!r})",
            "refusing to follow it; keep the external data file itself beside the model",
        )
    try:
        target = (root / loc).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a loop, a NUL byte
        raise LstmEdgeError(f"{where} names unusable external data ({loc!r})", str(e)) from e
    if Path(loc).is_absolute() or root not in target.parents:
        raise LstmEdgeError(
            f"{where} points to external data outside the model's folder ({loc!r})",
            "refusing to read it; keep external data files beside the model",
        )
    return target


def _tensor_bytes(t) -> int | None:
    """Bytes a tensor of t's dims and data type holds (Python ints: 2**80 elements stay exact); None for strings."""
    import onnx  # deferred: onnx (~70 ms to import) loads only when a model is read
    from onnx import helper

    n = 1
    for d in t.dims:
        n *= int(d)
    packed = {getattr(onnx.TensorProto, k, -1) for k in ("INT4", "UINT4", "FLOAT4E2M1")}
    if t.data_type in packed:
        return (n + 1) // 2
    try:
        dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
    except (KeyError, ValueError):
        return None
    return None if dtype.kind == "O" else n * dtype.itemsize


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
    """{trait: [node names]} for the RECURRENT_TRAITS the model's LSTM/GRU/RNN nodes carry (subgraphs too), and its
    com.microsoft DynamicQuantizeLSTM nodes (ORT's int8 LSTM: an LSTM's inputs 0-7, then its scales), which OpenVINO
    loads and computes with sequence_lens ignored as it does an LSTM's (measured: a lengths model's int8 7.3e-1 from
    the reference, bound 3e-2).

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
            if n.op_type not in (*RECURRENT_OPS, "DynamicQuantizeLSTM"):
                continue
            lstm = n.op_type in ("LSTM", "DynamicQuantizeLSTM")
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            name = n.name or n.output[0]
            direction = attrs.get("direction", b"forward")
            direction = direction.decode() if isinstance(direction, bytes) else direction
            states = (5, 6) if lstm else (5,)  # initial_h, and an LSTM's initial_c
            graph_inits = {t.name for t in graph.initializer}
            for trait, on in (
                ("layout-1", attrs.get("layout", 0) == 1),
                ("sequence-lens", len(n.input) > 4 and bool(n.input[4])),
                ("peephole", lstm and len(n.input) > 7 and bool(n.input[7])),
                ("reverse", direction == "reverse"),
                ("zero-state-free-batch", free_batch and not all(len(n.input) > k and n.input[k] for k in states)),
                ("repeated-input", repeated_input(graph, n, graph_inits | inits)),
            ):
                if on:
                    out.setdefault(trait, []).append(name)

    walk(model.graph)
    return out

"""`lstm-edge lint`: the recurrent-model traps that break streaming, quantization or other runtimes, each with its fix."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnx import shape_inference

from lstm_edge.onnx_io import RECURRENT_OPS, load_onnx_checked, x_time_axis
from lstm_edge.runtimes.registry import RUNTIME_LIMITS

WEIGHT_SHUFFLE_OPS = {"Slice", "Concat", "Transpose", "Split", "Gather", "Reshape", "Unsqueeze", "Squeeze"}
# Ops that only pick rows of a state input on its way to a recurrent node (our builder slices h0 per layer).
STATE_SELECT_OPS = {"Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Identity", "Reshape", "Transpose"}
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


@dataclass
class Finding:
    severity: str  # "error" | "warning"
    code: str
    message: str
    fix: str

    def to_dict(self) -> dict:
        return asdict(self)


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    shape = vi.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse with the same checks every runtime applies (size, protobuf, external data outside the folder)."""
    return load_onnx_checked(path)


def _state_source(name: str, producers: dict, inputs: set[str]) -> str | None:
    """The graph input a recurrent node's initial state comes from, following the ops that only select rows
    (our builder slices h0 per layer); None when it is computed (zeros from ConstantOfShape) or an initializer."""
    seen = 0
    while name and seen < 16:
        if name in inputs:
            return name
        n = producers.get(name)
        if n is None or n.op_type not in STATE_SELECT_OPS:
            return None
        name, seen = n.input[0], seen + 1
    return None


def lint(model: onnx.ModelProto) -> list[Finding]:
    """Every recurrent-model trap found in `model`, each with its fix: [] for a clean lstm-edge graph.

    Errors break streaming, other batch or sequence lengths, or quantization; warnings name runtimes that reject
    or miscompute a feature (measured, lstm_edge.runtimes.registry.RUNTIME_LIMITS). Pure: reads the proto, runs nothing."""
    g = model.graph
    out: list[Finding] = []
    inits = {i.name for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    recurrent = [n for n in g.node if n.op_type in RECURRENT_OPS]
    graph_inputs = [i for i in g.input if i.name not in inits]
    input_names = {i.name for i in graph_inputs}

    # A projected LSTM (proj_size) has no fused ONNX op: lstm-edge builds it as a Scan on purpose (export/graph.py).
    props = {p.key: p.value for p in model.metadata_props}
    projected = '"proj_size": 0' not in props.get("config", '"proj_size": 0')
    for n in g.node:
        if n.op_type in ("Loop", "Scan") and not (projected and n.op_type == "Scan"):
            out.append(
                Finding(
                    "error",
                    "loop-recurrence",
                    f"node {n.name!r} is a {n.op_type}: the recurrence runs as a generic loop",
                    "export with lstm-edge's builder, which emits one fused LSTM node per layer",
                )
            )
    if not recurrent:
        n_sig = sum(n.op_type == "Sigmoid" for n in g.node)
        n_tanh = sum(n.op_type == "Tanh" for n in g.node)
        n_mm = sum(n.op_type in ("MatMul", "Gemm") for n in g.node)
        if n_sig >= 6 and n_mm >= 4:
            # An LSTM cell step has 3 Sigmoid and 2 Tanh (a GRU step 2 and 1): the chain's length is the T it was
            # traced at (a traced LSTMCell loop at T=6: 18 Sigmoid, 12 Tanh).
            steps = n_sig // 3 if n_sig % 3 == 0 and n_tanh == 2 * (n_sig // 3) else None
            steps = steps or (n_sig // 2 if n_sig % 2 == 0 and n_tanh == n_sig // 2 else None)
            fixed = f"fixed at {steps} steps" if steps else "fixed"
            out.append(
                Finding(
                    "error",
                    "unrolled",
                    f"no LSTM node but {n_sig} Sigmoid, {n_tanh} Tanh and {n_mm} MatMul/Gemm: the recurrence is "
                    f"unrolled over time, so the time axis is {fixed} whatever the declared shapes say, and the "
                    "graph grows with T",
                    "export with one ONNX LSTM node per layer (lstm-edge export; for a cell loop, wrap the cell's "
                    "weights in nn.LSTM)",
                )
            )

    state_names = {
        n.input[k] for n in recurrent for k in (5, 6) if len(n.input) > k and n.input[k] and n.input[k] in input_names
    }
    x = next(
        (
            i
            for i in graph_inputs
            if len(_dims(i)) == 3
            and i.name not in ("h0", "c0")
            and i.name not in state_names
            and i.type.tensor_type.elem_type in FLOAT_TYPES
        ),
        None,
    )
    t_axis = x_time_axis(g, x.name) if x is not None else 1
    if x is not None:
        d = _dims(x)
        b_axis = 1 - t_axis
        if isinstance(d[b_axis], int):
            out.append(
                Finding(
                    "error",
                    "frozen-batch",
                    f"input {x.name!r} has batch fixed at {d[b_axis]}",
                    "trace with batch ≥ 2 or declare a dynamic batch axis",
                )
            )
        if isinstance(d[t_axis], int):
            out.append(
                Finding(
                    "error",
                    "frozen-seq",
                    f"input {x.name!r} has its time axis fixed at {d[t_axis]}: other lengths and streaming chunks fail",
                    "trace with seq ≥ 2 and declare a dynamic seq axis",
                )
            )
        if not isinstance(d[t_axis], int):
            state_outputs = _state_outputs(g, recurrent)
            for o in g.output:
                if o.name in state_outputs:  # [L·D, B, H]: its first axis is the layer count, not time
                    continue
                od = _dims(o)
                if len(od) == len(d) and isinstance(od[t_axis], int) and od[t_axis] > 1:
                    out.append(
                        Finding(
                            "error",
                            "frozen-seq-output",
                            f"output {o.name!r} has its time axis fixed at {od[t_axis]} while {x.name!r}'s is free: "
                            "other lengths return the wrong number of steps",
                            "declare the output's time axis dynamic (dynamic_axes) or re-export with lstm-edge",
                        )
                    )

    for n in recurrent:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        label = f"{n.op_type} {n.name or n.output[0]!r}"
        if attrs.get("layout", 0) == 1:
            limits = RUNTIME_LIMITS["layout-1"]
            out.append(
                Finding(
                    "error",
                    "layout-1",
                    f"{label} uses layout=1 (batch-major): {limits['onnxruntime']}; {limits['openvino']}; "
                    "tract runs it correctly",
                    "use layout=0 with a Transpose on x (lstm-edge import MODEL.onnx --out BUNDLE --rebuild does it), or run it on tract",
                )
            )
        if len(n.input) > 4 and n.input[4]:
            limits = RUNTIME_LIMITS["sequence-lens"]
            out.append(
                Finding(
                    "warning",
                    "sequence-lens",
                    f"{label} takes sequence_lens ({n.input[4]!r}): ONNX Runtime honours it; {limits['openvino']}; "
                    f"{limits['tract']}",
                    "run it on ONNX Runtime, or pad sequences to full length and drop sequence_lens",
                )
            )
        if n.op_type == "LSTM" and len(n.input) > 7 and n.input[7]:
            out.append(
                Finding(
                    "warning",
                    "peephole",
                    f"{label} has peephole weights P: {RUNTIME_LIMITS['peephole']['openvino']}; ONNX Runtime and "
                    "tract honour them (PyTorch's nn.LSTM has none, so --rebuild cannot carry them)",
                    "run it on ONNX Runtime or tract",
                )
            )
        direction = attrs.get("direction", b"forward")
        if (direction.decode() if isinstance(direction, bytes) else direction) == "reverse":
            out.append(
                Finding(
                    "warning",
                    "reverse-direction",
                    f"{label} runs direction=reverse: {RUNTIME_LIMITS['reverse']['tract']}",
                    "run it on ONNX Runtime or OpenVINO",
                )
            )
        slots = ((1, "W"), (2, "R"), (3, "B")) + (((7, "P"),) if n.op_type == "LSTM" else ())
        for slot, what in slots:
            name = n.input[slot] if len(n.input) > slot else ""
            if not name or name in inits:
                continue
            src = producers.get(name)
            if src is None and name in input_names:
                out.append(
                    Finding(
                        "error",
                        "weights-as-inputs",
                        f"{label} input {what} is the graph input {name!r}: every call must feed the weights, and "
                        "they cannot be quantized as constants (quantize_dynamic needs initializers)",
                        f"make them initializers: lstm-edge import MODEL --weights FILE.npz (arrays named {name!r}, …)",
                    )
                )
                continue
            op = src.op_type if src is not None else "graph input"
            code = "weight-shuffle" if src is not None and src.op_type in WEIGHT_SHUFFLE_OPS else "weight-not-constant"
            out.append(
                Finding(
                    "error",
                    code,
                    f"{label} input {what} is computed by {op}, not a plain "
                    "initializer: the gate reordering was left in the graph, and quantize_dynamic will "
                    "not produce DynamicQuantizeLSTM",
                    "fold constants (onnxscript optimizer) or build the graph from the weights (lstm-edge export)",
                )
            )
        state_slots = ((5, "initial_h"), (6, "initial_c")) if n.op_type == "LSTM" else ((5, "initial_h"),)
        for slot, what in state_slots:
            name = n.input[slot] if len(n.input) > slot else ""
            src = _state_source(name, producers, input_names) if name else None
            if src is None:
                how = "is not set" if not name else "is a constant" if name in inits else "is computed in the graph"
                out.append(
                    Finding(
                        "error",
                        "missing-state-input",
                        f"{label}'s {what} {how}, not a graph input: the state cannot be carried between calls, so "
                        "whole sequences run but streaming is impossible",
                        "re-export with h0/c0 inputs [num_layers, batch, hidden] (lstm-edge import MODEL.onnx --out BUNDLE --rebuild)",
                    )
                )
                continue
            layout = attrs.get("layout", 0)
            d = _dims(next(i for i in graph_inputs if i.name == src))
            b = d[0 if layout else 1] if len(d) == 3 else None
            if isinstance(b, int) and (x is None or not isinstance(_dims(x)[1 - t_axis], int)):
                out.append(
                    Finding(
                        "error",
                        "state-batch-frozen",
                        f"state input {src!r} has batch fixed at {b}: any other batch fails",
                        "trace with batch ≥ 2 or declare the state's batch axis dynamic",
                    )
                )
    seen: set[tuple[str, str]] = set()  # one finding per (code, message): a state input feeds several layers
    out = [f for f in out if (f.code, f.message) not in seen and not seen.add((f.code, f.message))]
    lstm_like = [n for n in recurrent if n.op_type in ("LSTM", "GRU")]
    n_state = 3 if any(n.op_type == "LSTM" for n in lstm_like) else 2
    if lstm_like and len(g.output) < n_state:
        out.append(
            Finding(
                "error",
                "missing-state-output",
                f"the graph has {len(g.output)} output(s): the final state is not returned, so streaming cannot "
                "carry it",
                "add hn/cn outputs",
            )
        )

    ext = [t.name for t in g.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if ext:
        out.append(
            Finding(
                "warning",
                "external-data",
                f"{len(ext)} initializer(s) live in external data files: the model is not one self-contained file",
                "save with external_data=False (torch.onnx) or onnx.save(..., save_as_external_data=False)",
            )
        )

    if g.value_info:
        out.extend(_stale_value_info(model))
    return out


def _stale_value_info(model: onnx.ModelProto) -> list[Finding]:
    stripped = copy.deepcopy(model)
    del stripped.graph.value_info[:]
    try:
        inferred = {v.name: _dims(v) for v in shape_inference.infer_shapes(stripped).graph.value_info}
    except Exception:  # inference itself failing is reported by the checker, not here
        inferred = {}
    produced = {o for n in model.graph.node for o in n.output}
    stale = []
    for v in model.graph.value_info:
        if v.name not in produced:
            stale.append(f"{v.name} (no such value)")
            continue
        want = inferred.get(v.name)
        if want is not None and any(isinstance(a, int) and a != b for a, b in zip(_dims(v), want, strict=False)):
            stale.append(f"{v.name} {_dims(v)} vs {want}")
    if not stale:
        return []
    return [
        Finding(
            "error",
            "stale-value-info",
            f"{len(stale)} value_info entr{'y' if len(stale) == 1 else 'ies'} "
            f"disagree with the graph (e.g. {stale[0]}): tract and others trust them and fail",
            "delete graph.value_info and re-run shape inference",
        )
    ]


def _state_outputs(g, recurrent) -> set[str]:
    """Graph outputs that carry a recurrent node's final state (Y_h, Y_c), directly or through shape-only ops
    (Concat of layers, Squeeze, Transpose, Identity, Cast): their axes are [L·D, B, H], never time."""
    plumbing = {"Identity", "Concat", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Cast", "Slice"}
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
            if node is not None and node.op_type in plumbing:
                todo.extend(i for i in node.input if i)
    return found

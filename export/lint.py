"""`lstm-edge lint`: the recurrent-model traps that break streaming, quantization or other runtimes, each with its fix."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnx import shape_inference

from lstm_edge.onnx_io import load_onnx_checked

WEIGHT_SHUFFLE_OPS = {"Slice", "Concat", "Transpose", "Split", "Gather", "Reshape", "Unsqueeze", "Squeeze"}


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


def lint(model: onnx.ModelProto) -> list[Finding]:
    g = model.graph
    out: list[Finding] = []
    inits = {i.name for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    lstms = [n for n in g.node if n.op_type == "LSTM"]

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
    if not lstms:
        n_sig = sum(n.op_type == "Sigmoid" for n in g.node)
        n_mm = sum(n.op_type in ("MatMul", "Gemm") for n in g.node)
        if n_sig >= 6 and n_mm >= 4:
            out.append(
                Finding(
                    "error",
                    "unrolled",
                    f"no LSTM node but {n_sig} Sigmoid and {n_mm} MatMul/Gemm: the "
                    "recurrence is unrolled over time, so seq is fixed and the graph grows with T",
                    "export with one ONNX LSTM node per layer (lstm-edge export)",
                )
            )

    x = next(
        (i for i in g.input if i.name not in inits and len(_dims(i)) == 3 and i.name not in ("h0", "c0")),
        None,
    )
    if x is not None:
        d = _dims(x)
        if isinstance(d[0], int):
            out.append(
                Finding(
                    "error",
                    "frozen-batch",
                    f"input {x.name!r} has batch fixed at {d[0]}",
                    "trace with batch ≥ 2 or declare a dynamic batch axis",
                )
            )
        if isinstance(d[1], int):
            out.append(
                Finding(
                    "error",
                    "frozen-seq",
                    f"input {x.name!r} has seq fixed at {d[1]}: other lengths and streaming chunks fail",
                    "trace with seq ≥ 2 and declare a dynamic seq axis",
                )
            )

    for n in lstms:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("layout", 0) == 1:
            out.append(
                Finding(
                    "error",
                    "layout-1",
                    f"LSTM {n.name!r} uses layout=1 (batch-major), which ONNX Runtime CPU rejects",
                    "use layout=0 with a Transpose on x",
                )
            )
        for slot, label in ((1, "W"), (2, "R"), (3, "B")):
            name = n.input[slot] if len(n.input) > slot else ""
            if name and name not in inits:
                src = producers.get(name)
                op = src.op_type if src is not None else "graph input"
                code = (
                    "weight-shuffle" if src is not None and src.op_type in WEIGHT_SHUFFLE_OPS else "weight-not-constant"
                )
                out.append(
                    Finding(
                        "error",
                        code,
                        f"LSTM {n.name!r} input {label} is computed by {op}, not a plain "
                        "initializer: the gate reordering was left in the graph, and quantize_dynamic will "
                        "not produce DynamicQuantizeLSTM",
                        "fold constants (onnxscript optimizer) or build the graph from the weights (lstm-edge export)",
                    )
                )
        for slot, what in ((5, "initial_h"), (6, "initial_c")):
            name = n.input[slot] if len(n.input) > slot else ""
            if not name or name in inits:
                out.append(
                    Finding(
                        "error",
                        "missing-state-input",
                        f"LSTM {n.name!r} has no {what} fed from a graph "
                        "input: state cannot be carried between calls, so streaming is impossible",
                        "add h0/c0 inputs [num_layers, batch, hidden]",
                    )
                )
    state_inputs = [i for i in g.input if i.name not in inits and len(_dims(i)) == 3 and i is not x]
    for i in state_inputs:
        d = _dims(i)
        if d[1] == 1:
            out.append(
                Finding(
                    "error",
                    "state-batch-frozen",
                    f"state input {i.name!r} has batch fixed at 1: any other batch fails",
                    "trace with batch ≥ 2 or declare the state's batch axis dynamic",
                )
            )
    if lstms and len(g.output) < 3:
        out.append(
            Finding(
                "error",
                "missing-state-output",
                f"the graph has {len(g.output)} output(s): the final h and "
                "c are not returned, so streaming cannot carry them",
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

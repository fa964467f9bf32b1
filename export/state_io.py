"""Streaming for a forward exported whole: its recurrent nodes' states exposed as graph inputs and outputs.

torch.onnx writes each nn.LSTM / nn.GRU layer of a user's forward as one ONNX LSTM / GRU node whose initial_h
(initial_c) is a zeros tensor the graph builds from x's batch, and whose Y_h (Y_c) nothing reads. `expose_states`
rewires those: graph inputs h0 (c0) [L, batch, H] feed node i its row i, and the nodes' final states are gathered into
outputs hn (cn) [L, batch, H] — the stateful contract (x, h0, c0) → (y, hn, cn) every runtime, stream and target of
lstm-edge already serves. L is the number of recurrent nodes in graph order; H the widest node's hidden size, a
narrower node using the first columns of its row (the rest are zero in hn, and ignored in h0).

Exposing a state is only right where the graph is a recurrence over time that chunks compose: `check_streaming` runs
the rewired graph in ONNX Runtime and proves (1) with zero state it answers as the stateless graph (no node started
from a state the graph computes, as a decoder from an encoder's), and (2) a sequence fed in chunks with the state
carried answers as the whole sequence (nothing reads steps outside its chunk: a Conv1d padded over time, a pooling
or a reversal over time). A graph that fails either stays stateless, with the reason recorded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lstm_edge.config import C0, CN, H0, HN, ModelConfig, X, Y
from lstm_edge.data import model_inputs
from lstm_edge.errors import ParityError
from lstm_edge.export.golden import make_golden
from lstm_edge.export.plan import Plan
from lstm_edge.export.validate import ort_cpu_session
from lstm_edge.runtimes.onnx_reference import evaluator
from lstm_edge.tolerances import FP32_ABS, scaled_error

# op_type → (input index of initial_h[, initial_c]), ONNX's LSTM/GRU signatures; their Y_h, Y_c are outputs 1, 2.
STATE_INPUTS = {"LSTM": (5, 6), "GRU": (5,)}
FAMILY = {"LSTM": "lstm", "GRU": "gru"}
# (B, T) and the chunk lengths the streaming check feeds: uneven chunks, one of a single step, none the trace's.
CHUNK_PROBE = (3, 23, (5, 1, 9, 8))


@dataclass(frozen=True)
class StateIO:
    """The graph with its recurrent states exposed (proto), or why not (refusal, proto None).

    family: "lstm" or "gru"; layers: the recurrent nodes, in graph order (h0's rows); hidden: the widest node's
    hidden size (h0's width); widths: each node's hidden size."""

    proto: onnx.ModelProto | None
    family: str = ""
    layers: int = 0
    hidden: int = 0
    widths: tuple[int, ...] = ()
    refusal: str = ""

    def describe(self) -> str:
        """One line for the recognized block, e.g. '2 LSTM nodes' states as h0, c0 [2, batch, 12]'."""
        names = ", ".join((H0, C0) if self.family == "lstm" else (H0,))
        padded = (
            f" (rows narrower than {self.hidden} zero-padded: {list(self.widths)})" if len(set(self.widths)) > 1 else ""
        )
        return f"its {self.layers} {self.family.upper()} node(s)' states as {names} [{self.layers}, batch, {self.hidden}]{padded}"


def _attr(node: onnx.NodeProto, name: str, default):
    a = next((a for a in node.attribute if a.name == name), None)
    return default if a is None else helper.get_attribute_value(a)


def _refusal(nodes: list[onnx.NodeProto]) -> str:
    """Why these recurrent nodes cannot carry a state between calls ("" where they can)."""
    if not nodes:
        return "its graph has no LSTM or GRU node (torch.onnx unrolled the recurrence, or wrote it as a Loop)"
    if len({n.op_type for n in nodes}) > 1:
        return "it mixes LSTM and GRU nodes, whose states do not share one h0/c0 form"
    for n in nodes:
        direction = _attr(n, "direction", b"forward")
        if direction != b"forward":
            return f"node {n.name!r} runs {direction.decode()} (a backward pass needs the steps to come)"
        if _attr(n, "layout", 0) != 0:
            return f"node {n.name!r} has layout=1 (batch-major state), which ONNX Runtime CPU does not run"
        if len(n.input) > 4 and n.input[4]:
            return f"node {n.name!r} takes sequence_lens (variable lengths stop each sequence at its own step)"
    return ""


def expose_states(proto: onnx.ModelProto) -> StateIO:
    """`proto` (a stateless x → y graph) with inputs h0 (c0) and outputs hn (cn) wired to its recurrent nodes.

    Returns StateIO with the new graph, or with `refusal` saying why the graph cannot expose its states (no
    recurrent node, mixed LSTM/GRU, a bidirectional or reverse node, sequence_lens, layout=1, or a name taken)."""
    g = proto.graph
    nodes = [n for n in g.node if n.op_type in STATE_INPUTS or n.op_type == "RNN"]
    why = _refusal(nodes) or ("a vanilla RNN node" if any(n.op_type == "RNN" for n in nodes) else "")
    taken = {v for n in g.node for v in (*n.input, *n.output)} | {i.name for i in g.input} | {o.name for o in g.output}
    if not why and taken & {H0, C0, HN, CN}:
        why = f"the graph already names a value {sorted(taken & {H0, C0, HN, CN})[0]!r}"
    if why:
        return StateIO(None, refusal=why)
    op = nodes[0].op_type
    widths = tuple(int(_attr(n, "hidden_size", 0)) for n in nodes)
    L, H = len(nodes), max(widths)
    out = copy.deepcopy(proto)
    g = out.graph
    batch = _batch_dim(g)
    state_names = list(zip((H0, C0), (HN, CN), strict=True))[: len(STATE_INPUTS[op])]
    head, tail = [], []
    for i, (node, width) in enumerate(zip((n for n in g.node if n.op_type == op), widths, strict=True)):
        while len(node.input) < STATE_INPUTS[op][-1] + 1:
            node.input.append("")
        while len(node.output) < len(state_names) + 1:
            node.output.append("")
        for k, ((src, _), slot) in enumerate(zip(state_names, STATE_INPUTS[op], strict=True)):
            row = f"lstm_edge_{src}_row{i}"
            bounds = [
                _const(g, f"{row}_{w}", v) for w, v in (("starts", [i, 0]), ("ends", [i + 1, width]), ("axes", [0, 2]))
            ]
            head.append(helper.make_node("Slice", [src, *bounds], [row], name=f"lstm_edge_slice_{src}_{i}"))
            node.input[slot] = row
            if not node.output[k + 1]:
                node.output[k + 1] = f"lstm_edge_{node.name or i}_state{k}"
    for k, (_, dst) in enumerate(state_names):
        rows = []
        for i, (node, width) in enumerate(zip((n for n in g.node if n.op_type == op), widths, strict=True)):
            r = node.output[k + 1]
            if width < H:  # a narrower node: its row's tail columns are zero
                pads = _const(g, f"lstm_edge_{dst}_pad{i}", [0, 0, 0, 0, 0, H - width])
                tail.append(helper.make_node("Pad", [r, pads], [f"{r}_padded"], name=f"lstm_edge_pad_{dst}_{i}"))
                r = f"{r}_padded"
            rows.append(r)
        tail.append(helper.make_node("Concat", rows, [dst], axis=0, name=f"lstm_edge_concat_{dst}"))
    nodes_now = list(g.node)
    del g.node[:]
    g.node.extend([*head, *nodes_now, *tail])
    for src, dst in state_names:
        shape = [L, batch, H]
        g.input.append(helper.make_tensor_value_info(src, TensorProto.FLOAT, shape))
        g.output.append(helper.make_tensor_value_info(dst, TensorProto.FLOAT, shape))
    _prune(g)
    onnx.checker.check_model(out)
    return StateIO(out, FAMILY[op], L, H, widths)


def _batch_dim(g: onnx.GraphProto) -> str | int:
    """x's batch axis as declared ("batch"): the axis of x named so, else the first symbolic one."""
    dims = [d.dim_param or d.dim_value for d in next(i for i in g.input if i.name == X).type.tensor_type.shape.dim]
    return "batch" if "batch" in dims else next((d for d in dims if isinstance(d, str)), "batch")


def _const(g: onnx.GraphProto, name: str, values: list[int]) -> str:
    g.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
    return name


def _prune(g: onnx.GraphProto) -> None:
    """Drop the nodes no output needs any more (the zeros torch.onnx built for the initial states) and initializers
    nothing reads."""
    needed = {o.name for o in g.output}
    live = []
    for node in reversed(g.node):
        if any(o in needed for o in node.output) or any(
            a.type == onnx.AttributeProto.GRAPH for a in node.attribute
        ):  # a subgraph may read outer values by name: keep the node whole
            live.append(node)
            needed.update(i for i in node.input if i)
    live.reverse()
    del g.node[:]
    g.node.extend(live)
    kept = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(kept)


def check_streaming(
    session_of, stateless: onnx.ModelProto, state_io: StateIO, x_of, time_axis: int, per_step: bool
) -> tuple[float, str]:
    """Prove the exposed graph streams: (worst scaled error, refusal or "").

    session_of(proto) → an ONNX Runtime session; x_of(B, T) → x for the model (float features or int64 ids) with
    time on `time_axis`; per_step: y has a time axis (a head on every step). Zero state must answer as the stateless graph, and x fed in CHUNK_PROBE's chunks with the
    state carried must answer as the whole x (y per step concatenated, or the last chunk's y for a head on the last
    step; hn, cn equal), each ≤ FP32_ABS scaled."""
    B, T, chunks = CHUNK_PROBE
    x = x_of(B, T)
    names = [H0, C0][: 2 if state_io.family == "lstm" else 1]
    zeros = {n: np.zeros((state_io.layers, B, state_io.hidden), np.float32) for n in names}
    whole = session_of(state_io.proto)
    outs = [o.name for o in state_io.proto.graph.output]
    full = dict(zip(outs, whole.run(outs, {X: x, **zeros}), strict=True))
    (plain,) = session_of(stateless).run([Y], {X: x})
    zero_err = float(scaled_error(full[Y], plain).max())
    if zero_err > FP32_ABS:
        return zero_err, (
            f"with its recurrent nodes' states given as zeros it differs from the forward by {zero_err:.1e}: a node "
            "starts from a state the graph computes (an encoder's state handed to a decoder)"
        )
    state, ys, start = dict(zeros), [], 0
    for n in chunks:
        piece = np.take(x, range(start, start + n), axis=time_axis)
        got = dict(zip(outs, whole.run(outs, {X: piece, **state}), strict=True))
        ys.append(got[Y])
        state = {s: got[d] for s, d in zip(names, (HN, CN), strict=False)}
        start += n
    y = np.concatenate(ys, axis=time_axis) if per_step else ys[-1]
    errs = [
        scaled_error(y, full[Y]).max(),
        *(scaled_error(state[s], full[d]).max() for s, d in zip(names, (HN, CN), strict=False)),
    ]
    worst = float(max(errs))
    if worst > FP32_ABS:
        return worst, (
            f"fed in chunks with its state carried it differs from the whole sequence by {worst:.1e}: an output reads "
            "steps outside its chunk (a Conv1d padded over time, a pooling or reversal over time, an encoder–decoder)"
        )
    return max(worst, zero_err), ""


def streaming_plan(plan: Plan, module_call) -> Plan:
    """The fallback's stateless Plan made stateful where its graph streams (expose_states + check_streaming), else
    the same Plan with the reason in its recognized block.

    module_call(x) → the user's forward on a numpy x, as a numpy array; the zero-state golden cases' y (computed
    from the rewired graph in float64, as the random-state cases and every hn/cn must be) are checked against it.
    Raises ParityError where they differ beyond FP32_ABS (a graph that validated as stateless cannot, unless the
    rewiring is wrong)."""
    config = plan.config
    time_axis = 1 if config.batch_first else 0
    state_io = expose_states(plan.proto)
    err = 0.0
    if state_io.proto is not None:

        def x_of(B: int, T: int) -> np.ndarray:
            return model_inputs(config, B, T, False, 11)[0]  # in the model's layout

        err, why = check_streaming(
            ort_cpu_session, plan.proto, state_io, x_of, time_axis, per_step=config.head == "sequence"
        )
        if why:
            state_io = StateIO(None, refusal=why)
    head = plan.recognized.rsplit(" — ", 1)[0]
    if state_io.proto is None:
        plan.recognized = f"{head} — stateless, whole sequences only (streaming: false: {state_io.refusal})"
        plan.reference["streaming"] = f"not exposed: {state_io.refusal}"
        return plan
    stateful = ModelConfig.from_dict(
        config.to_dict()
        | {"family": state_io.family, "num_layers": state_io.layers, "hidden_size": state_io.hidden}
        | {"bidirectional": False, "proj_size": 0}
    )
    golden = make_golden(_float64(state_io.proto, stateful), stateful)
    _check_zero_state_golden(golden, module_call, stateful)
    shape = [state_io.layers, "batch", state_io.hidden]
    state_ports = [(H0, HN), (C0, CN)][: len(stateful.state_shapes)]
    io = {
        "inputs": [*plan.io["inputs"], *({"name": s, "shape": shape, "dtype": "float32"} for s, _ in state_ports)],
        "outputs": [*plan.io["outputs"], *({"name": d, "shape": shape, "dtype": "float32"} for _, d in state_ports)],
    }
    said = f"{state_io.describe()}; fed in chunks it equals the whole sequence ({err:.1e})"
    plan.reference["streaming"] = said
    plan.reference["detail"] += "; golden states from that ONNX in float64"
    return replace(
        plan,
        config=stateful,
        proto=state_io.proto,
        golden=golden,
        io=io,
        streaming=True,
        recognized=f"{head} — streaming: {said}",
    )


def _float64(proto: onnx.ModelProto, config: ModelConfig):
    """The rewired graph in float64 (onnx.reference) as make_golden's reference: inputs → outputs in config order."""
    evaluate = evaluator(proto)

    def reference(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        out = evaluate(dict(zip(config.input_names, inputs, strict=True)))
        return tuple(out[n] for n in config.output_names)

    return reference


def _check_zero_state_golden(golden: dict[str, np.ndarray], module_call, config: ModelConfig) -> None:
    worst = 0.0
    for case in sorted({k.split("/")[0] for k in golden if k.endswith("_zero/x")}):
        y = module_call(golden[f"{case}/x"])
        worst = max(worst, float(scaled_error(golden[f"{case}/y"], y).max()))
    if worst > FP32_ABS:
        raise ParityError(
            f"the graph with its states exposed differs from your forward by {worst:.2e} scaled at zero state",
            "nothing was written; report this with --debug",
        )

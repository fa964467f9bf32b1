"""The float64 ONNX reference: a model cast to double and evaluated by onnx.reference.ReferenceEvaluator.

For a model lstm-edge did not write there is no PyTorch module to judge runtimes against. The ONNX project's own
reference implementation (plain numpy, written from the operator specification) evaluated in float64 is independent
of every runtime being judged, and its own rounding (~1e-16 relative per operation) is far below float32's (~6e-8),
so each float32 runtime is measured by its own error, as the torch float64 reference does for lstm-edge bundles.

The evaluator's LSTM/GRU/RNN ignore `sequence_lens` (onnx 1.23 `op_lstm.py`: "sequence_lens  # noqa: ARG002");
here each op is wrapped so a sequence of length l < T is run alone over its first l steps (reverse direction: from
step l-1 down to 0) with zeros in Y beyond it — the operator specification's semantics, built on the evaluator's own
cell code. `activations`, `clip` and `input_forget`, which it also ignores, are refused in one line rather than
computed wrongly.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.onnx_io import load_onnx_checked
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.source import Source

F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
# Attributes the reference evaluator's recurrent ops accept but do not implement.
IGNORED_ATTRIBUTES = ("activations", "activation_alpha", "activation_beta", "clip")


def _double_tensor(t: TensorProto) -> TensorProto:
    if t.data_type != F32:
        return t
    a = numpy_helper.to_array(t).astype(np.float64)
    return numpy_helper.from_array(a, t.name)


def _double_value_info(vi: onnx.ValueInfoProto) -> None:
    if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == F32:
        vi.type.tensor_type.elem_type = F64


def _double_graph(g: onnx.GraphProto) -> None:
    for k, t in enumerate(g.initializer):
        if t.data_type == F32:
            g.initializer[k].CopyFrom(_double_tensor(t))
    for vi in (*g.input, *g.output, *g.value_info):
        _double_value_info(vi)
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:  # value_float(s) make float32 scalars/vectors: restate them as double tensors
                if a.name == "value_float":
                    a.CopyFrom(helper.make_attribute("value", numpy_helper.from_array(np.array(a.f, np.float64))))
                elif a.name == "value_floats":
                    a.CopyFrom(
                        helper.make_attribute("value", numpy_helper.from_array(np.array(list(a.floats), np.float64)))
                    )
        for a in n.attribute:
            if a.type == AttributeProto.TENSOR and a.t.data_type == F32:
                a.t.CopyFrom(_double_tensor(a.t))
            elif a.type == AttributeProto.INT and a.name in ("to", "dtype") and a.i == F32:
                a.i = F64  # Cast(to=FLOAT), EyeLike/RandomNormal(dtype=FLOAT)
            elif a.type == AttributeProto.GRAPH:
                _double_graph(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for sub in a.graphs:
                    _double_graph(sub)


def double_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in float64: every float32 initializer, Constant, Cast/dtype target, value_info
    and graph input/output becomes double (subgraphs included). Other types (int64 lengths, token ids) stay."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    _double_graph(m.graph)
    return m


def reference_limits(model: onnx.ModelProto) -> list[str]:
    """Why the reference evaluator would compute this model wrongly (one line each); [] when it can be trusted."""
    out = []
    for n in model.graph.node:
        if n.op_type not in RECURRENT_OPS:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        used = [k for k in IGNORED_ATTRIBUTES if k in attrs]
        if n.op_type == "LSTM" and attrs.get("input_forget", 0):
            used.append("input_forget")
        if used:
            out.append(f"{n.op_type} {n.name!r} sets {', '.join(used)}, which onnx.reference ignores")
    return out


def _with_lengths(base: type) -> type:
    """The evaluator's recurrent op `base`, honouring sequence_lens: each shorter sequence runs alone."""

    def _run(self, X, W, R, B=None, sequence_lens=None, initial_h=None, *rest, **attrs):
        layout = self.layout or 0
        t_axis, b_axis = (1, 0) if layout else (0, 1)  # X: [T, B, F] or [B, T, F]
        T = X.shape[t_axis]
        if sequence_lens is None or np.all(sequence_lens == T):
            return base._run(self, X, W, R, B, sequence_lens, initial_h, *rest, **attrs)
        s_axis = 0 if layout else 1  # batch axis of initial_h/initial_c: [D, B, H] or [B, D, H]
        pieces = []
        for b, n in enumerate(int(v) for v in sequence_lens):
            if not 0 < n <= T:
                raise LstmEdgeError(f"sequence_lens[{b}] is {n} for {T} steps", "give lengths in 1..T")
            xb = np.take(np.take(X, [b], axis=b_axis), range(n), axis=t_axis)
            states = [None if a is None else np.take(a, [b], axis=s_axis) for a in (initial_h, *rest[:1])]
            outs = base._run(self, xb, W, R, B, None, states[0], *states[1:], *rest[1:], **attrs)
            y = outs[0]  # [n, D, 1, H] or [1, n, D, H]
            pad = [(0, 0)] * y.ndim
            pad[1 if layout else 0] = (0, T - n)
            pieces.append((np.pad(y, pad), *outs[1:]))
        y_axis, s_out = (0, 0) if layout else (2, 1)
        return tuple(
            np.concatenate(p, axis=y_axis if k == 0 else s_out) for k, p in enumerate(zip(*pieces, strict=True))
        )

    return type(base.__name__, (base,), {"_run": _run, "op_domain": ""})


def _recurrent_ops() -> list[type]:
    # deferred, all three: onnx.reference takes ~200 ms to import, paid only when a reference runs
    from onnx.reference.ops.op_gru import GRU  # deferred
    from onnx.reference.ops.op_lstm import LSTM  # deferred
    from onnx.reference.ops.op_rnn import RNN_14  # deferred

    rnn = _with_lengths(RNN_14)
    rnn.__name__ = "RNN"
    return [_with_lengths(LSTM), _with_lengths(GRU), rnn]


def evaluator(model: onnx.ModelProto):
    """feeds {name: array} → {output name: float64 array}: `model` cast to double and evaluated by onnx.reference
    (recurrent ops honouring sequence_lens). Raises LstmEdgeError for what the evaluator would compute wrongly or
    cannot load, and (per call) when evaluation fails."""
    from onnx.reference import ReferenceEvaluator  # deferred: ~200 ms to import, only when a reference runs

    limits = reference_limits(model)
    if limits:
        raise LstmEdgeError(f"the float64 reference cannot run this model: {limits[0]}", "use --provider cpu")
    double = double_model(model)
    declared = {i.name: i.type.tensor_type.elem_type for i in double.graph.input}
    names = [o.name for o in double.graph.output]
    try:
        ev = ReferenceEvaluator(double, new_ops=_recurrent_ops())
    except Exception as e:  # unknown domains/ops surface here
        raise LstmEdgeError(f"onnx.reference cannot load the model: {first_line(e)}", "use --provider cpu") from e

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {k: np.asarray(v, np.float64) if declared.get(k) == F64 else np.asarray(v) for k, v in feeds.items()}
        try:
            outs = ev.run(None, feeds)
        except LstmEdgeError:
            raise
        except Exception as e:
            raise LstmEdgeError(f"onnx.reference failed: {first_line(e)}", "check the inputs' shapes") from e
        return dict(zip(names, outs, strict=True))

    return run


class OnnxReferenceRunner(Runner):
    """provider "reference": the fp32 ONNX model cast to double, run by onnx.reference.ReferenceEvaluator.

    Inputs given in float32 are cast to float64; outputs are float64 (the exact side of every comparison).
    Raises LstmEdgeError when the model uses something the evaluator does not implement (see module docstring).
    Slow (numpy, one step of Python per timestep): a reference for parity and golden vectors, not a deployment.
    """

    runtime = "onnx-reference"
    state_dtype = np.float64

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        self._evaluate = evaluator(load_onnx_checked(source.path))

    def _run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: array} → {output name: array}, floats computed in float64."""
        with self._lock:  # the evaluator keeps per-run state on its op objects
            return self._evaluate(feeds)

    def _run(self, x, h0, c0):
        names = self.source.input_names
        feeds = {names[0]: x}
        if len(names) >= 3:
            feeds |= {names[1]: h0, names[2]: c0}
        outs = self._run_feeds(feeds)
        y, *state = (outs[n] for n in self.source.output_names[:3])
        return (y, state[0], state[1]) if len(state) == 2 else (y, h0, c0)

    def version(self) -> str:
        """onnx's version, marked float64."""
        return f"onnx {onnx.__version__} (float64)"

    def describe(self) -> dict:
        """Runner.describe with precision fp64."""
        return super().describe() | {"precision": "fp64"}

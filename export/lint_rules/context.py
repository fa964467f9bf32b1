"""What every lint rule reads from a model, worked out once (LintContext), and the sites rules look at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import onnx

from lstm_edge.export.lint_rules.rule import Site
from lstm_edge.onnx_io import RECURRENT_OPS, x_time_axis

# Ops that only pick rows of a state input, or change its precision, on its way to a recurrent node (our builder
# slices h0 per layer; the fp16 variant casts the float32 h0 and c0 inputs to float16 first).
STATE_SELECT_OPS = {"Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Identity", "Reshape", "Transpose", "Cast"}
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
GRAPH = Site()


def dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    """The declared shape of a value: an int per fixed axis, the axis name (or None) per free one."""
    shape = vi.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


@dataclass(frozen=True)
class LintContext:
    """The model and what the rules ask of it: initializer names, the producer of each value, the recurrent nodes,
    the graph inputs that are not initializers, the sequence input x (None when none looks like one) and its time
    axis (t_axis; the batch axis is 1 - t_axis)."""

    model: onnx.ModelProto
    graph: onnx.GraphProto
    inits: set[str]
    producers: dict[str, onnx.NodeProto]
    recurrent: list[onnx.NodeProto]
    graph_inputs: list[onnx.ValueInfoProto]
    input_names: set[str]
    x: onnx.ValueInfoProto | None
    t_axis: int

    @classmethod
    def of(cls, model: onnx.ModelProto) -> LintContext:
        """Read `model` once for every rule; runs nothing."""
        g = model.graph
        inits = {i.name for i in g.initializer}
        recurrent = [n for n in g.node if n.op_type in RECURRENT_OPS]
        graph_inputs = [i for i in g.input if i.name not in inits]
        input_names = {i.name for i in graph_inputs}
        state_names = {
            n.input[k]
            for n in recurrent
            for k in (5, 6)
            if len(n.input) > k and n.input[k] and n.input[k] in input_names
        }
        x = next(
            (
                i
                for i in graph_inputs
                if len(dims(i)) == 3
                and i.name not in ("h0", "c0")
                and i.name not in state_names
                and i.type.tensor_type.elem_type in FLOAT_TYPES
            ),
            None,
        )
        t_axis = x_time_axis(g, x.name) if x is not None else 1
        producers = {o: n for n in g.node for o in n.output}
        return cls(model, g, inits, producers, recurrent, graph_inputs, input_names, x, t_axis)

    def node_sites(self) -> Iterator[Site]:
        """One site per recurrent node, in graph order."""
        for n in self.recurrent:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            yield Site(node=n, attrs=attrs, label=f"{n.op_type} {n.name or n.output[0]!r}")

    def input_sites(self, site: Site) -> Iterator[Site]:
        """The weight inputs of `site`'s node (W, R, B, and P for an LSTM), then its state inputs (initial_h, and
        initial_c for an LSTM)."""
        n = site.node
        lstm = n.op_type == "LSTM"
        slots = ((1, "W"), (2, "R"), (3, "B")) + (((7, "P"),) if lstm else ())
        slots += ((5, "initial_h"), (6, "initial_c")) if lstm else ((5, "initial_h"),)
        for slot, role in slots:
            name = n.input[slot] if len(n.input) > slot else ""
            yield Site(node=n, attrs=site.attrs, label=site.label, slot=slot, role=role, name=name)

    def state_source(self, name: str) -> str | None:
        """The graph input a recurrent node's initial state comes from, following the ops that only select rows
        (our builder slices h0 per layer); None when it is computed (zeros from ConstantOfShape) or an
        initializer."""
        seen = 0
        while name and seen < 16:
            if name in self.input_names:
                return name
            n = self.producers.get(name)
            if n is None or n.op_type not in STATE_SELECT_OPS:
                return None
            name, seen = n.input[0], seen + 1
        return None

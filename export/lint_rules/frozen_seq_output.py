"""frozen-seq-output: x's time axis is free but an output's is fixed."""

from __future__ import annotations

from collections.abc import Iterator

import onnx

from lstm_edge.export.lint_rules.context import LintContext, dims
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site

# Shape-only ops a final state may pass through on its way to a graph output.
STATE_PLUMBING = {"Identity", "Concat", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Cast", "Slice"}


def state_outputs(g: onnx.GraphProto, recurrent: list[onnx.NodeProto]) -> set[str]:
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


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """Outputs of x's rank whose time axis is a number > 1 while x's is free (state outputs excepted)."""
    if ctx.x is None:
        return
    d, t_axis = dims(ctx.x), ctx.t_axis
    if isinstance(d[t_axis], int):
        return  # frozen-seq already says so
    carried = state_outputs(ctx.graph, ctx.recurrent)
    for o in ctx.graph.output:
        if o.name in carried:  # [L·D, B, H]: its first axis is the layer count, not time
            continue
        od = dims(o)
        if len(od) == len(d) and isinstance(od[t_axis], int) and od[t_axis] > 1:
            yield Hit(
                f"output {o.name!r} has its time axis fixed at {od[t_axis]} while {ctx.x.name!r}'s is free: "
                "other lengths return the wrong number of steps"
            )


RULE = LintRule(
    id="frozen-seq-output",
    severity="error",
    scope="graph",
    doc="an output's time axis is fixed while the input's is free: other lengths return the wrong number of steps",
    fix="declare the output's time axis dynamic (dynamic_axes) or re-export with lstm-edge",
    check=check,
)

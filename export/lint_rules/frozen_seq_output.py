"""frozen-seq-output: x's time axis is free but an output's is fixed."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext, dims
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site
from lstm_edge.onnx_io import state_outputs


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

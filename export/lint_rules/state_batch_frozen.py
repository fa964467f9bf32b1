"""state-batch-frozen: a state input declares a fixed batch while x's is free."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext, dims
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The graph input behind initial_h / initial_c has a numeric batch axis (axis 0 with layout=1, else 1),
    unless x's batch is fixed too (frozen-batch already says so)."""
    src = ctx.state_source(site.name) if not site.is_weight and site.name else None
    if src is None:
        return
    d = dims(next(i for i in ctx.graph_inputs if i.name == src))
    b = d[0 if site.attrs.get("layout", 0) else 1] if len(d) == 3 else None
    if isinstance(b, int) and (ctx.x is None or not isinstance(dims(ctx.x)[1 - ctx.t_axis], int)):
        yield Hit(f"state input {src!r} has batch fixed at {b}: any other batch fails")


RULE = LintRule(
    id="state-batch-frozen",
    severity="error",
    scope="input",
    doc="a state input's batch axis is fixed: any other batch fails",
    fix="trace with batch ≥ 2 or declare the state's batch axis dynamic",
    check=check,
)

"""frozen-batch, frozen-seq: the sequence input x declares a fixed batch or time axis (twins: one axis each)."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext, dims
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check_batch(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """x's batch axis (1 - t_axis) is a number."""
    if ctx.x is not None and isinstance(b := dims(ctx.x)[1 - ctx.t_axis], int):
        yield Hit(f"input {ctx.x.name!r} has batch fixed at {b}")


def check_seq(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """x's time axis (t_axis) is a number."""
    if ctx.x is not None and isinstance(t := dims(ctx.x)[ctx.t_axis], int):
        yield Hit(f"input {ctx.x.name!r} has its time axis fixed at {t}: other lengths and streaming chunks fail")


FROZEN_BATCH = LintRule(
    id="frozen-batch",
    severity="error",
    scope="graph",
    doc="the sequence input's batch axis is fixed: any other batch fails",
    fix="trace with batch ≥ 2 or declare a dynamic batch axis",
    check=check_batch,
)
FROZEN_SEQ = LintRule(
    id="frozen-seq",
    severity="error",
    scope="graph",
    doc="the sequence input's time axis is fixed: other lengths and streaming chunks fail",
    fix="trace with seq ≥ 2 and declare a dynamic seq axis",
    check=check_seq,
)

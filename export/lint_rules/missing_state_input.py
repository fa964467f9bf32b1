"""missing-state-input: a recurrent node's initial state is not fed from a graph input."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """initial_h / initial_c unset, a constant, or computed (zeros from ConstantOfShape): not a graph input."""
    if site.is_weight or (site.name and ctx.state_source(site.name) is not None):
        return
    name = site.name
    how = "is not set" if not name else "is a constant" if name in ctx.inits else "is computed in the graph"
    yield Hit(
        f"{site.label}'s {site.role} {how}, not a graph input: the state cannot be carried between calls, so "
        "whole sequences run but streaming is impossible"
    )


RULE = LintRule(
    id="missing-state-input",
    severity="error",
    scope="input",
    doc="a recurrent node's initial state is not a graph input: whole sequences run, streaming is impossible",
    fix="re-export with h0/c0 inputs [num_layers, batch, hidden] (lstm-edge import MODEL.onnx --out BUNDLE --rebuild)",
    check=check,
)

"""missing-state-output: the final state is not returned."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """A graph with LSTM or GRU nodes and fewer outputs than y plus its state (hn, and cn for an LSTM)."""
    lstm_like = [n for n in ctx.recurrent if n.op_type in ("LSTM", "GRU")]
    n_state = 3 if any(n.op_type == "LSTM" for n in lstm_like) else 2
    outputs = len(ctx.graph.output)
    if lstm_like and outputs < n_state:
        yield Hit(f"the graph has {outputs} output(s): the final state is not returned, so streaming cannot carry it")


RULE = LintRule(
    id="missing-state-output",
    severity="error",
    scope="graph",
    doc="the final state is not a graph output: streaming cannot carry it",
    fix="add hn/cn outputs",
    check=check,
)

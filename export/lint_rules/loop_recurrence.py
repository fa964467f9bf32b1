"""loop-recurrence: the recurrence is a Loop or Scan node, not a fused recurrent op."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """Every Loop and Scan node, except the Scan lstm-edge builds on purpose for a projected LSTM (proj_size: no
    fused ONNX op exists for it, export/graph.py)."""
    props = {p.key: p.value for p in ctx.model.metadata_props}
    projected = '"proj_size": 0' not in props.get("config", '"proj_size": 0')
    for n in ctx.graph.node:
        if n.op_type in ("Loop", "Scan") and not (projected and n.op_type == "Scan"):
            yield Hit(f"node {n.name!r} is a {n.op_type}: the recurrence runs as a generic loop")


RULE = LintRule(
    id="loop-recurrence",
    severity="error",
    scope="graph",
    doc="a Loop or Scan node carries the recurrence: runtimes run it as a generic loop, and it does not quantize",
    fix="export with lstm-edge's builder, which emits one fused LSTM node per layer",
    check=check,
)

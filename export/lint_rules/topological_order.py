"""topological-order: a node reads a value that a later node makes."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site
from lstm_edge.export.onnx_order import out_of_order


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """Nodes (in the graph or its subgraphs) that read a value before the node making it: one hit naming the count
    and the first."""
    late = out_of_order(ctx.graph)
    if late:
        node, value = late[0]
        yield Hit(
            f"{len(late)} node{'s' if len(late) > 1 else ''} read a value before the node making it (first: "
            f"{node.op_type} {node.name or node.output[0]!r} reads {value!r}): ONNX requires topological order, "
            "onnx.checker's full check refuses the model, and a runtime that does not sort it may too"
        )


RULE = LintRule(
    id="topological-order",
    severity="error",
    scope="graph",
    doc="nodes are not in topological order: the model is not valid ONNX (onnx.checker refuses it)",
    fix="sort the nodes (lstm_edge.export.onnx_order.sort_topologically(model.graph)) and save it again",
    check=check,
)

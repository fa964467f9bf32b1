"""stale-value-info: graph.value_info entries that disagree with the graph."""

from __future__ import annotations

import copy
from collections.abc import Iterator

from onnx import shape_inference

from lstm_edge.export.lint_rules.context import LintContext, dims
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """value_info naming a value nothing produces, or declaring a fixed axis shape inference disagrees with."""
    model = ctx.model
    if not model.graph.value_info:
        return
    stripped = copy.deepcopy(model)
    del stripped.graph.value_info[:]
    try:
        inferred = {v.name: dims(v) for v in shape_inference.infer_shapes(stripped).graph.value_info}
    except Exception:  # inference itself failing is reported by the checker, not here
        inferred = {}
    produced = {o for n in model.graph.node for o in n.output}
    stale = []
    for v in model.graph.value_info:
        if v.name not in produced:
            stale.append(f"{v.name} (no such value)")
            continue
        want = inferred.get(v.name)
        if want is not None and any(isinstance(a, int) and a != b for a, b in zip(dims(v), want, strict=False)):
            stale.append(f"{v.name} {dims(v)} vs {want}")
    if stale:
        yield Hit(
            f"{len(stale)} value_info entr{'y' if len(stale) == 1 else 'ies'} "
            f"disagree with the graph (e.g. {stale[0]}): tract and others trust them and fail"
        )


RULE = LintRule(
    id="stale-value-info",
    severity="error",
    scope="graph",
    doc="value_info entries disagree with the graph: tract and others trust them and fail",
    fix="delete graph.value_info and re-run shape inference",
    check=check,
)

"""external-data: initializers live in files beside the model."""

from __future__ import annotations

from collections.abc import Iterator

import onnx

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """Initializers whose data_location is EXTERNAL."""
    ext = [t.name for t in ctx.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if ext:
        yield Hit(f"{len(ext)} initializer(s) live in external data files: the model is not one self-contained file")


RULE = LintRule(
    id="external-data",
    severity="warning",
    scope="graph",
    doc="initializers live in external data files: the model is not one self-contained file",
    fix="save with external_data=False (torch.onnx) or onnx.save(..., save_as_external_data=False)",
    check=check,
)

"""weights-as-inputs, weight-shuffle, weight-not-constant: a recurrent node's W, R, B or P is not a plain
initializer (twins: which one fires depends only on where the value comes from)."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site

# Ops that reorder or cut weights: the gate reordering of a torch export left in the graph.
WEIGHT_SHUFFLE_OPS = {"Slice", "Concat", "Transpose", "Split", "Gather", "Reshape", "Unsqueeze", "Squeeze"}


def _source(ctx: LintContext, site: Site) -> str | None:
    """Where a set, non-initializer weight comes from: "input" (a graph input), "shuffle" (a reordering op),
    "computed" (any other op, or a value nothing produces); None for a plain initializer, an unset slot or a
    state input."""
    if not site.is_weight or not site.name or site.name in ctx.inits:
        return None
    src = ctx.producers.get(site.name)
    if src is None and site.name in ctx.input_names:
        return "input"
    return "shuffle" if src is not None and src.op_type in WEIGHT_SHUFFLE_OPS else "computed"


def _computed(ctx: LintContext, site: Site) -> Hit:
    src = ctx.producers.get(site.name)
    op = src.op_type if src is not None else "graph input"
    return Hit(
        f"{site.label} input {site.role} is computed by {op}, not a plain "
        "initializer: the gate reordering was left in the graph, and quantize_dynamic will "
        "not produce DynamicQuantizeLSTM"
    )


def check_inputs(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The weight is a graph input: fed on every call, and no constant to quantize."""
    if _source(ctx, site) == "input":
        yield Hit(
            f"{site.label} input {site.role} is the graph input {site.name!r}: every call must feed the weights, and "
            "they cannot be quantized as constants (quantize_dynamic needs initializers)",
            {"name": site.name},
        )


def check_shuffle(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The weight is computed by a reordering op (Slice, Concat, Transpose, …)."""
    if _source(ctx, site) == "shuffle":
        yield _computed(ctx, site)


def check_not_constant(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The weight is computed by any other op."""
    if _source(ctx, site) == "computed":
        yield _computed(ctx, site)


FOLD_FIX = "fold constants (onnxscript optimizer) or build the graph from the weights (lstm-edge export)"
WEIGHTS_AS_INPUTS = LintRule(
    id="weights-as-inputs",
    severity="error",
    scope="input",
    doc="a recurrent node's weights are graph inputs: every call feeds them, and they cannot be quantized",
    fix="make them initializers: lstm-edge import MODEL --weights FILE.npz (arrays named {name!r}, …)",
    check=check_inputs,
)
WEIGHT_SHUFFLE = LintRule(
    id="weight-shuffle",
    severity="error",
    scope="input",
    doc="a recurrent node's weights are reordered in the graph: quantize_dynamic will not make DynamicQuantizeLSTM",
    fix=FOLD_FIX,
    check=check_shuffle,
)
WEIGHT_NOT_CONSTANT = LintRule(
    id="weight-not-constant",
    severity="error",
    scope="input",
    doc="a recurrent node's weights are computed in the graph: quantize_dynamic will not make DynamicQuantizeLSTM",
    fix=FOLD_FIX,
    check=check_not_constant,
)

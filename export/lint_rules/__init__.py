"""The lint rules: one table, RULES, that `lstm-edge lint` runs in order.

Each rule is a LintRule (id, severity, one doc line, fix, scope, check) declared in its module here. Adding a rule:
one module beside these (a check(ctx, site) yielding Hit, and its LintRule), one line in RULES, one graph that breaks
it in tests/test_lint_rules.py. The order of RULES is the order of findings: "graph" rules run where they stand;
the "node" and "input" rules, kept together, run per recurrent node where the first of them stands (each node's
node rules, then per weight and state input its input rules).
"""

from __future__ import annotations

from lstm_edge.export.lint_rules import (
    external_data,
    frozen_axes,
    frozen_seq_output,
    loop_recurrence,
    missing_state_input,
    missing_state_output,
    runtime_limits,
    stale_value_info,
    state_batch_frozen,
    topological_order,
    unrolled,
    weights,
)
from lstm_edge.export.lint_rules.context import GRAPH, LintContext
from lstm_edge.export.lint_rules.rule import Finding, Hit, LintRule, Site

RULES: tuple[LintRule, ...] = (
    loop_recurrence.RULE,
    unrolled.RULE,
    frozen_axes.FROZEN_BATCH,
    frozen_axes.FROZEN_SEQ,
    frozen_seq_output.RULE,
    runtime_limits.LAYOUT_1,
    runtime_limits.SEQUENCE_LENS,
    runtime_limits.PEEPHOLE,
    runtime_limits.REVERSE_DIRECTION,
    runtime_limits.REPEATED_INPUT,
    weights.WEIGHTS_AS_INPUTS,
    weights.WEIGHT_SHUFFLE,
    weights.WEIGHT_NOT_CONSTANT,
    missing_state_input.RULE,
    state_batch_frozen.RULE,
    missing_state_output.RULE,
    external_data.RULE,
    stale_value_info.RULE,
    topological_order.RULE,
)

__all__ = ["GRAPH", "RULES", "Finding", "Hit", "LintContext", "LintRule", "Site"]

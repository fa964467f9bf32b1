"""unrolled: no recurrent node, but a chain of cell steps traced over time."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site


def check(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """A graph without recurrent nodes but with ≥ 6 Sigmoid and ≥ 4 MatMul/Gemm: a cell loop traced step by step.
    An LSTM cell step has 3 Sigmoid and 2 Tanh (a GRU step 2 and 1): the chain's length is the T it was traced at
    (a traced LSTMCell loop at T=6: 18 Sigmoid, 12 Tanh)."""
    if ctx.recurrent:
        return
    nodes = ctx.graph.node
    n_sig = sum(n.op_type == "Sigmoid" for n in nodes)
    n_tanh = sum(n.op_type == "Tanh" for n in nodes)
    n_mm = sum(n.op_type in ("MatMul", "Gemm") for n in nodes)
    if n_sig < 6 or n_mm < 4:
        return
    steps = n_sig // 3 if n_sig % 3 == 0 and n_tanh == 2 * (n_sig // 3) else None
    steps = steps or (n_sig // 2 if n_sig % 2 == 0 and n_tanh == n_sig // 2 else None)
    fixed = f"fixed at {steps} steps" if steps else "fixed"
    yield Hit(
        f"no LSTM node but {n_sig} Sigmoid, {n_tanh} Tanh and {n_mm} MatMul/Gemm: the recurrence is "
        f"unrolled over time, so the time axis is {fixed} whatever the declared shapes say, and the "
        "graph grows with T"
    )


RULE = LintRule(
    id="unrolled",
    severity="error",
    scope="graph",
    doc="the recurrence is unrolled over the traced length: the time axis is fixed and the graph grows with T",
    fix="export with one ONNX LSTM node per layer (lstm-edge export; for a cell loop, wrap the cell's "
    "weights in nn.LSTM)",
    check=check,
)

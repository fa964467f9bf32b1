"""The lint rule table (lstm_edge.export.lint_rules.RULES): every rule declared in full, ids unique, each rule
firing on a small graph built to break it and silent on the shipped model."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import helper

from lstm_edge.export import lint
from lstm_edge.export.lint_rules import GRAPH, RULES, LintContext
from tests.test_export import _tiny, _unrolled
from tests.test_foreign_onnx import lstm_node_model, weights_as_inputs
from tests.test_runtime_guards import repeated_input_model

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "adding" / "model.onnx"
F32 = onnx.TensorProto.FLOAT


def loop_graph() -> onnx.ModelProto:
    """A Loop carrying the recurrence, its output's time axis fixed at 5 while x's is free."""
    body = helper.make_graph([], "b", [], [])
    g = helper.make_graph(
        [helper.make_node("Loop", ["", "", "x"], ["y"], body=body, name="loop")],
        "g",
        [helper.make_tensor_value_info("x", F32, ["batch", "seq", 2])],
        [helper.make_tensor_value_info("y", F32, ["batch", 5, 2])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def computed_weights() -> onnx.ModelProto:
    """W made by an Identity of an initializer: computed, but not one of the reordering ops."""
    m = _tiny()
    m.graph.initializer[0].name = "W_raw"
    m.graph.node.insert(0, helper.make_node("Identity", ["W_raw"], ["W"]))
    return m


def no_h0() -> onnx.ModelProto:
    m = _tiny()
    m.graph.node[1].input[5] = ""
    return m


def reversed_nodes() -> onnx.ModelProto:
    """The tiny model with its nodes in reverse order: each reads what a later node makes."""
    m = _tiny()
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


# One graph per rule, built to break it (most are the lint tests' own fixtures).
BREAKS = {
    "loop-recurrence": loop_graph,
    "unrolled": _unrolled,
    "frozen-batch": lambda: _tiny(x_dims=(1, "seq", 2)),
    "frozen-seq": lambda: _tiny(x_dims=("batch", 5, 2)),
    "frozen-seq-output": loop_graph,
    "layout-1": lambda: _tiny(layout=1),
    "sequence-lens": lambda: lstm_node_model(seq_lens=True)[0],
    "peephole": lambda: lstm_node_model(peephole=True)[0],
    "reverse-direction": lambda: lstm_node_model(direction="reverse")[0],
    "repeated-input": repeated_input_model,
    "weights-as-inputs": weights_as_inputs,
    "weight-shuffle": lambda: _tiny(weights_from="Slice"),
    "weight-not-constant": computed_weights,
    "missing-state-input": no_h0,
    "state-batch-frozen": lambda: _tiny(h_dims=(1, 1, 3)),
    "missing-state-output": lambda: _tiny(outputs=1),
    "external-data": lambda: _tiny(ext=True),
    "stale-value-info": lambda: _tiny(value_info=True),
    "topological-order": reversed_nodes,
}


def test_every_rule_is_declared_in_full_and_ids_are_unique():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for r in RULES:
        assert r.id and r.severity in ("error", "warning") and r.scope in ("graph", "node", "input")
        assert r.doc and "\n" not in r.doc and r.fix and callable(r.check), r.id
    assert set(ids) == set(BREAKS), "each rule needs a graph that breaks it here"


def test_node_and_input_rules_stand_together_in_the_table():
    """lint runs them per recurrent node where the first of them stands: the block must not be split."""
    scopes = [r.scope for r in RULES]
    first = next(k for k, s in enumerate(scopes) if s != "graph")
    block = scopes[first : first + scopes.count("node") + scopes.count("input")]
    assert block == ["node"] * scopes.count("node") + ["input"] * scopes.count("input")


def _findings(rule, model: onnx.ModelProto) -> list:
    ctx = LintContext.of(model)
    if rule.scope == "graph":
        return rule.findings(ctx, GRAPH)
    nodes = list(ctx.node_sites())
    if rule.scope == "node":
        return [f for n in nodes for f in rule.findings(ctx, n)]
    return [f for n in nodes for i in ctx.input_sites(n) for f in rule.findings(ctx, i)]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_each_rule_fires_on_a_graph_built_to_break_it(rule):
    model = BREAKS[rule.id]()
    found = _findings(rule, model)
    assert found and all(f.code == rule.id and f.severity == rule.severity and f.fix for f in found)
    assert rule.id in [f.code for f in lint(model)]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_no_rule_fires_on_the_shipped_model(rule):
    assert _findings(rule, onnx.load(str(SHIPPED))) == []


def test_the_shipped_model_lints_clean():
    assert lint(onnx.load(str(SHIPPED))) == []


def test_lint_judges_an_fp16_graph_as_it_is(tmp_path):
    """onnxruntime's float16 converter (what quantize --mode fp16 runs) appends Casts of h0/c0 after their readers:
    lint once reported four false missing-state-input findings there and missed the order. Through the CLI."""
    from click.testing import CliRunner
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from lstm_edge.cli import main

    fp16 = convert_float_to_float16(onnx.load(str(SHIPPED)), keep_io_types=True)
    onnx.save(fp16, str(tmp_path / "fp16.onnx"))
    r = CliRunner().invoke(main, ["lint", str(tmp_path / "fp16.onnx")])
    assert r.exit_code == 1 and "error: topological-order:" in r.output, r.output
    assert "missing-state-input" not in r.output

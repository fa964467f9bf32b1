"""Every ONNX a bundle holds is valid ONNX and says what it is (issue 27 item 5): onnx.checker's full check passes
(the fp16 variant's Casts once came after the nodes reading them), producer "lstm-edge", doc strings on the graph and
on each input and output; lint judges the fp16 graph by what it is (its state inputs pass through a Cast)."""

from __future__ import annotations

import shutil

import onnx
import pytest
from click.testing import CliRunner

from lstm_edge.bundle import Bundle
from lstm_edge.cli import main


@pytest.fixture(scope="module")
def quantized(small_bundle, tmp_path_factory):
    """A fresh export quantized through the CLI (dynamic int8 and fp16; static needs task data)."""
    bundle = tmp_path_factory.mktemp("valid") / "small"
    shutil.copytree(small_bundle, bundle)
    r = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", "all"])
    assert r.exit_code == 0, r.output
    return bundle


def test_every_onnx_passes_the_full_check_and_says_what_it_is(quantized):
    b = Bundle.open(quantized)
    assert {"fp32", "int8", "fp16"} <= set(b.variants())
    for variant in b.variants():
        model = onnx.load(str(b.artifact(variant)))
        onnx.checker.check_model(model, full_check=True)  # raises on an unsorted graph
        assert model.producer_name == "lstm-edge", variant
        assert model.graph.doc_string and variant in model.graph.doc_string
        for value in (*model.graph.input, *model.graph.output):
            assert value.doc_string, (variant, value.name)


def test_lint_on_fp16_has_no_false_state_findings(quantized):
    r = CliRunner().invoke(main, ["lint", str(Bundle.open(quantized).artifact("fp16"))])
    assert r.exit_code == 0 and "no findings" in r.output, r.output

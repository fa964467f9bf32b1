"""Quantization: what got quantized, the state never fake-quantized, the budget, the manifest."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import lstm_edge
from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.tolerances import FP16_ABS, scaled_error


def _producers_upstream(model: onnx.ModelProto, output: str) -> set[str]:
    """Op types on every path from the graph inputs to `output`."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, stack, ops = set(), [output], set()
    while stack:
        name = stack.pop()
        n = producer.get(name)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        ops.add(n.op_type)
        stack.extend(i for i in n.input if i)
    return ops


def test_shipped_variants_and_manifest(shipped_bundle):
    b = Bundle.open(shipped_bundle)
    assert set(b.variants()) == {"fp32", "int8", "int8-static", "fp16"}
    for v in b.variants():
        e = b.entry(v)
        assert e["sha256"] == sha256_file(shipped_bundle / e["path"])
    int8 = onnx.load(str(shipped_bundle / "model.int8.onnx"))
    ops = [n.op_type for n in int8.graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops and "MatMulInteger" in ops
    report = b.entry("int8")["report"]
    assert report["size_ratio"] < 0.35 and set(report["error_vs_seq_len"]) == {"1", "10", "100", "1000"}
    assert report["nodes"]["quantized"] and "metric" in report and "sqnr_db" in report["error_vs_fp32"]["y"]


def test_static_keeps_state_out_of_qdq(shipped_bundle):
    model = onnx.load(str(shipped_bundle / "model.int8-static.onnx"))
    for state in ("hn", "cn"):
        assert not {"QuantizeLinear", "DequantizeLinear"} & _producers_upstream(model, state)
    assert "DequantizeLinear" in _producers_upstream(model, "y")  # the head is quantized
    nodes = Bundle.open(shipped_bundle).entry("int8-static")["report"]["nodes"]
    assert any("LSTM" in n for n in nodes["float"]) and any("MatMul" in n for n in nodes["quantized"])


def test_fp16_runs_in_ort_cpu(shipped_bundle):
    r = lstm_edge.load(shipped_bundle, variant="fp16")
    for a in Bundle.open(shipped_bundle).golden().values():
        y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
        assert scaled_error(c, a["cn"]).max() <= FP16_ABS and y.dtype == np.float32


def test_over_budget_exits_1_and_marks_variant(bundle_copy):
    r = CliRunner().invoke(
        main, ["quantize", str(bundle_copy), "--mode", "dynamic", "--max-metric-drop", "0", "--per-tensor"]
    )
    assert r.exit_code == 1 and "not deployable" in r.output
    m = json.loads((bundle_copy / "manifest.json").read_text())
    assert m["artifacts"]["int8"]["deployable"] is False
    assert m["artifacts"]["int8"]["report"]["settings"]["per_channel"] is False
    assert m["artifacts"]["int8"]["sha256"] == sha256_file(bundle_copy / "model.int8.onnx")
    assert not [p for p in bundle_copy.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_quantize_state_on_request(bundle_copy):
    r = CliRunner().invoke(
        main, ["quantize", str(bundle_copy), "--mode", "static", "--quantize-state", "--calibration-samples", "32"]
    )
    assert r.exit_code == 1, r.output  # fake-quantizing the carried state costs far more than the budget
    model = onnx.load(str(bundle_copy / "model.int8-static.onnx"))
    assert "DequantizeLinear" in _producers_upstream(model, "cn")


def test_custom_task_static_needs_data(small_bundle):
    r = CliRunner().invoke(main, ["quantize", str(small_bundle), "--mode", "static"])
    assert r.exit_code == 2 and "--data" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    "args, needle", [(["--mode", "int4"], "unknown --mode"), (["--method", "magic"], "unknown --method")]
)
def test_bad_options(bundle_copy, args, needle):
    r = CliRunner().invoke(main, ["quantize", str(bundle_copy), *args])
    assert r.exit_code == 2 and needle in r.output

"""Quantization: what got quantized, the state never fake-quantized, the budget, the manifest."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

import lstm_edge
from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.config import ModelConfig
from lstm_edge.model import LSTMModel
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
    # self_check off: streamed one step per call, the shipped fp16 misses FP16_ABS on the golden streaming case
    # (cn 2.5e-2; tests/test_self_check.py), so it is refused at load; this test runs whole sequences only
    r = lstm_edge.load(shipped_bundle, variant="fp16", self_check=False)
    for a in Bundle.open(shipped_bundle).golden().values():
        y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
        assert scaled_error(c, a["cn"]).max() <= FP16_ABS and y.dtype == np.float32


def test_over_budget_is_a_finding_and_marks_variant(bundle_copy):
    """A variant over budget is what quantize is there to find: a `finding:` line, no `error:`, exit 0 (issue 27);
    --strict keeps exit 1 for a pipeline that must stop there."""
    args = ["quantize", str(bundle_copy), "--mode", "dynamic", "--max-metric-drop", "0", "--per-tensor"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "finding: int8 is over the metric budget" in r.output and "not deployable" in r.output
    assert not [line for line in r.output.splitlines() if line.startswith("error:")], r.output
    m = json.loads((bundle_copy / "manifest.json").read_text())
    assert m["artifacts"]["int8"]["deployable"] is False
    assert m["artifacts"]["int8"]["report"]["settings"]["per_channel"] is False
    assert m["artifacts"]["int8"]["sha256"] == sha256_file(bundle_copy / "model.int8.onnx")
    assert not [p for p in bundle_copy.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 1 and "finding: int8" in strict.output, strict.output


def test_quantize_state_on_request(bundle_copy):
    r = CliRunner().invoke(
        main, ["quantize", str(bundle_copy), "--mode", "static", "--quantize-state", "--calibration-samples", "32"]
    )
    # fake-quantizing the carried state costs far more than the budget: a finding, not an error
    assert r.exit_code == 0 and "finding: int8-static" in r.output, r.output
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


def test_custom_task_without_data_makes_unverified_variants(small_bundle, tmp_path):
    """A model whose task is not built in, no --data: dynamic int8 and fp16 are made and measured on probe inputs
    from the recorded normalization (their task metric is not), verdict "unverified"; static int8 is skipped with
    its reason; quantize and verify both exit 0, and verify labels the variants within their bounds unverified."""
    import shutil

    bundle = tmp_path / "small"
    shutil.copytree(small_bundle, bundle)
    r = CliRunner().invoke(main, ["quantize", str(bundle)])
    assert r.exit_code == 0, r.output
    assert "skipped int8-static" in r.output and "--data" in r.output and "not measured (no data)" in r.output
    b = Bundle.open(bundle)
    assert set(b.variants()) == {"fp32", "int8", "fp16"}
    for v in ("int8", "fp16"):
        entry = b.entry(v)
        report = entry["report"]
        assert entry["deployable"] is False and entry["verdict"] == b.verdict(v) == "unverified"
        assert report["metric"]["variant"] is None and "probe sequences" in report["measured_on"]
        assert set(report["error_profile"]) == {"1", "10", "100", "1000"}
        assert 0 < report["error_vs_torch"]["cn"]["max_abs"] < 1  # measured, and small
    assert b.entry("fp16")["report"]["parity_bound"]["max_scaled"] <= FP16_ABS
    md = (bundle / "quantization.md").read_text()
    assert "unverified" in md and "**int8-static**: not made" in md
    r = CliRunner().invoke(main, ["verify", str(bundle), "--quick", "--providers", "cpu"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^cpu\s+int8\s+unverified\s+48/48", r.output, re.M), r.output
    out = tmp_path / "app"
    r = CliRunner().invoke(main, ["bundle", str(bundle), "--target", "python", "--variant", "int8", "--out", str(out)])
    assert r.exit_code == 0 and "marked int8 unverified" in r.output, r.output
    assert json.loads((out / "manifest.json").read_text())["embed"]["verdict"] == "unverified"


def test_custom_task_with_data_is_judged(small_bundle, tmp_path):
    """With --data, the same custom model's int8 is judged against its budget: a yes or a no, never unverified."""
    import shutil

    from lstm_edge.data import sample_inputs

    bundle = tmp_path / "small"
    shutil.copytree(small_bundle, bundle)
    config = Bundle.open(bundle).config
    X = sample_inputs(40, 12, 3, 2, 8, False, 0, config.x_mean, config.x_std)[0]
    np.savez(tmp_path / "d.npz", X=X, y=X[:, -1, :2] * 0.5)
    r = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", "dynamic", "--data", str(tmp_path / "d.npz")])
    entry = Bundle.open(bundle).entry("int8")
    assert entry["report"]["metric"]["variant"] is not None and "held-out" in entry["report"]["measured_on"]
    assert entry["verdict"] in ("deployable", "not-deployable")
    assert r.exit_code == 0 and ("finding:" in r.output) == (not entry["deployable"]), r.output


def test_whole_graph_int8_refuses_an_lstm_it_cannot_make_int8(tmp_path):
    """quantize_dynamic makes DynamicQuantizeLSTM only from W and R that are plain initializers: an LSTM whose W is
    computed in the graph (here through an Identity) would stay float in an "int8" file, so it is one line instead."""
    from onnx import TensorProto, helper, numpy_helper

    from lstm_edge.errors import LstmEdgeError
    from lstm_edge.export.quant_config import QuantizeConfig
    from lstm_edge.export.quant_ort import quantize_dynamic_graph

    H, F = 4, 3
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((1, 4 * H, w)).astype(np.float32), n) for n, w in
             (("W0", F), ("R", H))]  # fmt: skip
    nodes = [
        helper.make_node("Identity", ["W0"], ["W"]),
        helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=H),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", F])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    with pytest.raises(LstmEdgeError, match="made 0 of the graph's 1 LSTM nodes int8") as e:
        quantize_dynamic_graph(tmp_path / "m.onnx", tmp_path / "q.onnx", QuantizeConfig())
    assert "\n" not in str(e.value) and "--mode fp16" in str(e.value)


def test_gru_quantize_names_what_each_figure_compares_against(tmp_path):
    """A GRU's int8 leaves the GRU node in float, so its hn equals fp32 ONNX Runtime's exactly: quantize's printout
    says each figure's reference (a trial read "max |Δhn| 0.00e+00" beside a larger scaled error as one figure), and
    the report's quantization section has no cell-state note and no cn column for a model without cn."""
    from lstm_edge.export import ExportConfig, export_bundle

    torch.manual_seed(0)
    cfg = ModelConfig(input_size=3, hidden_size=8, num_layers=1, output_size=2, family="gru")
    export_bundle(LSTMModel(cfg).eval(), tmp_path / "g", ExportConfig(name="g"))
    r = CliRunner().invoke(main, ["quantize", str(tmp_path / "g"), "--mode", "dynamic"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.strip().startswith("max |Δhn|"))
    assert "vs the fp32 graph in ONNX Runtime" in line and "(identical: no node on its path was quantized)" in line
    assert "max scaled |Δhn| / max(1, |hn|) against PyTorch (what verify judges)" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "g"), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r.html").read_text()
    assert "max |Δ| vs fp32: y / hn<" in page and "cell state cn" not in page
    assert "against PyTorch per sequence length (zero and random initial state, full and streamed)" in page

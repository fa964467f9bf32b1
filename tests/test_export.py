"""Export: fused graph, dynamic axes, validation at unseen shapes, opsets, atomic writes, lint findings, oracle."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import Bundle
from lstm_edge.checkpoint import save_checkpoint
from lstm_edge.cli import main
from lstm_edge.data import sample_inputs
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.export import ExportConfig, export_bundle, export_onnx, lint
from lstm_edge.export.graph import build_onnx
from lstm_edge.export.validate import validate
from lstm_edge.model import run_numpy
from lstm_edge.tolerances import FP32_ABS, scaled_error
from tests.conftest import make_model


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_bundle_contents_and_manifest(small_bundle):
    b = Bundle.open(small_bundle)
    m = b.manifest
    assert {"fp32", "checkpoint", "golden"} <= set(m["artifacts"])
    for entry in m["artifacts"].values():
        path = small_bundle / entry["path"]
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
    assert m["artifacts"]["fp32"]["opset"] == 17
    assert {"lstm_edge", "torch", "onnx", "onnxruntime"} <= set(m["producers"])
    model = onnx.load(str(small_bundle / "model.onnx"))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["config"])["hidden_size"] == 8 and "i,o,f,c" in props["gate_layout"]
    assert "normalization" in props and "source_checkpoint_sha256" in props


def test_graph_is_fused_with_symbolic_axes(small_bundle):
    model = onnx.load(str(small_bundle / "model.onnx"))
    ops = _ops(model)
    assert ops.count("LSTM") == 2 and "Loop" not in ops and "Scan" not in ops
    inits = {t.name for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "LSTM":
            assert all(n.input[k] in inits for k in (1, 2, 3))  # plain initializers: no shuffles left
            assert all(a.i == 0 for a in n.attribute if a.name == "layout")
    assert not model.graph.value_info
    dims = {
        vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in [*model.graph.input, *model.graph.output]
    }
    assert dims["x"] == ["batch", "seq", 3] and dims["h0"] == [2, "batch", 8]
    assert dims["y"] == ["batch", 2] and dims["cn"] == [2, "batch", 8]
    assert lint(model) == []


@settings(max_examples=8, deadline=None)
@given(
    layers=st.integers(1, 3),
    hidden=st.integers(1, 64),
    inp=st.integers(1, 40),
    head=st.sampled_from(["last", "sequence"]),
    seed=st.integers(0, 1000),
)
def test_random_configs_export_and_validate(layers, hidden, inp, head, seed):
    model = make_model(inp, hidden, layers, output=3, head=head, seed=seed)
    proto = export_onnx(model)  # validates inside; raises on any error above tolerance
    assert _ops(proto).count("LSTM") == layers


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_opsets(opset, tmp_path):
    r = export_bundle(make_model(seed=opset), tmp_path / "b", ExportConfig(opset=opset))
    assert onnx.load(str(r.bundle / "model.onnx")).opset_import[0].version == opset


def test_long_sequences_and_sequence_head():
    model = make_model(head="sequence", hidden=16)
    proto = build_onnx(model)
    rows = validate(
        proto,
        lambda x, h, c: run_numpy(model, x, h, c),
        {"input_size": 3, "num_layers": 2, "hidden_size": 16},
        shapes=((2, 1000),),
    )
    assert all(r["ok"] for r in rows)


def test_onnx_reference_evaluator_agrees_with_pytorch(small_bundle):
    """The ONNX project's own reference implementation: an oracle nobody here wrote."""
    from onnx.reference import ReferenceEvaluator

    model = make_model()
    ref = ReferenceEvaluator(onnx.load(str(small_bundle / "model.onnx")))
    for random_state in (False, True):
        x, h0, c0 = sample_inputs(3, 23, 3, 2, 8, random_state, seed=5)
        got = ref.run(None, {"x": x, "h0": h0, "c0": c0})
        want = run_numpy(model, x, h0, c0)
        for a, b in zip(got, want, strict=True):
            assert scaled_error(a, b).max() <= FP32_ABS


def test_broken_graph_fails_validation():
    model = make_model()
    proto = build_onnx(model)
    W = next(t for t in proto.graph.initializer if t.name == "W0")
    arr = onnx.numpy_helper.to_array(W).copy()
    H = 8
    arr[:, H : 2 * H], arr[:, 2 * H : 3 * H] = arr[:, 2 * H : 3 * H].copy(), arr[:, H : 2 * H].copy()  # swap o and f
    W.CopyFrom(onnx.numpy_helper.from_array(arr, "W0"))
    with pytest.raises(ParityError) as e:
        validate(proto, lambda x, h, c: run_numpy(model, x, h, c), {"input_size": 3, "num_layers": 2, "hidden_size": 8})
    assert "✗" in e.value.report


def test_overwrite_needs_force_and_failed_export_leaves_nothing(tmp_path, monkeypatch):
    ckpt = tmp_path / "m.pt"
    save_checkpoint(make_model(), ckpt)
    out = tmp_path / "bundle"
    export_bundle(ckpt, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(LstmEdgeError, match="already exists"):
        export_bundle(ckpt, out)
    # A validation failure while overwriting leaves the previous bundle byte-identical and no temp folders.
    import lstm_edge.export.plan as plan

    def failing(*a, **k):
        raise ParityError("forced failure")

    monkeypatch.setattr(plan, "validate", failing)
    with pytest.raises(ParityError):
        export_bundle(ckpt, out, ExportConfig(force=True))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "m.pt"]
    monkeypatch.undo()
    export_bundle(ckpt, out, ExportConfig(force=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "m.pt"]


def test_custom_module_through_dynamo():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 6, 2, batch_first=True)
            self.fc = torch.nn.Linear(6, 1)

        def forward(self, x, state):
            out, (h, c) = self.lstm(x, state)
            return self.fc(out[:, -1]), (h, c)

    proto = export_onnx(Custom().eval(), torch.randn(2, 5, 4), opset=18)
    assert _ops(proto).count("LSTM") == 2
    with pytest.raises(LstmEdgeError, match="frozen"):
        export_onnx(Custom().eval(), torch.randn(1, 5, 4))


def test_bare_nn_lstm_exports():
    lstm = torch.nn.LSTM(3, 5, 1, batch_first=True).eval()
    proto = export_onnx(lstm)
    assert _ops(proto).count("LSTM") == 1


# ---- lint: each finding on a model made to have it -----------------------------------------------------------


def _tiny(
    x_dims=("batch", "seq", 2),
    h_dims=(1, "batch", 3),
    layout=0,
    weights_from=None,
    outputs=3,
    ext=False,
    value_info=False,
):
    f = onnx.TensorProto.FLOAT
    W = onnx.numpy_helper.from_array(np.zeros((1, 12, 2), np.float32), "W")
    R = onnx.numpy_helper.from_array(np.zeros((1, 12, 3), np.float32), "R")
    nodes, inits = [], [W, R]
    w_name = "W"
    if weights_from == "Slice":
        inits[0].name = "W_raw"
        s, e, a = (onnx.numpy_helper.from_array(np.array([v]), n) for v, n in ((0, "s"), (12, "e"), (1, "a")))
        inits += [s, e, a]
        nodes.append(helper.make_node("Slice", ["W_raw", "s", "e", "a"], ["W"]))
    x_in = "X_tm"
    nodes.append(helper.make_node("Transpose", ["x"], [x_in], perm=[1, 0, 2]))
    nodes.append(
        helper.make_node(
            "LSTM", [x_in, w_name, "R", "", "", "h0", "c0"], ["Y", "hn", "cn"], hidden_size=3, layout=layout
        )
    )
    outs = [helper.make_tensor_value_info(n, f, None) for n in ("Y", "hn", "cn")[:outputs]]
    g = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", f, list(x_dims)),
            helper.make_tensor_value_info("h0", f, list(h_dims)),
            helper.make_tensor_value_info("c0", f, list(h_dims)),
        ],
        outs,
        inits,
    )
    if value_info:
        g.value_info.append(helper.make_tensor_value_info("X_tm", f, [7, 7, 7]))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    if ext:
        m.graph.initializer[1].data_location = onnx.TensorProto.EXTERNAL
    return m


def _unrolled():
    f = onnx.TensorProto.FLOAT
    nodes, prev = [], "x"
    for t in range(8):
        nodes += [helper.make_node("MatMul", [prev, "w"], [f"m{t}"]), helper.make_node("Sigmoid", [f"m{t}"], [f"s{t}"])]
        prev = f"s{t}"
    w = onnx.numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", f, [1, 2])], [helper.make_tensor_value_info(prev, f, None)], [w]
    )
    return helper.make_model(g)


@pytest.mark.parametrize(
    "model, code",
    [
        (_tiny(x_dims=("batch", 5, 2)), "frozen-seq"),
        (_tiny(x_dims=(1, "seq", 2)), "frozen-batch"),
        (_tiny(h_dims=(1, 1, 3)), "state-batch-frozen"),
        (_tiny(layout=1), "layout-1"),
        (_tiny(weights_from="Slice"), "weight-shuffle"),
        (_tiny(outputs=1), "missing-state-output"),
        (_tiny(ext=True), "external-data"),
        (_tiny(value_info=True), "stale-value-info"),
        (_unrolled(), "unrolled"),
    ],
)
def test_lint_findings(model, code, tmp_path):
    codes = [f.code for f in lint(model)]
    assert code in codes
    if code != "external-data":
        path = tmp_path / "m.onnx"
        onnx.save(model, str(path))
        r = CliRunner().invoke(main, ["lint", str(path)])
        assert r.exit_code == 1 and code in r.output


def test_lint_missing_state_inputs():
    m = _tiny()
    m.graph.node[1].input[5] = ""
    assert "missing-state-input" in [f.code for f in lint(m)]


def test_cli_export_bad_input(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", "export", str(tmp_path / "missing.pt")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "notckpt.pt").write_text("hello")
    r = CliRunner().invoke(main, ["export", str(tmp_path / "notckpt.pt"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not a readable PyTorch checkpoint" in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(main, ["export", str(tmp_path / "notckpt.pt"), "--opset", "9"])
    assert r.exit_code == 2


def test_cli_export_json(tmp_path):
    ckpt = tmp_path / "m.pt"
    save_checkpoint(make_model(), ckpt)
    r = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(tmp_path / "b"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["nodes"]["LSTM"] == 2 and doc["max_scaled_error"] <= FP32_ABS

"""ONNX files lstm-edge did not write (issue 16): the float64 reference, running by names, lint traps, import."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.runtimes import RunnerOptions, resolve
from lstm_edge.runtimes.onnx_reference import OnnxReferenceRunner, double_model
from lstm_edge.tolerances import FP32_ABS, MAPPING_F64, scaled_error

F32 = TensorProto.FLOAT
# legacy torch.onnx exports (dynamo=False) are how most foreign files were written; torch warns (deprecation, tracer,
# batch-size advice) on each, and those warnings are the point of the files, not of the tests
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::Warning")


def lstm_node_model(
    T="T", B="B", F=2, H=3, direction="forward", layout=0, peephole=False, seq_lens=False, state=True, seed=0
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One ONNX LSTM node as the operator's own examples write it (X [T, B, F], weights as initializers), with
    feeds for T=5, B=3 (random state)."""
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    inits = {
        "W": rng.normal(0, 0.5, (D, 4 * H, F)),
        "R": rng.normal(0, 0.5, (D, 4 * H, H)),
        "B": rng.normal(0, 0.5, (D, 8 * H)),
    }
    if peephole:
        inits["P"] = rng.normal(0, 0.5, (D, 3 * H))
    x_dims, s_dims = ([B, T, F], [B, D, H]) if layout else ([T, B, F], [D, B, H])
    ins = [helper.make_tensor_value_info("X", F32, x_dims)]
    node_in = ["X", "W", "R", "B", "seq_lens" if seq_lens else "", "h0" if state else "", "c0" if state else ""]
    if seq_lens:
        ins.append(helper.make_tensor_value_info("seq_lens", TensorProto.INT32, [B]))
    if state:
        ins += [helper.make_tensor_value_info(n, F32, s_dims) for n in ("h0", "c0")]
    if peephole:
        node_in.append("P")
    node = helper.make_node(
        "LSTM", node_in, ["Y", "Y_h", "Y_c"], hidden_size=H, direction=direction, layout=layout, name="lstm"
    )
    outs = [helper.make_tensor_value_info(n, F32, None) for n in ("Y", "Y_h", "Y_c")]
    g = helper.make_graph(
        [node], "foreign", ins, outs, [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    Tn, Bn = 5, 3
    feeds = {"X": rng.normal(size=(Bn, Tn, F) if layout else (Tn, Bn, F)).astype(np.float32)}
    if seq_lens:
        feeds["seq_lens"] = np.array([5, 2, 4], np.int32)
    if state:
        feeds |= {n: rng.normal(size=(Bn, D, H) if layout else (D, Bn, H)).astype(np.float32) for n in ("h0", "c0")}
    return m, feeds


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds), strict=True))


def reference(path) -> OnnxReferenceRunner:
    return OnnxReferenceRunner(resolve(path), RunnerOptions())


# ---- the float64 reference ------------------------------------------------------------------------------------


def test_double_model_casts_everything_float():
    m, _ = lstm_node_model()
    m.graph.node.insert(0, helper.make_node("Constant", [], ["k"], value_float=2.0))
    m.graph.node.append(helper.make_node("Cast", ["Y_h"], ["Y_h32"], to=F32))
    d = double_model(m)
    assert all(t.data_type == TensorProto.DOUBLE for t in d.graph.initializer)
    assert d.graph.node[0].attribute[0].t.data_type == TensorProto.DOUBLE
    assert d.graph.node[-1].attribute[0].i == TensorProto.DOUBLE
    assert all(v.type.tensor_type.elem_type == TensorProto.DOUBLE for v in (*d.graph.input, *d.graph.output))
    assert m.graph.initializer[0].data_type == F32  # the original is untouched


def test_reference_runner_on_a_bundle(small_bundle):
    """Equal to ORT CPU within float32 noise, and to the torch float64 reference to float64 noise."""
    ref = lstm_edge.load(small_bundle, provider="reference")
    torch64 = lstm_edge.load(small_bundle, provider="torch", float64=True)
    for a in Bundle.open(small_bundle).golden().values():
        y, (h, c) = ref.run(a["x"], (a["h0"], a["c0"]))
        assert y.dtype == np.float64
        for name, got in (("y", y), ("hn", h), ("cn", c)):
            assert scaled_error(a[name], got).max() <= FP32_ABS
        y64, (h64, c64) = torch64.run(a["x"], (a["h0"], a["c0"]))
        assert scaled_error(c, c64).max() <= MAPPING_F64 and scaled_error(y, y64).max() <= MAPPING_F64
    assert ref.describe()["precision"] == "fp64"


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_reference_runner_on_foreign_lstm_with_lengths(direction, tmp_path):
    """sequence_lens, which onnx.reference itself ignores, is honoured per the spec — equal to ORT."""
    m, feeds = lstm_node_model(direction=direction, seq_lens=True)
    onnx.save(m, str(tmp_path / "m.onnx"))
    got = reference(tmp_path / "m.onnx").run_feeds(feeds)
    for name, want in ort_run(m, feeds).items():
        assert scaled_error(want, got[name]).max() <= FP32_ABS, name


def test_reference_refuses_what_it_would_compute_wrongly(tmp_path):
    m, _ = lstm_node_model()
    m.graph.node[0].attribute.append(helper.make_attribute("clip", 1.0))
    onnx.save(m, str(tmp_path / "m.onnx"))
    with pytest.raises(lstm_edge.LstmEdgeError, match="clip, which onnx.reference ignores"):
        reference(tmp_path / "m.onnx")


# ---- lint: the traps foreign files carry ----------------------------------------------------------------------


def legacy_lstm(path, state=False, batch_fixed=False):
    """torch.onnx legacy export of nn.LSTM(3, 6, batch_first=True): without state (zeros made inside the graph),
    or with h0/c0 inputs whose batch is fixed at 1 (dynamic axes on x only)."""
    import torch

    torch.manual_seed(0)
    m = torch.nn.LSTM(3, 6, batch_first=True).eval()
    args = (torch.randn(1 if batch_fixed else 2, 7, 3),)
    names = ["x"]
    if state:
        args = (args[0], (torch.zeros(1, args[0].shape[0], 6), torch.zeros(1, args[0].shape[0], 6)))
        names += ["h0", "c0"]
    torch.onnx.export(
        m,
        args,
        str(path),
        dynamo=False,
        input_names=names,
        output_names=["y", "hn", "cn"],
        dynamic_axes={"x": {0: "batch", 1: "seq"}},
    )
    return path


def lstm_cell_loop(path, T=6):
    """An LSTMCell loop traced at T (unrolled), declared with dynamic batch and seq on x and y."""
    import torch

    class Loop(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell, self.head = torch.nn.LSTMCell(3, 6), torch.nn.Linear(6, 1)

        def forward(self, x):
            h = c = torch.zeros(x.shape[0], 6)
            ys = []
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h, c))
                ys.append(h)
            return self.head(torch.stack(ys, 1))

    torch.manual_seed(0)
    torch.onnx.export(
        Loop().eval(),
        (torch.randn(2, T, 3),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}},
    )
    return path


def weights_as_inputs() -> onnx.ModelProto:
    """ONNX's own LSTM operator example: X [T, B, F], W, R, B all graph inputs."""
    m, _ = lstm_node_model(T=4, B=1, state=False)
    for t in list(m.graph.initializer):
        m.graph.input.append(helper.make_tensor_value_info(t.name, F32, list(t.dims)))
    del m.graph.initializer[:]
    return m


@pytest.mark.parametrize(
    "make, code, words",
    [
        (lambda p: onnx.load(str(legacy_lstm(p))), "missing-state-input", "streaming is impossible"),
        (lambda p: onnx.load(str(legacy_lstm(p, state=True, batch_fixed=True))), "state-batch-frozen", "fixed at 1"),
        (lambda p: onnx.load(str(lstm_cell_loop(p))), "unrolled", "fixed at 6 steps"),
        (lambda p: lstm_node_model(seq_lens=True)[0], "sequence-lens", "OpenVINO ignores sequence_lens"),
        (lambda p: lstm_node_model(layout=1)[0], "layout-1", "tract runs it correctly"),
        (lambda p: lstm_node_model(peephole=True)[0], "peephole", "OpenVINO ignores LSTM peephole"),
        (lambda p: lstm_node_model(direction="reverse")[0], "reverse-direction", "tract computes"),
        (lambda p: weights_as_inputs(), "weights-as-inputs", "cannot be quantized as constants"),
        (lambda p: lstm_node_model(T=6)[0], "frozen-seq", "time axis fixed at 6"),
    ],
)
def test_lint_foreign_traps(make, code, words, tmp_path):
    from lstm_edge.export import lint

    found = [f for f in lint(make(tmp_path / "m.onnx")) if f.code == code]
    assert found and words in found[0].message and found[0].fix, [f.code for f in lint(make(tmp_path / "m.onnx"))]


def test_lint_clean_on_bundles_and_plain_foreign_lstm(small_bundle):
    from lstm_edge.export import lint

    assert lint(onnx.load(str(small_bundle / "model.onnx"))) == []
    assert lint(lstm_node_model(direction="bidirectional")[0]) == []


# ---- import ----------------------------------------------------------------------------------------------------


def row1_files(tmp_path):
    """Row 1: ONNX's LSTM example with weights as graph inputs, an .npz of arrays by those names."""
    m = weights_as_inputs()
    onnx.save(m, str(tmp_path / "row1.onnx"))
    rng = np.random.default_rng(0)
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    arrays = {k: rng.normal(0, 0.5, v).astype(np.float32) for k, v in dims.items()}
    arrays["X"] = rng.normal(size=(4, 1, 2)).astype(np.float32)
    np.savez(tmp_path / "row1.npz", **arrays)
    np.savez(tmp_path / "row1_weights.npz", **{k: v for k, v in arrays.items() if k != "X"})
    return tmp_path / "row1.onnx", arrays


def test_import_rebuild_layout1_and_lengths(tmp_path):
    """--rebuild turns layout=1 (ORT rejects it) and sequence_lens (OpenVINO ignores it) into a clean bundle."""
    from lstm_edge.export.importer import ImportConfig, import_onnx

    for kw in ({"layout": 1}, {"seq_lens": True}):
        m, _ = lstm_node_model(**kw)
        onnx.save(m, str(tmp_path / "m.onnx"))
        r = import_onnx(tmp_path / "m.onnx", tmp_path / "b", ImportConfig(rebuild=True, force=True))
        assert r.rebuilt and r.streaming and "equal to the original in float64" in r.notes[-1]
        from lstm_edge.export import lint

        assert lint(onnx.load(str(tmp_path / "b" / "model.onnx"))) == []


def test_import_refusals(tmp_path):
    from click.testing import CliRunner

    from lstm_edge.cli import main

    onnx.save(lstm_node_model(peephole=True)[0], str(tmp_path / "p.onnx"))
    lstm_cell_loop(tmp_path / "u.onnx")
    onnx.save(weights_as_inputs(), str(tmp_path / "w.onnx"))
    for args, needle in (
        (["p.onnx", "--rebuild"], "peephole weights P (nn.LSTM has none)"),
        (["u.onnx"], "unrolled"),
        (["w.onnx"], "--weights FILE.npz"),
    ):
        r = CliRunner().invoke(main, ["import", str(tmp_path / args[0]), "--out", str(tmp_path / "b"), *args[1:]])
        assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "b").exists()


# ---- run by names: a test per row of issue 16's table, then node variants at every local runtime ----------------

LOCAL = ("cpu", "openvino", "tract", "reference")


def cli(*args):
    from click.testing import CliRunner

    from lstm_edge.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def legacy_gru(path):
    """Row 7: legacy export of nn.GRU(3, 5, batch_first=True) with inputs (x, h0) only."""
    import torch

    torch.manual_seed(0)
    x, h0 = torch.randn(2, 7, 3), torch.zeros(1, 2, 5)
    torch.onnx.export(
        torch.nn.GRU(3, 5, batch_first=True).eval(),
        (x, h0),
        str(path),
        dynamo=False,
        input_names=["x", "h0"],
        output_names=["y", "hn"],
        dynamic_axes={"x": {0: "batch", 1: "seq"}, "h0": {1: "batch"}},
    )
    return path


def assert_equal_to_ort(path, feeds, provider, allowed_refusal=None):
    """The runner's outputs on `feeds` equal ORT CPU's on the same feeds (≤ FP32_ABS scaled) — or, where the
    runtime has a measured limit, a one-line refusal naming it."""
    model = onnx.load(str(path))
    try:
        runner = lstm_edge.load(path, provider=provider)
        got = runner.run_feeds(feeds)
    except lstm_edge.LstmEdgeError as e:
        assert allowed_refusal and allowed_refusal in str(e) and "\n" not in str(e), (provider, str(e))
        return
    assert allowed_refusal is None, f"{provider} ran a model it should refuse ({allowed_refusal})"
    try:
        want = ort_run(model, feeds)
    except Exception:  # ORT rejects layout=1: the float64 reference is the judge there
        want = reference(path).run_feeds(feeds)
    for name, w in want.items():
        assert scaled_error(got[name], w).max() <= FP32_ABS, (provider, name)


@pytest.mark.parametrize("provider", LOCAL)
def test_row1_weights_as_inputs_run_by_name(provider, tmp_path):
    path, arrays = row1_files(tmp_path)
    assert_equal_to_ort(path, arrays, provider)
    if provider == "cpu":
        r = cli("run", path, "--input", tmp_path / "row1.npz", "--output", tmp_path / "out.npz")
        assert r.exit_code == 0, r.output
        with np.load(tmp_path / "out.npz") as z:
            assert set(z.files) == {"Y", "Y_h", "Y_c"}
            assert scaled_error(z["Y_c"], ort_run(onnx.load(str(path)), arrays)["Y_c"]).max() <= FP32_ABS
        del arrays["R"]
        np.savez(tmp_path / "no_r.npz", **arrays)
        r = cli("run", path, "--input", tmp_path / "no_r.npz")
        assert r.exit_code == 2 and "needs input R [1, 12, 3] float32" in r.output and "Traceback" not in r.output


def test_row2_stateless_legacy_lstm(tmp_path):
    path = legacy_lstm(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(3, 7, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for provider in LOCAL:
        assert_equal_to_ort(path, {"x": x}, provider)
    y, (h, c) = lstm_edge.load(path).run(x)
    assert y.shape == (3, 7, 6) and h.shape == c.shape == (1, 3, 6)
    r = cli("run", path, "--input", tmp_path / "x.npy")
    assert r.exit_code == 0 and "hn (1, 3, 6)" in r.output, r.output
    r = cli("run", path, "--input", tmp_path / "x.npy", "--stream")
    assert r.exit_code == 2 and "cannot stream" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli("lint", path)
    assert r.exit_code == 1 and "missing-state-input" in r.output


def test_row3_state_batch_fixed(tmp_path):
    path = legacy_lstm(tmp_path / "m.onnx", state=True, batch_fixed=True)
    np.save(tmp_path / "x.npy", np.zeros((3, 7, 3), np.float32))
    r = cli("run", path, "--input", tmp_path / "x.npy")
    assert r.exit_code == 2 and "h0 has batch fixed at 1; x has batch 3" in r.output, r.output
    assert "state-batch-frozen" in cli("lint", path).output


@pytest.mark.parametrize("provider", LOCAL)
def test_row4_lengths_fed_by_name(provider, tmp_path):
    m, feeds = lstm_node_model(seq_lens=True)
    onnx.save(m, str(tmp_path / "m.onnx"))
    limits = {"openvino": "OpenVINO ignores sequence_lens", "tract": "tract cannot load"}
    assert_equal_to_ort(tmp_path / "m.onnx", feeds, provider, limits.get(provider))
    if provider == "cpu":  # without seq_lens: the full length; without h0: one line naming nothing missing
        full = dict(feeds, seq_lens=np.full(3, 5, np.int32))
        got = lstm_edge.load(tmp_path / "m.onnx").run_feeds({k: v for k, v in feeds.items() if k != "seq_lens"})
        assert scaled_error(got["Y_c"], ort_run(m, full)["Y_c"]).max() <= FP32_ABS
        np.savez(tmp_path / "in.npz", **feeds)
        assert cli("run", tmp_path / "m.onnx", "--input", tmp_path / "in.npz").exit_code == 0


def test_row5_unrolled_cell_run_longer(tmp_path):
    path = lstm_cell_loop(tmp_path / "m.onnx", T=6)
    np.save(tmp_path / "x.npy", np.zeros((2, 9, 3), np.float32))
    r = cli("run", path, "--input", tmp_path / "x.npy")
    assert r.exit_code == 2 and "time axis is fixed at 6" in r.output and "Traceback" not in r.output, r.output
    np.save(tmp_path / "x6.npy", np.zeros((2, 6, 3), np.float32))
    assert cli("run", path, "--input", tmp_path / "x6.npy").exit_code == 0


@pytest.mark.parametrize("provider", LOCAL)
def test_row6_layout1(provider, tmp_path):
    m, feeds = lstm_node_model(layout=1)
    onnx.save(m, str(tmp_path / "m.onnx"))
    limits = {"cpu": "ONNX Runtime rejects", "openvino": "OpenVINO ignores layout=1"}
    assert_equal_to_ort(tmp_path / "m.onnx", feeds, provider, limits.get(provider))
    if provider == "openvino":
        np.savez(tmp_path / "in.npz", **feeds)
        r = cli("run", tmp_path / "m.onnx", "--provider", "openvino", "--input", tmp_path / "in.npz")
        assert r.exit_code == 2 and "run it on tract" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("provider", LOCAL)
def test_row7_gru_with_x_and_h0(provider, tmp_path):
    path = legacy_gru(tmp_path / "g.onnx")
    x = np.random.default_rng(1).normal(size=(2, 7, 3)).astype(np.float32)
    feeds = {"x": x, "h0": np.zeros((1, 2, 5), np.float32)}
    assert_equal_to_ort(path, feeds, provider)
    got = lstm_edge.load(path, provider=provider).run_feeds({"x": x})  # h0 zero when not given
    assert scaled_error(got["hn"], ort_run(onnx.load(str(path)), feeds)["hn"]).max() <= FP32_ABS
    if provider == "cpu":
        y, (h,) = lstm_edge.load(path).run(x)
        assert y.shape == (2, 7, 5) and h.shape == (1, 2, 5)


@pytest.mark.parametrize("provider", LOCAL)
@pytest.mark.parametrize(
    "kw, limits",
    [
        ({"direction": "bidirectional"}, {}),
        ({"direction": "reverse"}, {"tract": "tract computes direction=reverse wrongly"}),
        ({"peephole": True}, {"openvino": "OpenVINO ignores LSTM peephole weights"}),
    ],
    ids=["bidirectional", "reverse", "peephole"],
)
def test_lstm_node_variants_at_every_runtime(kw, limits, provider, tmp_path):
    m, feeds = lstm_node_model(**kw)
    onnx.save(m, str(tmp_path / "m.onnx"))
    assert_equal_to_ort(tmp_path / "m.onnx", feeds, provider, limits.get(provider))


# ---- import → verify --quick → quantize (rows 1 and 2), and a stateful import embedded ---------------------------


def _import_verify_quantize(tmp_path, model, extra=()):
    out = tmp_path / "bundle"
    r = cli("import", model, "--out", out, *extra)
    assert r.exit_code == 0, r.output
    manifest = Bundle.open(out).manifest
    assert manifest["reference"]["kind"] == "onnx-float64" and "checkpoint" not in manifest["artifacts"]
    assert manifest["streaming"] is False  # neither row's state is a graph input
    r = cli("verify", out, "--quick", "--providers", "cpu,openvino,tract,torch")
    assert r.exit_code == 0 and "PASSED" in r.output and "no PyTorch checkpoint" in r.output, r.output
    r = cli("quantize", out, "--mode", "dynamic", "--calibration-samples", "16")
    assert r.exit_code == 0 and "unverified" in r.output, r.output
    r = cli("verify", out, "--quick", "--providers", "cpu", "--variants", "int8")
    assert r.exit_code == 0 and "PASSED" in r.output, r.output
    return out


def test_import_verify_quantize_row1_weights_as_inputs(tmp_path):
    path, _ = row1_files(tmp_path)
    _import_verify_quantize(tmp_path, path, ("--weights", tmp_path / "row1_weights.npz"))


def test_import_verify_quantize_row2_stateless_legacy(tmp_path):
    out = _import_verify_quantize(tmp_path, legacy_lstm(tmp_path / "m.onnx"))
    # without state I/O the python target runs whole sequences (golden index x → the graph's own outputs)
    r = cli("bundle", out, "--target", "python", "--out", tmp_path / "app")
    assert r.exit_code == 0, r.output
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path / "app", capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0 and "ran whole sequences" in p.stdout and "PASS" in p.stdout, p.stdout + p.stderr


def test_import_stateful_streams_and_embeds(tmp_path):
    import subprocess
    import sys

    m, feeds = lstm_node_model()  # X [T, B, F] time-major, h0/c0 inputs: wrapped to x [B, T, F]
    onnx.save(m, str(tmp_path / "m.onnx"))
    out = tmp_path / "b"
    assert cli("import", tmp_path / "m.onnx", "--out", out).exit_code == 0
    runner = lstm_edge.load(out)
    x = feeds["X"].transpose(1, 0, 2)
    y, (h, c) = runner.run(x, (feeds["h0"], feeds["c0"]))
    want = ort_run(m, feeds)
    assert scaled_error(y, want["Y"][:, 0].transpose(1, 0, 2)).max() <= FP32_ABS
    s = runner.stream(batch=3)
    s.state = (feeds["h0"], feeds["c0"])
    for t in range(5):
        s.step(x[:, t])
    assert scaled_error(s.state[1], want["Y_c"]).max() <= FP32_ABS
    assert cli("bundle", out, "--target", "python", "--out", tmp_path / "app").exit_code == 0
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path / "app", capture_output=True, text=True)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


def test_import_gru_and_bidirectional_refused_in_one_line(tmp_path):
    onnx.save(lstm_node_model(direction="bidirectional")[0], str(tmp_path / "bi.onnx"))
    for model in (legacy_gru(tmp_path / "g.onnx"), tmp_path / "bi.onnx"):
        r = cli("import", model, "--out", tmp_path / "b")
        assert r.exit_code == 2 and "lstm-edge run MODEL.onnx" in r.output and not (tmp_path / "b").exists()

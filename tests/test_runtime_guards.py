"""Issue 24's silent wrong answers, each through the CLI as a user meets it: a form a runtime computes wrongly is
refused there by name (tract on a repeated input, tract on a missing initial_c), an output whose time axis does not
match x's is one line, and a quantized input outside its recorded range is counted, warned about, or refused."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from lstm_edge.cli import main

F32 = TensorProto.FLOAT


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_exit_2(r) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    return r.output


# ---- (a) tract on an autoencoder's repeated input ------------------------------------------------------------------
class AE(torch.nn.Module):
    """An LSTM autoencoder: the encoder's last h repeated T times feeds the decoder, a Linear per step."""

    def __init__(self, F: int = 3, H: int = 8) -> None:
        super().__init__()
        self.enc = torch.nn.LSTM(F, H, batch_first=True)
        self.dec = torch.nn.LSTM(H, H, batch_first=True)
        self.out = torch.nn.Linear(H, F)

    def forward(self, x):
        _, (h, _) = self.enc(x)
        z = h[-1].unsqueeze(1).repeat(1, x.shape[1], 1)  # (B, T, H): the repeated state
        y, _ = self.dec(z)
        return self.out(y)  # (B, T, F)


def repeated_input_model(op: str = "Tile", between: str | None = None) -> onnx.ModelProto:
    """One LSTM whose X is z [1, B, F] repeated over T (Tile, or Expand) to the length of a second input s [T],
    through `between` (MatMul by a constant [F, F], or Relu) when given."""
    rng = np.random.default_rng(0)
    F, H = 3, 4
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, F)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, H)).astype(np.float32), "R"),
        numpy_helper.from_array(np.ones(1, np.int64), "one"),
        numpy_helper.from_array(rng.normal(0, 0.5, (F, F)).astype(np.float32), "M"),
    ]
    mid = {"MatMul": [helper.make_node("MatMul", ["Z", "M"], ["X"])], "Relu": [helper.make_node("Relu", ["Z"], ["X"])]}
    nodes = [
        helper.make_node("Shape", ["s"], ["T"]),
        helper.make_node("Concat", ["T", "one", "one"], ["reps"], axis=0),
        helper.make_node(op, ["z", "reps"], ["Z" if between else "X"]),
        *mid.get(between, []),
        helper.make_node("LSTM", ["X", "W", "R", "", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=H, name="dec"),
    ]
    ins = [
        helper.make_tensor_value_info("z", F32, [1, "B", F]),
        helper.make_tensor_value_info("s", F32, ["T"]),
        *(helper.make_tensor_value_info(n, F32, [1, "B", H]) for n in ("h0", "c0")),
    ]
    outs = [helper.make_tensor_value_info(n, F32, None) for n in ("Y", "Y_h", "Y_c")]
    m = helper.make_model(helper.make_graph(nodes, "ae", ins, outs, inits), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_tract_refuses_the_autoencoders_repeated_state_by_name(tmp_path):
    """Before: exit 0, every output step the first (tract runs the decoder's Scan once). After: one line, exit 2."""
    pytest.importorskip("tract")
    torch.manual_seed(0)
    torch.save(AE(), tmp_path / "ae.pt")
    r = cli("export", tmp_path / "ae.pt", "--trust-pickle", "--out", tmp_path / "ae")
    assert r.exit_code == 0, r.output
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32))
    out = one_line_exit_2(cli("run", tmp_path / "ae", "--provider", "tract", "--input", tmp_path / "x.npy"))
    assert "repeated over time" in out and "ONNX Runtime" in out
    assert cli("run", tmp_path / "ae", "--input", tmp_path / "x.npy").exit_code == 0  # ORT computes it right


@pytest.fixture()
def repeated_feeds(tmp_path):
    rng = np.random.default_rng(1)
    feeds = {"z": rng.normal(size=(1, 2, 3)), "s": np.zeros(5), "h0": np.zeros((1, 2, 4)), "c0": np.zeros((1, 2, 4))}
    np.savez(tmp_path / "in.npz", **{k: v.astype(np.float32) for k, v in feeds.items()})
    return tmp_path / "in.npz"


@pytest.mark.parametrize(("op", "between"), [("Tile", None), ("Expand", None), ("Tile", "MatMul")])
def test_tract_refuses_a_bare_lstm_on_a_repeated_input(tmp_path, repeated_feeds, op, between):
    """Before: exit 0, Y with 1 step where X has 5. After: one line, exit 2; lint names it."""
    pytest.importorskip("tract")
    onnx.save(repeated_input_model(op, between), tmp_path / "m.onnx")
    out = one_line_exit_2(cli("run", tmp_path / "m.onnx", "--provider", "tract", "--input", repeated_feeds))
    assert "node 'dec'" in out and "repeated over time" in out
    lint = cli("lint", tmp_path / "m.onnx")
    assert "repeated-input" in lint.output, lint.output


def test_tract_still_runs_a_repeated_input_behind_an_elementwise_op(tmp_path, repeated_feeds):
    """A Relu between the Tile and the LSTM stops tract's rewrite: it computes the node right, so it answers."""
    pytest.importorskip("tract")
    onnx.save(repeated_input_model("Tile", "Relu"), tmp_path / "m.onnx")
    for provider in ("tract", "cpu"):
        r = cli(
            "run",
            tmp_path / "m.onnx",
            "--provider",
            provider,
            "--input",
            repeated_feeds,
            "--output",
            tmp_path / f"{provider}.npz",
        )
        assert r.exit_code == 0, r.output
    got, want = np.load(tmp_path / "tract.npz"), np.load(tmp_path / "cpu.npz")
    assert got["Y"].shape == want["Y"].shape == (5, 1, 2, 4)
    assert np.abs(got["Y"] - want["Y"]).max() < 1e-5


# ---- (c) tract on an LSTM with initial_h but no initial_c ----------------------------------------------------------
def no_initial_c_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    F, H = 3, 4
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, F)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, H)).astype(np.float32), "R"),
    ]
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "h0"], ["Y", "Y_h", "Y_c"], hidden_size=H, name="lstm")
    ins = [
        helper.make_tensor_value_info("X", F32, ["T", "B", F]),
        helper.make_tensor_value_info("h0", F32, [1, "B", H]),
    ]
    outs = [helper.make_tensor_value_info(n, F32, None) for n in ("Y", "Y_h", "Y_c")]
    m = helper.make_model(helper.make_graph([node], "g", ins, outs, inits), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_tract_refuses_a_missing_initial_c_instead_of_aborting(tmp_path):
    """Before: tract panics and the process aborts (exit 134). After: one line, exit 2, naming where it runs."""
    pytest.importorskip("tract")
    import subprocess
    import sys

    onnx.save(no_initial_c_model(), tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "in.npz", X=rng.normal(size=(5, 2, 3)).astype(np.float32), h0=np.zeros((1, 2, 4), np.float32))
    cmd = [sys.executable, "-m", "lstm_edge.cli", "run", str(tmp_path / "m.onnx"), "--provider", "tract"]
    done = subprocess.run([*cmd, "--input", str(tmp_path / "in.npz")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and "initial_c" in done.stderr, done.stderr[-2000:]
    assert "ONNX Runtime" in done.stderr


# ---- (b) an output whose time axis does not match x's ---------------------------------------------------------------
def unrolled_cell_model(steps: int = 6, F: int = 3, H: int = 4) -> onnx.ModelProto:
    """An LSTMCell loop unrolled over `steps` (as tracing writes it): x [batch, seq, F] with seq free, h0/c0
    [1, batch, H], y [batch, steps, H] stacked from each step's h, hn/cn the last step's."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (F, 4 * H)).astype(np.float32), "Wx"),
        numpy_helper.from_array(rng.normal(0, 0.5, (H, 4 * H)).astype(np.float32), "Wh"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        *(numpy_helper.from_array(np.array(t, np.int64), f"t{t}") for t in range(steps)),
    ]
    nodes = [helper.make_node("Squeeze", [s, "zero"], [f"{s}_0"]) for s in ("h0", "c0")]
    h, c, ys = "h0_0", "c0_0", []
    for t in range(steps):
        p = f"s{t}_"
        nodes += [
            helper.make_node("Gather", ["x", f"t{t}"], [p + "x"], axis=1),
            helper.make_node("MatMul", [p + "x", "Wx"], [p + "ax"]),
            helper.make_node("MatMul", [h, "Wh"], [p + "ah"]),
            helper.make_node("Add", [p + "ax", p + "ah"], [p + "z"]),
            helper.make_node("Split", [p + "z"], [p + g for g in "ifgo"], axis=1, num_outputs=4),
            *(helper.make_node("Sigmoid", [p + g], [p + g + "s"]) for g in "ifo"),
            helper.make_node("Tanh", [p + "g"], [p + "gt"]),
            helper.make_node("Mul", [p + "fs", c], [p + "fc"]),
            helper.make_node("Mul", [p + "is", p + "gt"], [p + "ig"]),
            helper.make_node("Add", [p + "fc", p + "ig"], [p + "c"]),
            helper.make_node("Tanh", [p + "c"], [p + "ct"]),
            helper.make_node("Mul", [p + "os", p + "ct"], [p + "h"]),
            helper.make_node("Unsqueeze", [p + "h", "one_axis"], [p + "y"]),
        ]
        h, c = p + "h", p + "c"
        ys.append(p + "y")
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "one_axis"))
    nodes += [
        helper.make_node("Concat", ys, ["y"], axis=1),
        helper.make_node("Unsqueeze", [h, "zero"], ["hn"]),
        helper.make_node("Unsqueeze", [c, "zero"], ["cn"]),
    ]
    ins = [
        helper.make_tensor_value_info("x", F32, ["batch", "seq", F]),
        *(helper.make_tensor_value_info(n, F32, [1, "batch", H]) for n in ("h0", "c0")),
    ]
    outs = [
        helper.make_tensor_value_info("y", F32, ["batch", steps, H]),
        *(helper.make_tensor_value_info(n, F32, [1, "batch", H]) for n in ("hn", "cn")),
    ]
    m = helper.make_model(
        helper.make_graph(nodes, "cell", ins, outs, inits), opset_imports=[helper.make_opsetid("", 18)]
    )
    m.ir_version = 8
    return m


@pytest.fixture()
def unrolled(tmp_path):
    onnx.save(unrolled_cell_model(), tmp_path / "cell.onnx")
    x = np.random.default_rng(0).normal(size=(2, 9, 3)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    return tmp_path / "cell.onnx", tmp_path / "x.npz", x


def test_run_refuses_an_output_with_fewer_steps_than_x(unrolled):
    """Before: exit 0, y (2, 6, 4) for x of 9 steps. After: one line, exit 2, before any result is printed."""
    model, xfile, _ = unrolled
    out = one_line_exit_2(cli("run", model, "--input", xfile))
    assert "y has 6 steps where x has 9" in out
    r = cli("run", model, "--input", xfile, "--output", xfile.with_name("y.npz"))
    one_line_exit_2(r)
    assert not xfile.with_name("y.npz").exists()


def test_stream_refuses_a_fixed_time_axis_in_one_line(unrolled):
    """Before: a traceback (the stream's state buffers, or ONNX Runtime on a 1-step x). After: one line, exit 2."""
    model, xfile, _ = unrolled
    out = one_line_exit_2(cli("run", model, "--input", xfile, "--stream"))
    assert "fixed at 6 steps" in out and "cannot stream" in out


def test_api_refuses_an_output_with_fewer_steps_than_x(unrolled):
    import lstm_edge

    model, _, x = unrolled
    runner = lstm_edge.load(model)
    with pytest.raises(lstm_edge.LstmEdgeError, match="y has 6 steps where x has 9"):
        runner.run(x)
    with pytest.raises(lstm_edge.LstmEdgeError, match="cannot stream"):
        runner.stream()
    y, _ = runner.run(x[:, :6])  # at the length it was unrolled at, it answers
    assert y.shape == (2, 6, 4)


# ---- (d) the int8 C on inputs outside the range recorded at training -----------------------------------------------
needs_cc = pytest.mark.skipif(
    __import__("lstm_edge.runtimes.probes", fromlist=["c_compiler_missing"]).c_compiler_missing() is not None,
    reason="no C compiler",
)


@pytest.fixture(scope="module")
def wide_x(tmp_path_factory):
    """x ~ N(0, 1) for the shipped adding model, trained on values in [0, 1] and a 0/1 marker: some lie outside."""
    path = tmp_path_factory.mktemp("wide") / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(2, 30, 2)).astype(np.float32))
    return path


@needs_cc
def test_int8_c_warns_about_clipped_inputs_and_strict_range_refuses(shipped_bundle, wide_x, tmp_path):
    """Before: exit 0, no word (y off by up to 2.29). After: a one-line warning with the count, the range and the
    fix before the result; --strict-range: exit 1 and no result printed or written."""
    args = ["run", shipped_bundle, "--provider", "c", "--variant", "int8", "--input", wide_x]
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and "of 120 input values lie outside" in warn[0] and "x[0] in [" in warn[0], r.stderr
    assert "--variant fp32" in warn[0]
    out = tmp_path / "y.npy"
    r = CliRunner().invoke(main, [str(a) for a in [*args, "--strict-range", "--output", out]])
    assert r.exit_code == 1 and "lie outside" in r.stderr and "y (" not in r.stdout and not out.exists(), r.output
    r = CliRunner().invoke(main, [str(a) for a in [*args, "--stream", "--strict-range"]])
    assert r.exit_code == 1 and "lie outside" in r.stderr, r.output


@needs_cc
def test_int8_c_counts_clipped_inputs_in_the_api_and_nothing_in_range(shipped_bundle, wide_x):
    import lstm_edge

    x = np.load(wide_x)
    with lstm_edge.load(shipped_bundle, provider="c", variant="int8") as runner:
        res = runner.run(x)
        y, (h, c) = res  # unpacks as before
        rng = runner.input_range
        v = (x - rng.mean) / rng.std * rng.inv_scale  # what the C clamps to ±32767, counted independently
        assert res.clipped == int((np.abs(v) > 32767).sum()) > 0
        # at the edges of the range, one float32 step apart, per step as a stream counts: still exact
        edges = [f(e, d) for e in (rng.lo, rng.hi) for d in (-np.inf, np.inf) for f in (np.nextafter, lambda e, d: e)]
        xe = np.stack(edges)[None].astype(np.float32)  # [1, 8, F]
        ve = (xe - rng.mean) / rng.std * rng.inv_scale
        want = [int((np.abs(ve[:, t]) > 32767).sum()) for t in range(xe.shape[1])]
        assert [rng.clipped(xe[:, t]) for t in range(xe.shape[1])] == want and sum(want) == 2 * xe.shape[2]
        # a stream step counts in the C (NAME_clipped), the same values: the edges, NaN, ±inf, one sample a step
        xs = np.concatenate([xe[0], [[np.nan, np.inf], [-np.inf, 0.5]], x[0]]).astype(np.float32)
        s, before = runner.stream(), runner.clipped
        counts = []
        for t in range(len(xs)):
            n0 = s.clipped
            s.step(xs[t])
            counts.append(s.clipped - n0)
        assert counts == [rng.clipped(xs[t : t + 1]) for t in range(len(xs))] and sum(counts) > sum(want)
        assert runner.clipped - before == s.clipped
        inside = np.load(shipped_bundle / "golden.npz")
        x_in = next(inside[k] for k in inside.files if k.endswith("x"))
        assert runner.run(x_in).clipped == 0
    with lstm_edge.load(shipped_bundle, provider="c") as fp32:
        assert fp32.run(x).clipped == 0  # fp32 C clips nothing


@needs_cc
def test_score_warns_about_clipped_inputs_and_strict_range_writes_nothing(shipped_bundle, wide_x, tmp_path):
    args = ["score", shipped_bundle, "--provider", "c", "--variant", "int8", "--input", wide_x]
    r = CliRunner().invoke(main, [str(a) for a in [*args, "--output", tmp_path / "p.parquet"]])
    assert r.exit_code == 0 and "input values lie outside" in r.stderr, r.output
    r = CliRunner().invoke(main, [str(a) for a in [*args, "--output", tmp_path / "q.parquet", "--strict-range"]])
    assert r.exit_code == 1 and "lie outside" in r.stderr and not (tmp_path / "q.parquet").exists(), r.output


@needs_cc
def test_score_on_ray_strict_range_refuses_before_ray_starts(shipped_bundle, wide_x, tmp_path):
    """The Ray engine counts on the driver, before any actor: --strict-range exits 1 and writes nothing."""
    pytest.importorskip("ray")
    args = ["score", shipped_bundle, "--provider", "c", "--variant", "int8", "--input", wide_x, "--engine", "ray"]
    r = CliRunner().invoke(main, [str(a) for a in [*args, "--output", tmp_path / "out", "--strict-range"]])
    assert r.exit_code == 1 and "lie outside" in r.stderr and not (tmp_path / "out").exists(), r.output

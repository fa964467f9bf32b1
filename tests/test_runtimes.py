"""Every runtime on this machine matches golden.npz; streaming equals the full run; CUDA never falls back silently."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.probes import cuda_unavailable_reason
from lstm_edge.tolerances import FP32_ABS, fp32_tolerance, scaled_error

LOCAL = ["torch", "cpu", "openvino", "tract"]


@pytest.fixture(scope="module", params=LOCAL)
def runner(request, shipped_bundle):
    with lstm_edge.load(shipped_bundle, provider=request.param) as r:
        yield r


def test_matches_golden(runner, shipped_bundle):
    for case, a in Bundle.open(shipped_bundle).golden().items():
        y, (h, c) = runner.run(a["x"], (a["h0"], a["c0"]))
        for name, got in (("y", y), ("hn", h), ("cn", c)):
            bound = fp32_tolerance(a["x"].shape[1], runner.runtime)  # tract's biased sigmoid grows with T
            assert scaled_error(got, a[name]).max() <= bound, (runner.runtime, case, name)


@pytest.mark.parametrize("chunk", [1, 7])
def test_streaming_equals_full_run(runner, chunk):
    rng = np.random.default_rng(chunk)
    x = rng.random((2, 30, 2), dtype=np.float32)
    y_full, (h_full, c_full) = runner.run(x)
    s = runner.stream(batch=2)
    for t in range(0, 30, chunk):
        y = s.step(x[:, t : t + chunk])
    h, c = s.state
    assert scaled_error(y, y_full).max() <= FP32_ABS
    assert scaled_error(h, h_full).max() <= FP32_ABS and scaled_error(c, c_full).max() <= FP32_ABS


def test_stream_step_shapes_reset_and_freeze(shipped_bundle):
    r = lstm_edge.load(shipped_bundle)
    s = r.stream()
    x = np.array([0.3, 1.0], np.float32)
    y1 = s.step(x)
    assert y1.shape == (1, 1)
    snap = s.freeze()
    y2 = s.step(x)
    s.unfreeze(snap)
    assert np.array_equal(s.step(x), y2)
    s.reset()
    assert np.array_equal(s.step(x), y1)
    assert s.step(x[None]).shape == (1, 1)


def test_gate_form_reference(shipped_bundle):
    a = next(iter(Bundle.open(shipped_bundle).golden().values()))
    r = lstm_edge.load(shipped_bundle, provider="torch", gates=True)
    y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
    assert scaled_error(c, a["cn"]).max() <= FP32_ABS and r.describe()["recurrent"] == "GateLSTM"


def test_describe(runner):
    d = runner.describe()
    assert {"runtime", "version", "device", "precision", "threads"} <= set(d)


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="a CUDA provider is present here")
def test_cuda_requested_without_cuda_exits_2(shipped_bundle, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 5, 2), np.float32))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_edge.cli",
            "run",
            str(shipped_bundle),
            "--provider",
            "cuda",
            "--input",
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "CUDA requested but unavailable" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.cuda
@pytest.mark.skipif(cuda_unavailable_reason() is not None, reason=f"no CUDA EP: {cuda_unavailable_reason()}")
def test_cuda_matches_golden(shipped_bundle):
    with lstm_edge.load(shipped_bundle, provider="cuda") as r:
        for a in Bundle.open(shipped_bundle).golden().values():
            y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
            assert scaled_error(c, a["cn"]).max() <= FP32_ABS


def test_bare_onnx_runs_by_declared_names(shipped_bundle, tmp_path):
    import onnx

    model = onnx.load(str(shipped_bundle / "model.onnx"))
    renames = {"x": "features", "h0": "state_h", "c0": "state_c"}
    for vi in model.graph.input:
        vi.name = renames.get(vi.name, vi.name)
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name in renames:
                n.input[i] = renames[name]
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    a = Bundle.open(shipped_bundle).golden()["b2_t16_random"]
    np.savez(tmp_path / "in.npz", features=a["x"], state_h=a["h0"], state_c=a["c0"])
    r = CliRunner().invoke(
        main, ["run", str(path), "--input", str(tmp_path / "in.npz"), "--output", str(tmp_path / "out.npz")]
    )
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "out.npz") as z:
        assert scaled_error(z["cn"], a["cn"]).max() <= FP32_ABS


def test_cli_run_formats_and_stream(shipped_bundle, tmp_path):
    x = np.random.default_rng(0).random((12, 2)).astype(np.float32)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="value,marker", comments="")
    (tmp_path / "x.json").write_text(json.dumps({"x": x.tolist()}))
    outs = []
    for args in (
        ["--input", str(tmp_path / "x.csv")],
        ["--input", str(tmp_path / "x.json")],
        ["--input", str(tmp_path / "x.csv"), "--stream", "--chunk", "5"],
        ["--input", str(tmp_path / "x.csv"), "--provider", "tract"],
    ):
        r = CliRunner().invoke(main, ["run", str(shipped_bundle), "--json", *args])
        assert r.exit_code == 0, r.output
        outs.append(np.array(json.loads(r.output)["y"]))
    for o in outs[1:]:
        assert scaled_error(o, outs[0]).max() <= FP32_ABS
    r = CliRunner().invoke(main, ["run", str(shipped_bundle), "--input", "-", "--json"], input=json.dumps(x.tolist()))
    assert r.exit_code == 0 and np.allclose(json.loads(r.output)["y"], outs[0], atol=1e-5)


@pytest.mark.parametrize(
    "x, needle",
    [
        (np.zeros((2, 3), np.float32)[None, None], "rank"),
        (np.zeros((1, 4, 3), np.float32), "features but the model takes 2"),
        (np.zeros((1, 4, 2), np.int32), "dtype"),
        (np.zeros((0, 4, 2), np.float32), "batch 0"),
        (np.zeros((1, 0, 2), np.float32), "seq 0"),
        (np.array([[[0.1, 0.2], [np.nan, 1.0]]], np.float32), "index (0, 1, 0)"),
    ],
)
def test_bad_inputs(shipped_bundle, x, needle):
    r = lstm_edge.load(shipped_bundle)
    with pytest.raises(LstmEdgeError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        r.run(x)


def test_nonfinite_allowed_on_request(shipped_bundle):
    r = lstm_edge.load(shipped_bundle, provider="torch", allow_nonfinite=True)  # ORT's clamped activations swallow NaN
    y, _ = r.run(np.array([[[0.1, 0.2], [np.nan, 1.0]]], np.float32))
    assert not np.isfinite(y).all()


def test_unknown_provider_and_variant(shipped_bundle):
    with pytest.raises(LstmEdgeError, match="unknown provider"):
        lstm_edge.load(shipped_bundle, provider="tpu")
    r = CliRunner().invoke(main, ["run", str(shipped_bundle), "--variant", "int4", "--input", "x.npy"])
    assert r.exit_code == 2 and "unknown variant" in r.output


BAD_SAMPLES = [
    (np.array([np.nan, 0.5]), "x_t holds nan at index (0, 0, 0)"),
    (np.array([[0.1, np.inf]], np.float32), "x_t holds inf at index (0, 0, 1)"),
    (np.array([0.5], np.float32), "x_t has 1 features but the model takes 2"),
    (np.zeros((1, 3, 1), np.float32), "x_t has 1 features but the model takes 2"),
    (np.array([1, 0]), "x_t has dtype int64"),
    (np.array([True, False]), "x_t has dtype bool"),
    (np.zeros((2, 2), np.float32), "x_t has batch 2, the stream has 1"),
    (np.zeros((1, 1, 1, 2), np.float32), "x_t has rank 4"),
]


@pytest.mark.parametrize("x_t, needle", BAD_SAMPLES, ids=[n for _, n in BAD_SAMPLES])
def test_stream_step_refuses_what_run_refuses(runner, x_t, needle):
    """Issue 17 item 8: step() applies run()'s checks on every runtime, and a refused step leaves the state alone."""
    s = runner.stream()
    good = np.array([0.3, 1.0], np.float32)
    s.step(good)
    before = s.freeze()
    with pytest.raises(LstmEdgeError, match=re.escape(needle)):
        s.step(x_t)
    for a, b in zip(s.state, before, strict=True):
        assert np.array_equal(a, b)
    if "batch" not in needle and "rank" not in needle:  # the kinds step shares with run(): run refuses them too
        with pytest.raises(LstmEdgeError, match=re.escape(needle.replace("x_t", "x").split(" at ")[0])):
            runner.run(np.asarray(x_t).reshape(1, -1, np.asarray(x_t).shape[-1]))


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda h: (np.full_like(h, np.nan), h), "h holds nan"),
        (lambda h: (h, h.astype(np.int32)), "c has dtype int32"),
        (lambda h: (h[:1], h), "h has shape (1, 1, 64), expected (2, 1, 64)"),
        (lambda h: (h,), "state must be a pair"),
    ],
)
def test_stream_state_setter_checks(runner, make, needle):
    s = runner.stream()
    h, _ = s.state
    with pytest.raises(LstmEdgeError, match=re.escape(needle)):
        s.state = make(h)


def test_stream_feed_equals_run(runner):
    x = np.random.default_rng(3).random((2, 9, 2), dtype=np.float32)
    y_full, (h_full, _) = runner.run(x)
    s = runner.stream(batch=2)
    assert scaled_error(s.feed(x, chunk=4), y_full).max() <= FP32_ABS
    assert scaled_error(s.state[0], h_full).max() <= FP32_ABS
    with pytest.raises(LstmEdgeError, match="chunk 0"):
        s.feed(x, chunk=0)


def test_cli_stream_bad_input_exits_2_one_line(shipped_bundle, tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[[0.1, 0.2], [np.nan, 1.0]]], np.float32))
    np.save(tmp_path / "narrow.npy", np.zeros((1, 4, 1), np.float32))
    np.save(tmp_path / "int.npy", np.zeros((1, 4, 2), np.int64))
    for name, needle in (("nan", "holds nan"), ("narrow", "1 features"), ("int", "dtype int64")):
        r = subprocess.run(
            [sys.executable, "-m", "lstm_edge.cli", "run", str(shipped_bundle), "--stream", "--chunk", "3"]
            + ["--input", str(tmp_path / f"{name}.npy")],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and needle in r.stderr, (name, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# A new process runs the CLI as a user does, then says which heavy modules its first result cost.
FRESH_RUN = """
import sys
from lstm_edge.cli import main
sys.argv = ["lstm-edge", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print(sorted(m for m in sys.modules if m in ("torch", "onnx", "lstm_edge.codegen", "lstm_edge.doctor",
                                             "lstm_edge.cli.bench_cmd", "lstm_edge.cli.verify_cmd")))
"""


def fresh_run(*args) -> list[str]:
    """The heavy modules a new `lstm-edge ARGS` process imported (it must succeed)."""
    done = subprocess.run([sys.executable, "-c", FRESH_RUN, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_cold_run_imports_only_what_it_runs(shipped_bundle, tmp_path):
    """Issue 25 item 4: `lstm-edge run` on ORT loads neither onnx (the graph's facts come from the cache its verified
    sha256 keys) nor torch, nor any other command's module."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 20, 2), dtype=np.float32))
    fresh_run("run", shipped_bundle, "--input", tmp_path / "x.npy")  # the first open of this content fills the cache
    assert fresh_run("run", shipped_bundle, "--input", tmp_path / "x.npy") == []


def test_zero_state_reused_never_leaks(shipped_bundle):
    """Issue 25 item 3: run(x) reuses one pair of zeros per batch size (fresh ones cost ORT a call's ~3%); what run
    returns is never that pair, so a caller writing into its h or c cannot change the next run's start."""
    r = lstm_edge.load(shipped_bundle, threads=1)
    x = np.random.default_rng(3).random((2, 9, 2), dtype=np.float32)
    y1, (h1, c1) = r.run(x)
    h1[...], c1[...] = 7.0, 7.0
    y2, (h2, c2) = r.run(x)
    want_y, (want_h, _) = r.run(x, (np.zeros_like(h2), np.zeros_like(c2)))
    assert np.array_equal(y2, want_y) and np.array_equal(h2, want_h) and h2 is not h1
    with pytest.raises(LstmEdgeError, match="rank"):
        r.run(x[0])  # the zero-state path checks x as before

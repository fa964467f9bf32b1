"""Children never run code from the working folder, and a child that fails or crashes natively is one line
(issue 17 items 1 and 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lstm_edge.bench import Target, cold_start
from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.validate import probe_ort_cpu
from lstm_edge.isolated import failure, run_python

CLI = Path(sys.executable).parent / "lstm-edge"  # the console script a user types, as pip installs it


def _planted(folder: Path, marker: Path) -> None:
    """Modules a child would import from its working folder, each leaving a marker if it ever runs."""
    for mod in ("json", "numpy", "lstm_edge", "onnxruntime", "time"):
        (folder / f"{mod}.py").write_text(f"open({str(marker)!r}, 'a').write({mod!r} + '\\n')\n")


def test_bench_never_imports_from_the_working_folder(small_bundle, tmp_path):
    if not CLI.is_file():
        pytest.skip(f"no console script at {CLI}")
    work, marker = tmp_path / "work", tmp_path / "marker"
    work.mkdir()
    _planted(work, marker)
    r = subprocess.run(
        [str(CLI), "bench", str(small_bundle), "--providers", "cpu", "--variants", "fp32", "--threads", "1"]
        + ["--quick", "--json", str(tmp_path / "bench.json")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert not marker.exists(), marker.read_text()
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    runs = json.loads((tmp_path / "bench.json").read_text())["runs"]
    assert {r["runtime"] for r in runs} == {"torch", "cpu"}
    assert all(r["cold"]["cold_start_s"] > 0 for r in runs)  # measured in the isolated child


def test_isolated_child_ignores_the_working_folder_and_pythonpath(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    _planted(tmp_path, marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    r = run_python("import json, time, numpy, sys; print(sys.path[0] if sys.path else '')")
    assert failure(r) is None and not marker.exists(), (r.stderr, marker.exists() and marker.read_text())


def test_a_failed_cold_start_is_an_error_not_a_row(small_bundle):
    """The child's own failure (here: a provider it cannot open) stops bench with one line, exit 2 in the CLI."""
    with pytest.raises(LstmEdgeError, match=r"cold-start process for tpu fp32 failed: exit status 1: .*tpu"):
        cold_start(Bundle.open(small_bundle), Target("tpu", "fp32"), 1)


def test_a_native_crash_in_a_child_is_named():
    r = run_python("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert failure(r) == "crashed (SIGSEGV)"


def test_ort_session_probe_turns_a_segfault_into_one_line(tmp_path):
    """Transpose → fp16 MatMul: the pattern that crashed ORT's CPU session creation (what quantize's fp16 head did).
    The probe creates the session in a child first; the parent gets LstmEdgeError, never SIGSEGV."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["xt", "W"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "crash",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 2])],
        initializer=[numpy_helper.from_array(np.ones((8, 2), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "crash.fp16.onnx"
    onnx.save(convert_float_to_float16(model, keep_io_types=True), str(path))
    try:
        probe_ort_cpu(path, "the test graph")
    except LstmEdgeError as e:
        assert "crashed (SIGSEGV)" in str(e) and "the test graph" in str(e) and "\n" not in str(e)
    else:
        pytest.skip(f"onnxruntime {ort.__version__} no longer crashes on Transpose → fp16 MatMul")
    # A graph ORT refuses in Python is one line too (its first error line), not a traceback.
    path.write_bytes(b"not an onnx file")
    with pytest.raises(LstmEdgeError, match="exit status 1"):
        probe_ort_cpu(path, "a broken file")

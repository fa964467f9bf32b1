"""Bad input, table-driven: one clear line on stderr, exit 2, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_edge.checkpoint import save_checkpoint
from tests.conftest import SHIPPED, make_model


def _files(tmp: Path) -> dict[str, str]:
    """Write the bad files once; return {name: path}."""
    good = tmp / "good.pt"
    save_checkpoint(make_model(), good)
    onnx_bytes = (SHIPPED / "model.onnx").read_bytes()
    files = {
        "empty.pt": b"",
        "truncated.pt": good.read_bytes()[:400],
        "random.pt": os.urandom(3000),
        "empty.onnx": b"",
        "truncated.onnx": onnx_bytes[:1000],
        "random.onnx": os.urandom(3000),
    }
    out = {}
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        out[name] = str(tmp / name)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp / "foreign.pt")
    out["foreign.pt"] = str(tmp / "foreign.pt")
    (tmp / "adir").mkdir()
    out["adir"] = str(tmp / "adir")
    for name, arr in {
        "rank.npy": np.zeros((2, 2, 2, 2), np.float32),
        "features.npy": np.zeros((1, 5, 7), np.float32),
        "dtype.npy": np.zeros((1, 5, 2), np.int64),
        "nan.npy": np.array([[[0.1, 0.2], [0.3, np.nan]]], np.float32),
        "inf.npy": np.array([[[np.inf, 0.2]]], np.float32),
        "seq0.npy": np.zeros((1, 0, 2), np.float32),
        "batch0.npy": np.zeros((0, 3, 2), np.float32),
        "ok.npy": np.zeros((1, 3, 2), np.float32),
    }.items():
        np.save(tmp / name, arr)
        out[name] = str(tmp / name)
    (tmp / "bad.json").write_text("{not json")
    out["bad.json"] = str(tmp / "bad.json")
    (tmp / "ragged.csv").write_text("1,2\n3\n")
    out["ragged.csv"] = str(tmp / "ragged.csv")
    return out


B = str(SHIPPED)
CASES = [
    # (argv with {file} placeholders, expected words in the message)
    (["export", "{empty.pt}"], "is empty"),
    (["export", "{truncated.pt}"], "not a readable PyTorch checkpoint"),
    (["export", "{random.pt}"], "not a readable PyTorch checkpoint"),
    (["export", "{foreign.pt}"], "no recurrent weights"),
    (["export", "{adir}"], "is a directory"),
    (["export", "{missing}"], "not found"),
    (["lint", "{empty.onnx}"], "is empty"),
    (["lint", "{truncated.onnx}"], "not a readable ONNX model"),
    (["lint", "{random.onnx}"], "not a readable ONNX model"),
    (["lint", "{adir}"], "is a directory"),
    (["run", "{random.onnx}", "--input", "{ok.npy}"], "not a readable ONNX model"),
    (["run", "{adir}", "--input", "{ok.npy}"], "not an lstm-edge bundle"),
    (["run", B, "--input", "{rank.npy}"], "rank"),
    (["run", B, "--input", "{features.npy}"], "7 features but the model takes 2"),
    (["run", B, "--input", "{dtype.npy}"], "dtype int64"),
    (["run", B, "--input", "{nan.npy}"], "x holds nan at index (0, 1, 1)"),
    (["run", B, "--input", "{inf.npy}"], "x holds inf at index (0, 0, 0)"),
    (["run", B, "--input", "{seq0.npy}"], "seq 0"),
    (["run", B, "--input", "{batch0.npy}"], "batch 0"),
    (["run", B, "--input", "{bad.json}"], "not valid JSON"),
    (["run", B, "--input", "{ragged.csv}"], "numeric columns"),
    (["run", B, "--input", "{adir}"], "is a directory"),
    (["run", B, "--input", "{ok.npy}", "--provider", "tpu"], "unknown provider"),
    (["run", B, "--input", "{ok.npy}", "--variant", "int4"], "unknown variant"),
    (["run", B, "--input", "{ok.npy}", "--provider", "cuda"], "CUDA requested but unavailable"),
    (["run", B, "--input", "{ok.npy}", "--output", "/proc/lstm-edge-out/y.npy"], "cannot create the folder"),
    (["export", str(SHIPPED / "model.pt"), "--out", "/proc/lstm-edge-bundle"], "not writable"),
    (["train", "--task", "weather", "--out", "{tmp}/m.pt"], "unknown task"),
    (["train", "--epochs", "0", "--out", "{tmp}/m.pt"], "--epochs must be ≥ 1"),
    (["train", "--int8-aware-epochs", "-1", "--out", "{tmp}/m.pt"], "--int8-aware-epochs must be ≥ 0"),
    (["quantize", "{adir}"], "not an lstm-edge bundle"),
    (["verify", B, "--variants", "int4"], "no 'int4' variant"),
    (["bench", B, "--rate", "0"], "--rate"),
    (["bundle", B, "--target", "node", "--variant", "fp16", "--out", "{tmp}/embed"], "fp32 or int8"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    return tmp, _files(tmp)


@pytest.mark.parametrize("argv, needle", CASES, ids=[" ".join(c[0][:2]) + f" {i}" for i, c in enumerate(CASES)])
def test_bad_input(files, argv, needle):
    tmp, f = files
    subs = {**{k: v for k, v in f.items()}, "missing": str(tmp / "missing.pt"), "tmp": str(tmp)}
    args = []
    for a in argv:
        for key, value in subs.items():
            a = a.replace("{" + key + "}", value)
        args.append(a)
    before = sorted(p.name for p in tmp.iterdir())
    r = subprocess.run([sys.executable, "-m", "lstm_edge.cli", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert " — " in lines[0]  # the problem, then the fix
    assert "Traceback" not in r.stderr + r.stdout
    assert sorted(p.name for p in tmp.iterdir()) == before  # nothing half-written


def test_full_disk_leaves_no_temp_file(tmp_path, monkeypatch):
    import errno

    from lstm_edge.atomic import atomic_write_bytes
    from lstm_edge.errors import LstmEdgeError

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(LstmEdgeError, match="No space left on device"):
        atomic_write_bytes(tmp_path / "out.npy", b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    """A checkpoint whose unpickling would create a file: weights_only refuses it, the file never appears."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "lstm-edge/checkpoint", "config": Exploit()}, path)
    r = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", "export", str(path), "--out", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "pickled Python objects" in r.stderr and "--trust-pickle" in r.stderr
    assert not marker.exists() and not (tmp_path / "b").exists()
    # A plain pickle (not a torch zip) is refused before anything is unpickled, too.
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(Exploit()))
    r = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", "export", str(tmp_path / "raw.pt")], capture_output=True, text=True
    )
    assert r.returncode == 2 and not marker.exists()


def test_trust_pickle_accepts_a_pickled_model_with_a_warning(tmp_path):
    model = make_model()
    torch.save(model, tmp_path / "whole.pt")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_edge.cli",
            "export",
            str(tmp_path / "whole.pt"),
            "--trust-pickle",
            "--out",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "warning: --trust-pickle" in r.stderr and (tmp_path / "b" / "model.onnx").is_file()


def test_external_data_outside_folder_is_refused(tmp_path):
    import onnx

    from lstm_edge.onnx_io import load_onnx_checked

    model = onnx.load(str(SHIPPED / "model.onnx"))
    t = next(t for t in model.graph.initializer if t.name == "W0")
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "64")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp_path / "evil.onnx"))
    from lstm_edge.errors import LstmEdgeError

    with pytest.raises(LstmEdgeError, match="outside the model's folder"):
        load_onnx_checked(tmp_path / "evil.onnx")
    r = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", "run", str(tmp_path / "evil.onnx"), "--input", "-"],
        input=json.dumps([[0.1, 0.2]]),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "outside the model's folder" in r.stderr


def test_manifest_hash_mismatch_is_refused_unless_asked(tmp_path):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(SHIPPED, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"]["fp32"]["sha256"] = "0" * 64  # as if model.onnx had been swapped after export
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.float32))
    base = [sys.executable, "-m", "lstm_edge.cli", "run", str(bundle), "--input", str(tmp_path / "x.npy")]
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode == 1 and "does not match its sha256" in r.stderr  # an integrity failure: exit 1
    r = subprocess.run([*base, "--no-verify-hash"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

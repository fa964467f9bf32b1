"""Issue 24, item 7: the adversarial findings of that pass, each one line, exit 2, nothing read whole or written.

"Huge" inputs are lying headers (ONNX external-data fields, zip directories): nothing here writes more than a few MB.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from tests.conftest import SHIPPED
from tests.test_foreign_onnx import lstm_node_model

CLI = [sys.executable, "-m", "lstm_edge.cli"]


def _cli(args, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _one_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed with exit 2 and exactly one `error: problem — fix` line on stderr holding every needle."""
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---- import: external data checked against its file before onnx reads a byte -----------------------------------
def _external(tmp: Path, kind: str) -> Path:
    """A foreign one-LSTM ONNX whose W lives in external data w.bin, made bad as `kind` says."""
    m, _ = lstm_node_model()
    t = next(t for t in m.graph.initializer if t.name == "W")
    raw, offset, length = t.raw_data, 0, len(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    if kind == "fifo":
        os.mkfifo(tmp / "w.bin")
    else:
        (tmp / "w.bin").write_bytes(raw)
    if kind == "offset 2**62":
        offset = 2**62
    if kind == "length 2**62":
        length = 2**62
    if kind == "2**80 elements":
        del t.dims[:]
        t.dims.extend([2**40, 2**40])
    for key, value in (("location", "w.bin"), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = key, value
    onnx.save(m, str(tmp / "m.onnx"))
    return tmp / "m.onnx"


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("fifo", "FIFO"),
        ("offset 2**62", "4611686018427387904"),
        ("length 2**62", "4611686018427387904"),
        ("2**80 elements", "[1099511627776, 1099511627776]"),
    ],
)
def test_import_external_data_checked_first(tmp_path, kind, needle):
    model = _external(tmp_path, kind)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.float32))
    before = _files(tmp_path)
    r = _cli(["import", model, "--out", tmp_path / "out"], timeout=60)
    _one_line(r, "tensor 'W'", "w.bin", needle)
    # the same check guards every reader of the file: run on the bare ONNX
    _one_line(_cli(["run", model, "--input", tmp_path / "x.npy"], timeout=60), "tensor 'W'", needle)
    assert _files(tmp_path) == before


def test_import_reads_good_external_data(tmp_path):
    """A well-formed external-data model imports (its data read from the model's folder, not the working one)."""
    model = _external(tmp_path, "good")
    r = _cli(["import", model, "--out", tmp_path / "out"], cwd=SHIPPED.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "model.onnx").is_file()


# ---- score: what --input is, checked before pyarrow or a blocking read ------------------------------------------
def _parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [0, 1], "x": [[[0.1, 0.2]] * 3] * 2}), str(path))


def _score_input(tmp: Path, kind: str) -> Path:
    data = tmp / "data"
    data.mkdir()
    if kind == "fifo file":
        os.mkfifo(tmp / "x.npy")
        return tmp / "x.npy"
    _parquet(data / "a.parquet")
    if kind == "not Parquet":
        (data / "notes.txt").write_text("hello\n")
    elif kind == "symlink out":
        (tmp / "secret.txt").write_text("not yours\n")
        (data / "b.parquet").symlink_to(tmp / "secret.txt")
    elif kind == "fifo in folder":
        os.mkfifo(data / "c.parquet")
    return data


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("not Parquet", "notes.txt is not a Parquet file"),
        ("symlink out", "b.parquet is a symlink leading out of"),
        ("fifo file", "FIFO"),
        ("fifo in folder", "c.parquet is a FIFO"),
    ],
)
def test_score_input_checked_first(tmp_path, kind, needle):
    src = _score_input(tmp_path, kind)
    before = _files(tmp_path)
    r = _cli(["score", SHIPPED, "--input", src, "--output", tmp_path / "pred.parquet"], timeout=60)
    _one_line(r, needle)
    assert _files(tmp_path) == before


@pytest.fixture(scope="module")
def token_bundle(tmp_path_factory) -> Path:
    from lstm_edge.export import export_bundle
    from tests.test_forms import Sentiment

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tokens") / "sentiment"
    export_bundle(Sentiment(), out)
    return out


def test_score_token_ids(token_bundle, tmp_path):
    """An Embedding bundle scores int64 ids [N, T] (.npy and Parquet int lists), as `run` takes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import lstm_edge

    ids = np.random.default_rng(0).integers(0, 50, (5, 7)).astype(np.int64)
    np.save(tmp_path / "ids.npy", ids)
    pq.write_table(pa.table({"id": list(range(5)), "x": ids.tolist()}), str(tmp_path / "ids.parquet"))
    with lstm_edge.load(token_bundle, provider="cpu") as runner:
        want, _ = runner.run(ids)
    for src in ("ids.npy", "ids.parquet"):
        out = tmp_path / f"{src}.pred.parquet"
        r = _cli(["score", token_bundle, "--input", tmp_path / src, "--output", out, "--json"])
        assert r.returncode == 0, r.stderr[-2000:]
        got = np.array(pq.read_table(str(out)).column("y").to_pylist(), np.float32)
        np.testing.assert_allclose(got, want, atol=1e-6)
    # and float x on that bundle, or ids on a float one, is one line naming what the model takes
    _one_line(_cli(["score", SHIPPED, "--input", tmp_path / "ids.npy", "--output", tmp_path / "p.parquet"]), "floats")


# ---- run --variant int8 on a malformed R_zero_point ---------------------------------------------------------------
def test_run_int8_malformed_zero_point(tmp_path):
    b = tmp_path / "b"
    shutil.copytree(SHIPPED, b, ignore=shutil.ignore_patterns("*.png", "*.md"))
    m = onnx.load(str(b / "model.int8.onnx"))
    t = next(t for t in m.graph.initializer if t.name == "R0_zero_point")
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t)[:, :128], "R0_zero_point"))
    onnx.save(m, str(b / "model.int8.onnx"))
    manifest = json.loads((b / "manifest.json").read_text())
    data = (b / "model.int8.onnx").read_bytes()
    manifest["artifacts"]["int8"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (b / "manifest.json").write_text(json.dumps(manifest))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.float32))
    r = _cli(["run", b, "--variant", "int8", "--input", tmp_path / "x.npy"])
    _one_line(r, "model.int8.onnx (variant int8)", "R_zero_point")
    assert r.stdout == ""


# ---- .pt zips: sizes from the zip directory first ----------------------------------------------------------------
BOMB = 5 * 2**29  # 2.5 GiB of zeros inflated from ~2.6 MB
BOMB_CRC = 0x4B667A2E  # zlib.crc32 of BOMB zero bytes: the member is a true one, CRC and sizes right


def _write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """(name, data, method, crc, inflated size) written as a plain zip, sizes as given."""
    out, central = b"", b""
    for name, data, method, crc, usize in members:
        nb = name.encode()
        out_at = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), usize, len(nb), 0) + nb
        out += data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0,
            crc,
            len(data),
            usize,
            len(nb),
            0,
            0,
            0,
            0,
            0,
            out_at,
        )
        central += nb
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(out + central + end)


def _bomb_pt(path: Path) -> None:
    """torch.save of a small state_dict whose first storage is replaced by 2.5 GiB of deflated zeros."""
    buf = io.BytesIO()
    torch.save({"lstm.weight_hh_l0": torch.zeros(32, 8), "lstm.weight_ih_l0": torch.zeros(32, 2)}, buf)
    zero = bytes(1 << 24)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    bomb = block * (BOMB >> 24) + c.flush()
    members = []
    with zipfile.ZipFile(buf) as z:
        for i in z.infolist():
            d = z.read(i)
            if i.filename.endswith("data/0"):
                members.append((i.filename, bomb, zipfile.ZIP_DEFLATED, BOMB_CRC, BOMB))
            else:
                members.append((i.filename, d, zipfile.ZIP_STORED, zlib.crc32(d), len(d)))
    _write_zip(path, members)
    assert path.stat().st_size < 4 * 2**20


def _version_64(path: Path) -> None:
    """A zip whose central directory says it needs zip version 6.4 (zipfile raises NotImplementedError)."""
    buf = io.BytesIO()
    torch.save({"lstm.weight_hh_l0": torch.zeros(32, 8)}, buf)
    data = bytearray(buf.getvalue())
    at = data.rfind(b"PK\x01\x02")
    data[at + 6 : at + 8] = (64).to_bytes(2, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "build, needles",
    [(_bomb_pt, ("archive/data/0", "2684354560", "not inflated")), (_version_64, ("zip file version 6.4",))],
    ids=["zip bomb", "zip version 6.4"],
)
def test_pt_zip_checked_from_its_directory(tmp_path, build, needles):
    build(tmp_path / "m.pt")
    before = _files(tmp_path)
    t0 = time.perf_counter()
    r = _cli(["export", tmp_path / "m.pt", "--out", tmp_path / "out"])
    _one_line(r, *needles)
    assert time.perf_counter() - t0 < 60 and _files(tmp_path) == before


def test_zip_version_64_everywhere_a_zip_is_read(tmp_path):
    """The fuzz finding's kind: every zip reader maps zipfile's NotImplementedError to its one line."""
    from lstm_edge.fuzzing import check_model_file

    _version_64(tmp_path / "x.npz")
    check_model_file((tmp_path / "x.npz").read_bytes(), tmp_path)  # raises nothing but LstmEdgeError (swallowed)
    _one_line(_cli(["run", SHIPPED, "--input", tmp_path / "x.npz"]), "zip file version 6.4")
    r = _cli(["score", SHIPPED, "--input", tmp_path / "x.npz", "--output", tmp_path / "p.parquet"])
    _one_line(r, "zip file version 6.4")


# ---- NaN weights: the model's problem, named -------------------------------------------------------------------
def test_nan_weight_named_not_blamed_on_the_exporter(tmp_path):
    torch.manual_seed(0)
    sd = torch.nn.LSTM(2, 8, batch_first=True).state_dict()
    sd = {f"lstm.{k}": v for k, v in sd.items()}
    sd["lstm.weight_hh_l0"][0, 0] = float("nan")
    sd["lstm.weight_hh_l0"][1, 1] = float("inf")
    torch.save(sd, tmp_path / "m.pt")
    line = _one_line(_cli(["export", tmp_path / "m.pt", "--out", tmp_path / "out"]), "lstm.weight_hh_l0")
    assert "1 NaN and 1 ±Inf" in line and "report this" not in line
    assert not (tmp_path / "out").exists()
    m, _ = lstm_node_model()
    t = next(t for t in m.graph.initializer if t.name == "R")
    a = numpy_helper.to_array(t).copy()
    a[0, 0, 0] = np.nan
    t.CopyFrom(numpy_helper.from_array(a, "R"))
    onnx.save(m, str(tmp_path / "nan.onnx"))
    _one_line(_cli(["import", tmp_path / "nan.onnx", "--out", tmp_path / "imp"]), "'R'", "1 NaN")
    assert not (tmp_path / "imp").exists()


# ---- killed score runs leave nothing behind for long ---------------------------------------------------------
def _score_then(tmp: Path, sig: int) -> subprocess.Popen:
    """Start a score of 20,000 sequences, wait for its staged temp file, then send `sig`."""
    np.save(tmp / "big.npy", np.zeros((20000, 100, 2), np.float32))
    p = subprocess.Popen(
        [*CLI, "score", str(SHIPPED), "--input", str(tmp / "big.npy"), "--output", str(tmp / "pred.parquet")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    while not list(tmp.glob(".pred.parquet.tmp-*")) and time.monotonic() - t0 < 90 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(sig)
    p.wait(timeout=60)
    return p


def test_killed_score_temp_cleaned_by_the_next_run(tmp_path):
    p = _score_then(tmp_path, signal.SIGKILL)
    assert p.returncode == -signal.SIGKILL and len(list(tmp_path.glob(".pred.parquet.tmp-*"))) == 1
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 2), np.float32))
    r = _cli(["score", SHIPPED, "--input", tmp_path / "x.npy", "--output", tmp_path / "pred.parquet"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert list(tmp_path.glob(".pred.parquet.tmp-*")) == []


def test_terminated_score_cleans_up(tmp_path):
    p = _score_then(tmp_path, signal.SIGTERM)
    assert p.returncode == 128 + signal.SIGTERM, p.stderr.read()[-2000:]
    assert list(tmp_path.glob(".pred.parquet.tmp-*")) == [] and not (tmp_path / "pred.parquet").exists()


# ---- a full disk names the destination and its free space ---------------------------------------------------
@pytest.fixture()
def tiny_tmpfs(tmp_path):
    """A real 100 KiB tmpfs (root only; skipped where mount is not permitted)."""
    where = tmp_path / "tiny"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); test_disk_full_line covers the mapping")
    yield where
    subprocess.run(["umount", str(where)], check=False)


def test_full_disk_names_the_destination(tiny_tmpfs):
    r = _cli(["bundle", SHIPPED, "--target", "python", "--out", tiny_tmpfs / "embed"])
    line = _one_line(r, "No space left on device", str(tiny_tmpfs / "embed"), "MiB free")
    assert str(SHIPPED) not in line  # the source copied from is not the problem
    assert list(tiny_tmpfs.iterdir()) == []


def test_disk_full_line(tmp_path):
    """shutil's copies raise ENOSPC with filename = source and filename2 = destination: the line names the latter."""
    from lstm_edge.cli.common import last_resort

    dst = tmp_path / ".embed.tmp-123-abcd" / "model.onnx"
    e = OSError(errno.ENOSPC, "No space left on device", str(SHIPPED / "model.onnx"), None, str(dst))
    err = last_resort(e)
    assert str(tmp_path / "embed" / "model.onnx") in err.problem and "MiB free" in err.problem
    assert str(SHIPPED) not in str(err) and "free disk space" in err.fix

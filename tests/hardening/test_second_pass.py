"""Hardening, second pass (issue 17): each input below was a traceback (or a silent wrong answer) once.

Every row: one line on stderr naming the problem and the fix, exit 2, no traceback, nothing written or changed.
"Huge" inputs are sparse files or lying headers: nothing here allocates or hashes more than a few MB.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SHIPPED

CLI = [sys.executable, "-m", "lstm_edge.cli"]

# sha256 of 2**31 and 2**31 - 4096 zero bytes (`head -c 2147483648 /dev/zero | sha256sum`): the digests a sparse
# model of that size really has, so the manifest entry "passes its hash" and only the size can refuse it.
ZEROS_SHA256 = {
    2**31: "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51",
    2**31 - 4096: "e824c16f16a2ffa5ce0a7f9f9f08f8bcbf28515b0057560dff5703df93934026",
}


# ---- building the bad inputs ----------------------------------------------------------------------------------
def _bundle(tmp: Path) -> Path:
    b = tmp / "b"
    shutil.copytree(SHIPPED, b, ignore=shutil.ignore_patterns("*.png", "*.md"))
    return b


def _edit(b: Path, fn) -> None:
    m = json.loads((b / "manifest.json").read_text())
    fn(m)
    (b / "manifest.json").write_text(json.dumps(m))


def _resign(b: Path, key: str) -> None:
    """Record an artifact's current bytes and sha256, as if the manifest had been written for it."""
    path = b / json.loads((b / "manifest.json").read_text())["artifacts"][key]["path"]
    digest = ZEROS_SHA256.get(path.stat().st_size) or hashlib.sha256(path.read_bytes()).hexdigest()

    def fn(m):
        m["artifacts"][key].update(sha256=digest, bytes=path.stat().st_size)

    _edit(b, fn)


def _ok_npy(tmp: Path) -> str:
    np.save(tmp / "ok.npy", np.zeros((1, 3, 2), np.float32))
    return str(tmp / "ok.npy")


def _npy_header(shape: tuple, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _run_bundle(tmp: Path, fn) -> list[str]:
    b = _bundle(tmp)
    fn(b)
    return ["run", str(b), "--input", _ok_npy(tmp)]


def _config(**kw):
    return lambda b: _edit(b, lambda m: m["config"].update(kw))


def _entry(key, **kw):
    return lambda b: _edit(b, lambda m: m["artifacts"][key].update(kw))


def _nested_manifest(b: Path) -> None:
    (b / "manifest.json").write_text('{"format": "lstm-edge/bundle", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _long_version(b: Path) -> None:
    text = (b / "manifest.json").read_text().replace('"format_version": 1', '"format_version": ' + "9" * 5000, 1)
    (b / "manifest.json").write_text(text)


def _self_symlink(b: Path) -> None:
    (b / "model.onnx").unlink()
    (b / "model.onnx").symlink_to("model.onnx")


def _sparse_model(size: int):
    def fn(b: Path) -> None:
        with open(b / "model.onnx", "wb") as f:
            f.truncate(size)
        _resign(b, "fp32")

    return fn


def _huge_manifest(b: Path) -> None:
    text = (b / "manifest.json").read_bytes()
    with open(b / "manifest.json", "r+b") as f:
        f.truncate(2**30)  # valid JSON followed by a sparse GiB of NULs
        f.write(text)


def _bare_onnx(tmp: Path, edit) -> list[str]:
    import onnx

    m = onnx.load(str(SHIPPED / "model.onnx"))
    edit(m)
    onnx.save(m, str(tmp / "bare.onnx"))
    return ["run", str(tmp / "bare.onnx"), "--input", _ok_npy(tmp)]


def _fixed_seq(m) -> None:
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 10**12


def _huge_hidden(m) -> None:
    for vi in [*m.graph.input[1:], *m.graph.output[1:]]:
        vi.type.tensor_type.shape.dim[2].dim_value = 2**40


def _input_file(name: str, data: bytes | None = None, sparse: int = 0):
    def build(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_bytes(data or b"")
        if sparse:
            with open(path, "r+b") as f:
                f.truncate(sparse)
        return ["run", str(SHIPPED), "--input", str(path)]

    return build


def _zip_bomb(tmp: Path) -> list[str]:
    """x.npy of 1 GB zeros deflated to ~1 MB (one 16 MiB block, full-flushed, repeated), CRC and sizes true."""
    n = 2**30
    header = _npy_header((1, (n - 128) // 8, 2))
    header = header[:-1] + b" " * (128 - len(header)) + b"\n"
    zero = bytes(1 << 24)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header + zero[: (1 << 24) - 128]) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header + zero[: (1 << 24) - 128])
    for _ in range(n // (1 << 24) - 1):
        crc = zlib.crc32(zero, crc)
    data = head + block * (n // (1 << 24) - 1) + c.flush()
    name = b"x.npy"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), n, len(name), 0) + name
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), n, len(name), 0, 0, 0, 0, 0, 0
    )
    central += name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    (tmp / "bomb.npz").write_bytes(local + data + central + end)
    assert (tmp / "bomb.npz").stat().st_size < 2 * 2**20
    return ["run", str(SHIPPED), "--input", str(tmp / "bomb.npz")]


def _npz_h0_only(tmp: Path) -> list[str]:
    np.savez(tmp / "h0.npz", x=np.zeros((1, 3, 2), np.float32), h0=np.ones((2, 1, 64), np.float32))
    return ["run", str(SHIPPED), "--input", str(tmp / "h0.npz")]


def _stdin(doc: str):
    return lambda tmp: (["run", str(SHIPPED), "--input", "-"], doc)


def _checkpoint(tmp: Path, **changes) -> list[str]:
    payload = torch.load(SHIPPED / "model.pt", weights_only=True)
    for k, v in changes.items():
        if k == "nan":
            payload["state_dict"][v][0, 0] = float("nan")
        else:
            payload[k] = v
    torch.save(payload, tmp / "m.pt")
    return ["export", str(tmp / "m.pt"), "--out", str(tmp / "out")]


def _bundle_checkpoint(b: Path, **training_config) -> None:
    payload = torch.load(b / "model.pt", weights_only=True)
    training = payload.get("training", {})
    payload["training"] = {**training, "config": {**training.get("config", {}), **training_config}}
    if isinstance(training.get("task"), dict):  # the split record quantize reads (TaskSpec.recorded), where present
        payload["training"]["task"] = {**training["task"], **training_config}
    torch.save(payload, b / "model.pt")
    _resign(b, "checkpoint")


def _bundle_metrics(b: Path, **metrics) -> None:
    payload = torch.load(b / "model.pt", weights_only=True)
    payload["metrics"] = metrics
    torch.save(payload, b / "model.pt")
    _resign(b, "checkpoint")


def _external_symlink(b: Path) -> None:
    """model.onnx keeps W0 in external data, w0.bin, which is a symlink (to a file inside the bundle, even)."""
    import onnx

    m = onnx.load(str(b / "model.onnx"))
    t = next(t for t in m.graph.initializer if t.name == "W0")
    (b / "w0.real").write_bytes(t.raw_data)
    (b / "w0.bin").symlink_to("w0.real")
    n = len(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "w0.bin"), ("offset", "0"), ("length", str(n))):
        e = t.external_data.add()
        e.key, e.value = key, value
    onnx.save(m, str(b / "model.onnx"))
    _resign(b, "fp32")


def _golden_without_x(tmp: Path) -> list[str]:
    b = _bundle(tmp)
    with np.load(b / "golden.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.endswith("/x")}
    np.savez(b / "golden.npz", **arrays)
    _resign(b, "golden")
    return ["bundle", str(b), "--target", "python", "--out", str(tmp / "embed")]


def _cmd_bundle(tmp: Path, fn, *argv) -> list[str]:
    b = _bundle(tmp)
    fn(b)
    return [argv[0], str(b), *argv[1:]]


VERIFY_QUICK = ("verify", "--quick", "--providers", "cpu")
# (id, build(tmp) -> argv or (argv, stdin), words the one line must hold)
CASES = [
    ("manifest nested 100,000 deep", lambda t: _run_bundle(t, _nested_manifest), "nested too deeply"),
    ("NUL byte in an artifact path", lambda t: _run_bundle(t, _entry("fp32", path="model\x00.onnx")), "NUL byte"),
    ("5,000-character artifact path", lambda t: _run_bundle(t, _entry("fp32", path="a" * 5000)), "characters long"),
    ("5,000-digit format_version", lambda t: _run_bundle(t, _long_version), "manifest.json"),
    ("hidden_size 2**40", lambda t: _run_bundle(t, _config(hidden_size=2**40)), "hidden_size"),
    ("manifest sizes disagree with the ONNX", lambda t: _run_bundle(t, _config(hidden_size=32)), "disagrees"),
    ("report 'oops'", lambda t: _cmd_bundle(t, _entry("int8", report="oops"), *VERIFY_QUICK), "report"),
    ("deployable 'false' (a string)", lambda t: _cmd_bundle(t, _entry("int8", deployable="false"), *VERIFY_QUICK), "deployable"),
    ("bytes 'many' (a string)", lambda t: _run_bundle(t, _entry("fp32", bytes="many")), "bytes"),
    ("model.onnx symlinked to itself", lambda t: _run_bundle(t, _self_symlink), "model.onnx"),
    ("bare ONNX with a fixed 10^12 sequence", lambda t: _bare_onnx(t, _fixed_seq), "1000000000000"),
    ("bare ONNX with hidden size 2**40", lambda t: _bare_onnx(t, _huge_hidden), "1099511627776"),
    (".npy header (1e6, 1e6, 2), 16 bytes behind", _input_file("lie.npy", _npy_header((10**6, 10**6, 2)) + bytes(16)), "header"),
    ("zip-bomb .npz (1 MB -> 1 GB)", _zip_bomb, "x.npy"),
    ("x of shape (1, 10 000 000, 2)", _input_file("long.npy", _npy_header((1, 10**7, 2)), sparse=128 + 8 * 10**7), "memory"),
    ("2 GiB sparse model passing its hash", lambda t: _run_bundle(t, _sparse_model(2**31)), "bytes"),
    ("near-2 GiB model passing its hash", lambda t: _run_bundle(t, _sparse_model(2**31 - 4096)), "bytes"),
    ("1 GiB manifest.json", lambda t: _run_bundle(t, _huge_manifest), "manifest.json"),
    ("JSON input with h0 but no c0", _stdin(json.dumps({"x": [[0.1, 0.2]], "h0": [[[0.0] * 64]] * 2})), "or neither"),
    ("JSON input with a 10^400 integer", _stdin('{"x": [[1' + "0" * 400 + ", 0.5]]}"), "too large"),
    ("JSON input nested 100,000 deep", _stdin('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"), "nested too deeply"),
    (".npz with h0 and no c0", _npz_h0_only, "or neither"),
    ("checkpoint format_version '1'", lambda t: _checkpoint(t, format_version="1"), "format_version"),
    ("checkpoint format_version None", lambda t: _checkpoint(t, format_version=None), "format_version"),
    ("checkpoint metrics 'oops'", lambda t: _checkpoint(t, metrics="oops"), "metrics"),
    ("checkpoint training 5", lambda t: _checkpoint(t, training=5), "training"),
    ("NaN weights", lambda t: _checkpoint(t, nan="lstm.weight_ih_l0"), "lstm.weight_ih_l0"),
    ("golden case without x (bundle)", _golden_without_x, "golden"),
    ("run --threads -2", lambda t: ["run", str(SHIPPED), "--input", _ok_npy(t), "--threads", "-2"], "--threads"),
    ("bench --rate nan", lambda t: ["bench", str(SHIPPED), "--rate", "nan"], "--rate"),
    ("quantize --max-metric-drop nan", lambda t: _cmd_bundle(t, lambda b: None, "quantize", "--mode", "dynamic", "--max-metric-drop", "nan"), "--max-metric-drop"),
    ("quantize --calibration-samples 1e9", lambda t: _cmd_bundle(t, lambda b: None, "quantize", "--mode", "static", "--calibration-samples", "1000000000"), "--calibration-samples"),
    ("checkpoint seq_len 1e7 reaching quantize", lambda t: _cmd_bundle(t, lambda b: _bundle_checkpoint(b, seq_len=10**7), "quantize", "--mode", "dynamic"), "seq_len"),
    ("external-data symlink during quantize", lambda t: _cmd_bundle(t, _external_symlink, "quantize", "--mode", "dynamic"), "symlink"),
    ("checkpoint metrics.int8_aware 'oops' reaching quantize", lambda t: _cmd_bundle(t, lambda b: _bundle_metrics(b, int8_aware="oops"), "quantize", "--mode", "dynamic"), "int8_aware"),
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, tuple]:
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("build, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_line_exit_2(tmp_path, build, needle):
    built = build(tmp_path)
    args, stdin = built if isinstance(built, tuple) else (built, None)
    before = _snapshot(tmp_path)
    r = subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], r.stderr[-2000:]
    assert needle in lines[0], lines[0]
    assert len(lines[0]) < 600
    assert "Traceback" not in r.stderr + r.stdout
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


def _one_line(r, needle: str) -> str:
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


# ---- item 3: verify never reads outside the bundle ---------------------------------------------------------
def _outside(tmp: Path, how: str) -> tuple[Path, str]:
    """A bundle whose checkpoint entry names a file outside it, with that file's true sha256 and size recorded:
    were it read, it would pass. Returns (bundle, the digest verify must never print)."""
    secret = tmp / "secret.bin"
    secret.write_bytes(b"not yours " * 100)
    size, digest = secret.stat().st_size, hashlib.sha256(secret.read_bytes()).hexdigest()
    b = _bundle(tmp)
    if how == "absolute":
        path = str(secret)
    elif how == "dotdot":
        path = "../secret.bin"
    elif how == "symlink":
        (b / "link.pt").symlink_to(secret)
        path = "link.pt"
    else:  # huge: 64 GiB, sparse; hashing it would take minutes
        with open(tmp / "huge.bin", "wb") as f:
            f.truncate(64 * 2**30)
        path, size = str(tmp / "huge.bin"), 64 * 2**30
    _edit(b, lambda m: m["artifacts"]["checkpoint"].update(path=path, sha256=digest, bytes=size))
    return b, digest


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "huge"])
def test_verify_never_reads_outside_the_bundle(tmp_path, how):
    b, digest = _outside(tmp_path, how)
    r = subprocess.run([*CLI, *VERIFY_QUICK[:1], str(b), *VERIFY_QUICK[1:]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "outside the bundle (not read)" in r.stdout and "FAILED" in r.stdout, r.stdout
    assert digest[:12] not in r.stdout + r.stderr and "Traceback" not in r.stderr
    # Every other reader goes through the same check: run on the checkpoint (torch) is one line, exit 2.
    r = subprocess.run(
        [*CLI, "run", str(b), "--provider", "torch", "--input", "-"],
        input="[[0.1, 0.2]]",
        capture_output=True,
        text=True,
        timeout=60,
    )
    _one_line(r, "outside the bundle")


def test_locate_is_the_one_check(tmp_path):
    """Bundle.locate refuses by metadata alone; artifact() and verify's integrity rows both go through it."""
    from lstm_edge.bundle import Bundle
    from lstm_edge.errors import LstmEdgeError

    b, _ = _outside(tmp_path, "dotdot")
    bundle = Bundle.open(b)
    with pytest.raises(LstmEdgeError, match="outside the bundle"):
        bundle.artifact("checkpoint", verify_hash=False)
    assert bundle.locate("fp32") == (b / "model.onnx").resolve()
    _edit(b, lambda m: m["artifacts"]["fp32"].update(bytes=1))
    with pytest.raises(LstmEdgeError, match="manifest records 1"):
        Bundle.open(b).locate("fp32")


# ---- --debug adds the traceback, never changes the exit code --------------------------------------------------
def test_debug_keeps_exit_2(tmp_path):
    r = subprocess.run(
        [*CLI, "--debug", "run", str(SHIPPED), "--input", str(tmp_path / "missing.npy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error: input file not found")


# ---- importing onnxruntime raises OSError (a shared library that fails to load) --------------------------------
def test_onnxruntime_import_oserror(tmp_path):
    fake = tmp_path / "site" / "onnxruntime"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise OSError("libonnxruntime.so.1.32.0: cannot open shared object file: No such file or directory")\n'
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    r = subprocess.run([*CLI, "doctor"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "problem: ONNX Runtime is installed but cannot be imported (OSError: libonnxruntime" in r.stdout
    np.save(tmp_path / "ok.npy", np.zeros((1, 3, 2), np.float32))
    r = subprocess.run(
        [*CLI, "run", str(SHIPPED), "--input", str(tmp_path / "ok.npy")], capture_output=True, text=True, env=env
    )
    _one_line(r, "cannot be imported (OSError")


# ---- a full disk during export: one line, exit 2, nothing left ------------------------------------------------
def _invoke(args):
    from click.testing import CliRunner

    from lstm_edge.cli import main

    return CliRunner().invoke(main, args)


def test_full_disk_during_export_simulated(tmp_path, monkeypatch):
    """ENOSPC simulated: Path.write_bytes fails as a full disk does once model.onnx is being written."""
    import errno
    import pathlib

    real = pathlib.Path.write_bytes

    def full(self, data):
        if self.suffix == ".onnx":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    r = _invoke(["export", str(SHIPPED / "model.pt"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "free disk space" in lines[0], r.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def tiny_tmpfs(tmp_path):
    """A real 300 KiB tmpfs (root only; skipped where mount is not permitted)."""
    where = tmp_path / "tiny"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated test covers ENOSPC")
    yield where
    subprocess.run(["umount", str(where)], check=False)


def test_full_disk_during_export_real_tmpfs(tiny_tmpfs):
    r = subprocess.run(
        [*CLI, "export", str(SHIPPED / "model.pt"), "--out", str(tiny_tmpfs / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = _one_line(r, "No space left on device")
    assert "free disk space" in line
    assert list(tiny_tmpfs.iterdir()) == []  # the staging folder went with the failure


# ---- bench --quick --auto batch compares a point --quick measured ---------------------------------------------
def test_bench_quick_auto_batch(small_bundle):
    from lstm_edge.bench import BenchConfig, auto_choose, batch_key, bench

    cfg = BenchConfig(providers=("cpu",), variants=("fp32",), threads=("1",), cold_start=False, progress=False)
    report = bench(small_bundle, cfg.quick())
    assert batch_key(report) == "B8xT100"
    a = auto_choose(small_bundle, report, "batch")
    assert a["point"] == "B8xT100" and a["parity"] == "pass" and a["runtime"] in ("cpu", "torch")


def test_full_disk_during_quantize_simulated(tmp_path, monkeypatch):
    """ENOSPC simulated while quantize copies its variant into the staged bundle: one line, exit 2, bundle as it was."""
    import errno
    import pathlib

    b = _bundle(tmp_path)
    _edit(b, lambda m: m["artifacts"].pop("int8"))
    (b / "model.int8.onnx").unlink()
    before = _snapshot(tmp_path)
    real = pathlib.Path.write_bytes

    def full(self, data):
        if self.name == "model.int8.onnx":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    r = _invoke(["quantize", str(b), "--mode", "dynamic", "--json"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], r.output
    assert _snapshot(tmp_path) == before

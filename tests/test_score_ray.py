"""`lstm-edge score --engine ray`: same numbers as the local engine, a killed actor loses and duplicates nothing,
the bundle travels by content, and Ray is gone after the tests.

One local Ray instance (num_cpus=2) serves the module; starting it takes ~5 s here, each scoring run 5–25 s on this
shared 2-core machine (measured under a load average of ~8).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_edge.errors import LstmEdgeError
from lstm_edge.score import BundlePayload, ScoreConfig, import_ray, score

ray = pytest.importorskip("ray", reason="Ray is the lstm-edge[ray] extra (make test installs it)")


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below pid, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        try:
            out.append((p, (Path("/proc") / str(p) / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue
        todo += children.get(p, [])
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 20
    while (left := [c for c in _descendants(os.getpid()) if "ray" in c[1]]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes left after shutdown: {left}"


def _cfg(**kw) -> ScoreConfig:
    return ScoreConfig(**{"progress": False, "threads": 1, **kw})


def _table(path) -> pa.Table:
    return pq.read_table(path).sort_by("id")


def test_same_numbers_as_local_int8_npy(local_ray, shipped_bundle, tmp_path):
    """int8 is the strict case: its dynamic input scale is per batch, so equal numbers need equal batches."""
    x = np.random.default_rng(0).random((300, 100, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cfg = {"variant": "int8", "batch_size": 32, "outputs": ("y", "hn", "cn")}
    local = score(shipped_bundle, tmp_path / "x.npy", tmp_path / "local.parquet", _cfg(**cfg))
    remote = score(shipped_bundle, tmp_path / "x.npy", tmp_path / "ray", _cfg(engine="ray", workers=2, **cfg))
    assert remote.rows == local.rows == 300
    assert _table(remote.output).equals(_table(local.output))  # bit-identical, every column


def test_same_numbers_as_local_parquet_variable_lengths(local_ray, small_bundle, tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "data"
    folder.mkdir()
    for part in range(3):  # 3 files × 2 row groups: 6 work units
        ids = [f"p{part}-{i}" for i in range(40)]
        xs = [rng.normal(size=(int(rng.integers(2, 9)), 3)).tolist() for _ in ids]
        pq.write_table(pa.table({"id": ids, "x": xs}), folder / f"{part}.parquet", row_group_size=20)
    local = score(small_bundle, folder, tmp_path / "local.parquet", _cfg(batch_size=8))
    remote = score(small_bundle, folder, tmp_path / "ray", _cfg(engine="ray", workers=2, batch_size=8))
    assert _table(remote.output).equals(_table(local.output))
    # Scoring again into the same folder replaces it (it is marked as lstm-edge's); a user's folder is refused.
    again = score(small_bundle, folder, tmp_path / "ray", _cfg(engine="ray", workers=1, batch_size=8))
    assert _table(again.output).equals(_table(local.output))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep")
    with pytest.raises(LstmEdgeError, match="not an lstm-edge"):
        score(small_bundle, folder, mine, _cfg(engine="ray", workers=1, batch_size=8))
    assert (mine / "thesis.txt").read_text() == "keep"


def test_killed_actor_every_id_exactly_once(local_ray, shipped_bundle, tmp_path):
    """SIGKILL one actor while it is scoring (its process title ends in .submit); Ray restarts it and retries."""
    n = 2000
    x = np.random.default_rng(2).random((n, 100, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result, error = {}, []

    def run():
        try:
            result["r"] = score(shipped_bundle, tmp_path / "x.npy", tmp_path / "ray", _cfg(engine="ray", workers=2,
                                batch_size=20))  # fmt: skip
        except BaseException as e:  # reported in the main thread
            error.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and worker.is_alive() and time.monotonic() < deadline:
        busy = [p for p, cmd in _descendants(os.getpid()) if "ScoreActor" in cmd and ".submit" in cmd]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.05)
    worker.join(300)
    assert not error, error
    assert killed is not None, "the run ended before an actor could be killed mid-task"
    ids = pq.read_table(result["r"].output).column("id").to_numpy()
    assert len(ids) == n and np.array_equal(np.sort(ids), np.arange(n))  # every id once: none lost, none twice
    local = score(shipped_bundle, tmp_path / "x.npy", tmp_path / "local.parquet", _cfg(batch_size=20))
    assert _table(result["r"].output).equals(_table(local.output))


def test_bad_row_on_an_actor_is_one_clear_error(local_ray, small_bundle, tmp_path):
    x = np.random.default_rng(3).normal(size=(30, 5, 3)).astype(np.float32)
    x[17, 2, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(LstmEdgeError, match="x holds inf") as e:
        score(small_bundle, tmp_path / "x.npy", tmp_path / "out", _cfg(engine="ray", workers=1, batch_size=10))
    assert "Traceback" not in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_bundle_travels_by_content(shipped_bundle, tmp_path):
    payload = BundlePayload.from_bundle(shipped_bundle, "fp32")
    assert set(payload.files) == {"manifest.json", "model.onnx", "golden.npz"}  # golden: each actor self-checks
    root = payload.materialize(tmp_path / "a")
    assert (root / "model.onnx").read_bytes() == (shipped_bundle / "model.onnx").read_bytes()
    payload.files["model.onnx"] = payload.files["model.onnx"][:-1] + b"\0"  # one byte changed on the way
    with pytest.raises(LstmEdgeError, match="arrived with a different sha256"):
        payload.materialize(tmp_path / "b")


def test_without_ray_one_line_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    with pytest.raises(LstmEdgeError, match=r"pip install 'lstm-edge\[ray\]'"):
        import_ray()


def test_tampered_bundle_is_refused_by_every_actor(local_ray, bundle_copy, tmp_path):
    """Each actor opens its runner with the self-check (issue 24): a bundle whose model was changed and re-signed is
    one ParityError line (exit 1 in the CLI), nothing written."""
    from lstm_edge.errors import ParityError
    from tests.test_self_check import tamper

    tamper(bundle_copy)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (20, 10, 2)).astype(np.float32))
    with pytest.raises(ParityError, match="self-check failed: onnxruntime .* fp32 variant of adding") as e:
        score(bundle_copy, tmp_path / "x.npy", tmp_path / "out", _cfg(engine="ray", workers=1, batch_size=10))
    assert "\n" not in str(e.value) and "--no-self-check" in str(e.value)
    assert not (tmp_path / "out").exists()

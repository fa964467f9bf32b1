"""SIGKILL mid-write leaves the previous bundle intact; long streaming does not grow memory; threads share a runner."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import lstm_edge
from tests.conftest import SHIPPED

# The child does a real write, made slow at one point (after some files exist in the staging folder) so the
# parent can kill it mid-write.
KILL_DURING = {
    "export": """
        import time, lstm_edge.export.exporter as ex
        real = ex.write_manifest
        def slow(root, manifest):
            print("STAGED", flush=True); time.sleep(60); real(root, manifest)
        ex.write_manifest = slow
        ex.export_bundle(sys.argv[1], sys.argv[2], ex.ExportConfig(force=True))
    """,
    "quantize": """
        import time, lstm_edge.export.quantize as q, lstm_edge.export.quant_bundle as qb
        real = qb.write_manifest
        def slow(root, manifest):
            print("STAGED", flush=True); time.sleep(60); real(root, manifest)
        qb.write_manifest = slow
        q.quantize_bundle(sys.argv[2], q.QuantizeConfig(mode="dynamic", progress=False))
    """,
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("stage", ["export", "quantize"])
def test_sigkill_mid_write_leaves_previous_bundle(tmp_path, stage):
    bundle = tmp_path / "adding"
    shutil.copytree(SHIPPED, bundle)
    before = _snapshot(bundle)
    code = "import sys\n" + textwrap.dedent(KILL_DURING[stage])
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(SHIPPED / "model.pt"), str(bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()  # blocks until the staging folder holds the new files
        assert line.strip() == "STAGED", child.stderr.read()
        staged = list(tmp_path.glob(".adding.tmp-*"))
        assert staged and any(staged[0].iterdir())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _snapshot(bundle) == before  # byte-identical
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["adding"]
    # The dead writer's staging folder is cleared by the next write.
    from lstm_edge.atomic import staged_dir

    with staged_dir(tmp_path / "adding", copy_existing=True):
        pass
    assert not list(tmp_path.glob(".adding.tmp-*"))
    assert _snapshot(bundle) == before


def _rss_kb() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))


def test_streaming_soak_does_not_grow_memory():
    """A shorter version of benchmarks/soak.py (100,000 steps there)."""
    stream = lstm_edge.load(SHIPPED, provider="cpu").stream()
    x = np.array([0.5, 0.0], np.float32)
    for _ in range(2000):
        stream.step(x)
    start = _rss_kb()
    for i in range(20_000):
        stream.step(x)
        if i % 1000 == 0:
            stream.reset()
    assert (_rss_kb() - start) / 1024 < 5.0


@pytest.mark.parametrize("provider", ["cpu", "openvino", "tract", "torch"])
def test_eight_threads_share_one_runner(provider):
    runner = lstm_edge.load(SHIPPED, provider=provider)
    rng = np.random.default_rng(0)
    inputs = [rng.random((int(rng.integers(1, 5)), int(rng.integers(1, 40)), 2), dtype=np.float32) for _ in range(64)]
    serial = [runner.run(x) for x in inputs]
    results: list = [None] * len(inputs)

    def work(k: int) -> None:
        for i in range(k, len(inputs), 8):
            results[i] = runner.run(inputs[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (y, (h, c)), (ys, (hs, cs)) in zip(results, serial, strict=True):
        assert np.array_equal(y, ys) and np.array_equal(h, hs) and np.array_equal(c, cs)


def test_streams_are_independent_across_threads():
    runner = lstm_edge.load(SHIPPED, provider="cpu")
    x = np.random.default_rng(1).random((50, 2), dtype=np.float32)
    ref = runner.stream()
    want = [ref.step(x[t]) for t in range(50)]
    got: dict[int, list] = {}

    def work(k: int) -> None:
        s = runner.stream()  # one stream per thread; they share the session
        got[k] = [s.step(x[t]) for t in range(50)]
        time.sleep(0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(8):
        assert all(np.array_equal(a, b) for a, b in zip(got[k], want, strict=True))

"""Embedding targets, checked by real runtimes: Python, onnxruntime-node, and onnxruntime-web in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_edge.cli import main
from lstm_edge.targets.web import WEB_FP32_DRIFT_PER_STEP
from lstm_edge.tolerances import fp32_tolerance
from tests.conftest import ROOT

NPM_DIR = ROOT / "tests" / "embed" / "npm"
ORT_WEB = NPM_DIR / "node_modules" / "onnxruntime-web" / "dist"
SCREENSHOTS = ROOT / "artifacts" / "test-screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _bundle(shipped_bundle, tmp_path, target, variant="fp32") -> Path:
    out = tmp_path / f"{target}-{variant}"
    args = ["bundle", str(shipped_bundle), "--target", target, "--variant", variant, "--out", str(out)]
    if target == "web":
        args += ["--ort-web", str(ORT_WEB)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return out


def test_python_target(shipped_bundle, tmp_path):
    out = _bundle(shipped_bundle, tmp_path, "python")
    index = (out / "golden" / "index.json").read_text()
    assert '"streaming": true' in index and (out / "README.md").is_file()
    r = subprocess.run([sys.executable, "example.py"], cwd=out, capture_output=True, text=True)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


def test_golden_bins_are_raw_little_endian(shipped_bundle, tmp_path):
    import json

    import numpy as np

    out = _bundle(shipped_bundle, tmp_path, "python")
    index = json.loads((out / "golden" / "index.json").read_text())
    case = index["cases"][1]
    x = np.fromfile(out / "golden" / case["arrays"]["x"]["file"], "<f4").reshape(case["arrays"]["x"]["shape"])
    from lstm_edge.bundle import Bundle

    assert np.array_equal(x, Bundle.open(shipped_bundle).golden()[case["name"]]["x"])


@functools.cache
def _node_reason() -> str | None:
    if not shutil.which("node") or not shutil.which("npm"):
        return "node/npm not installed"
    if not (NPM_DIR / "node_modules" / "onnxruntime-node").is_dir():
        return "onnxruntime-node not installed (make embed-deps could not reach npm)"
    return None


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_node_target(shipped_bundle, tmp_path, variant):
    if _node_reason():
        pytest.skip(_node_reason())
    out = _bundle(shipped_bundle, tmp_path, "node", variant)
    env = os.environ | {"ONNXRUNTIME_NODE_INSTALL": "skip"}
    r = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--silent"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["npm", "test", "--silent"], cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    max_error = float(re.search(r"max error ([0-9.e+-]+)", r.stdout).group(1))
    assert max_error <= (1e-5 if variant == "fp32" else 0.5)
    assert "stream (1 step per call)" in r.stdout


def test_node_check_fails_on_mismatch(shipped_bundle, tmp_path):
    if _node_reason():
        pytest.skip(_node_reason())
    import numpy as np

    out = _bundle(shipped_bundle, tmp_path, "node")
    (out / "node_modules").symlink_to(NPM_DIR / "node_modules")
    target = out / "golden" / "b1_t100_random.cn.bin"
    a = np.fromfile(target, "<f4")
    (a + 0.01).astype("<f4").tofile(target)
    r = subprocess.run(["node", "check.mjs"], cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "FAIL" in r.stdout


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_web_target_in_headless_chromium(shipped_bundle, tmp_path, variant):
    """The page passes within the web target's own bound (fp32: FP32_ABS + T × WEB_FP32_DRIFT_PER_STEP, measured by
    benchmarks/web_fp32_drift.py) and shows that bound, the case nearest it, what failed, and quantize's verdict."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium not installed (make embed-deps installs it with apt-get as root)")
    if not ORT_WEB.is_dir():
        pytest.skip("onnxruntime-web not installed (make embed-deps could not reach npm)")
    out = _bundle(shipped_bundle, tmp_path, "web", variant)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("ort")) == [
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
        "ort.wasm.min.js",
    ]
    handler = functools.partial(_Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # plain static server, no COOP/COEP
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=60000"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"web-{variant}.png"
        subprocess.run(
            [*common, "--window-size=1100,520", f"--screenshot={shot}", url], capture_output=True, timeout=180
        )
    finally:
        server.shutdown()
    assert '<body data-parity="pass"' in dom, dom[-2000:]  # the body's attribute, not the stylesheet's selector
    max_error = float(re.search(r'id="max-error">([^<]+)<', dom).group(1))
    bound = float(re.search(r'id="bound">([^<]+)<', dom).group(1))
    assert 0 < max_error <= bound and 'id="failing">none<' in dom
    assert re.search(r'id="worst">\w+ in b\d+_t\d+_\w+, ', dom), dom[-2000:]  # names the output and its case
    verdict = re.search(r'id="quantize-verdict">([^<]+)<', dom).group(1)
    if variant == "fp32":
        assert verdict == "deployable" and "drifts from the float64 reference" in dom  # the bound's reason
        # T=100 at most: ORT CPU's bound there and the WASM drift on top; printed to 3 digits
        assert bound <= (fp32_tolerance(100, "cpu") + 100 * WEB_FP32_DRIFT_PER_STEP) * 1.001
    else:  # the shipped int8 is over quantize's budget: the page says so beside its PASS
        assert verdict.startswith("not-deployable")
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_bad_target_and_variant(shipped_bundle, tmp_path):
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "android", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown target" in r.output
    r = CliRunner().invoke(
        main, ["bundle", str(shipped_bundle), "--target", "node", "--variant", "fp16", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 2 and not (tmp_path / "o").exists()

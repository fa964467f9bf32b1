"""quantize over every head mode and variant (issue 17 item 6): an fp16 head-on-every-step graph once crashed ONNX
Runtime's session creation with SIGSEGV (exit 139, no message). Tiny models; quantize runs in a child process so a
native crash is a test failure with its exit code, not a dead test run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lstm_edge
from lstm_edge.bundle import VARIANTS, Bundle
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.tolerances import scaled_error
from tests.conftest import make_model


@pytest.mark.parametrize("head", ["last", "sequence"])
def test_quantize_all_variants_for_every_head(tmp_path, head):
    model = make_model(input_size=3, hidden=8, layers=2, output=2, head=head)
    bundle = tmp_path / f"b-{head}"
    export_bundle(model, bundle, ExportConfig(name=f"tiny-{head}"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 12, 3)).astype(np.float32)
    y = rng.normal(size=(100, 12, 2) if head == "sequence" else (100, 2)).astype(np.float32)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    r = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", "quantize", str(bundle), "--mode", "all"]
        + ["--data", str(tmp_path / "data.npz"), "--calibration-samples", "16", "--max-metric-drop", "1e9", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert set(json.loads(r.stdout)) == {"int8", "int8-static", "fp16"}
    b = Bundle.open(bundle)
    assert b.variants() == list(VARIANTS)
    golden = b.golden()
    for variant in VARIANTS:  # every variant loads in ORT CPU at full graph optimization and matches its golden case
        runner = lstm_edge.load(bundle, provider="cpu", variant=variant)
        for case in golden.values():
            got, _ = runner.run(case["x"], (case["h0"], case["c0"]))
            assert got.shape == case["y"].shape
            assert scaled_error(got, case["y"]).max() < 0.5  # int8 of a random model: loose; the shape is the point

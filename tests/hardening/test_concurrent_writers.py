"""Two writers of one bundle take turns and lose nothing; quantize through a symlink keeps the link (issue 17
items 2 and 5). Tiny models without task data, so quantize makes unverified variants in a few seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.export.quant_bundle import write_variants
from lstm_edge.export.quantize import QuantizeConfig, quantize_bundle
from tests.conftest import make_model


@pytest.fixture()
def tiny(tmp_path) -> Path:
    out = tmp_path / "tiny"
    export_bundle(make_model(input_size=2, hidden=4, layers=1, output=1), out, ExportConfig(name="tiny"))
    return out


def test_two_concurrent_quantizes_keep_both_variants(tiny):
    """quantize --mode dynamic and --mode fp16 at once, two real processes: both variants end in the manifest."""
    cmd = [sys.executable, "-m", "lstm_edge.cli", "quantize", str(tiny), "--json", "--mode"]
    procs = [
        subprocess.Popen([*cmd, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for mode in ("dynamic", "fp16")
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for _, e in outs]
    b = Bundle.open(tiny)
    assert b.variants() == ["fp32", "int8", "fp16"]
    for v in b.variants():
        b.artifact(v)  # every file matches its sha256
    report = (tiny / "quantization.md").read_text()
    assert "| int8 |" in report and "| fp16 |" in report
    assert not list(tiny.parent.glob(".tiny.tmp-*"))


def test_a_re_export_during_quantize_is_detected(tiny):
    """The model changed between quantize's read and its write: exit 2, nothing of the stale variants written."""
    before = Bundle.open(tiny)
    export_bundle(make_model(input_size=2, hidden=4, layers=1, output=1, seed=7), tiny, ExportConfig(force=True))
    now = json.loads((tiny / "manifest.json").read_text())
    with pytest.raises(LstmEdgeError, match="re-exported while quantizing"):
        write_variants(before, {}, {}, {})
    assert json.loads((tiny / "manifest.json").read_text()) == now


def test_quantize_through_a_symlink_keeps_the_link(tiny, tmp_path):
    v3 = tmp_path / "v3"
    shutil.move(tiny, v3)
    current = tmp_path / "current"
    current.symlink_to("v3")
    quantize_bundle(current, QuantizeConfig(mode="fp16", progress=False))
    assert current.is_symlink() and os.readlink(current) == "v3"
    assert Bundle.open(v3).variants() == ["fp32", "fp16"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["current", "v3"]

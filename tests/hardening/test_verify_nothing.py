"""verify never says PASSED about nothing (issue 17 item 4): an artifact no runtime can load fails; a verify in which
no case ran, or every requested provider is unavailable, exits non-zero and says why; "unsupported" stays for a
runtime that cannot run a variant by design while another runtime ran it."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
from click.testing import CliRunner

from lstm_edge.atomic import sha256_file
from lstm_edge.cli import main
from lstm_edge.environment import available_providers
from tests.conftest import SHIPPED


def _verify(*args: str):
    return CliRunner().invoke(main, ["verify", *args, "--quick"])


def _rows(path) -> dict[tuple[str, str], dict]:
    return {(r["runtime"], r["variant"]): r for r in json.loads(path.read_text())["results"]}


def _resign(b, name: str) -> None:
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["artifacts"]["fp32"].update(sha256=sha256_file(b / name), bytes=(b / name).stat().st_size)
    (b / "manifest.json").write_text(json.dumps(manifest))


def test_an_artifact_no_runtime_can_load_fails(small_bundle, tmp_path):
    """model.onnx, a valid ONNX file whose LSTM node no runtime knows, re-signed in the manifest so the integrity
    check passes: every ONNX runtime refuses it, so it fails (it was "unsupported … PASSED")."""
    b = tmp_path / "b"
    shutil.copytree(small_bundle, b)
    model = onnx.load(str(b / "model.onnx"))
    next(n for n in model.graph.node if n.op_type == "LSTM").op_type = "NoSuchLSTM"
    onnx.save(model, str(b / "model.onnx"))
    _resign(b, "model.onnx")
    providers = [p for p in ("cpu", "openvino", "tract") if available_providers()[p] is None]
    r = _verify(str(b), "--providers", ",".join(["torch", *providers]), "--json", str(tmp_path / "v.json"))
    assert r.exit_code == 1, r.output
    assert "PASSED" not in r.output and "FAILED: no runtime could load the fp32 variant" in r.output
    rows = _rows(tmp_path / "v.json")
    assert rows[("torch", "fp32")]["status"] == "pass"  # the checkpoint itself is fine; the artifact is not
    for p in providers:
        assert rows[(p, "fp32")]["status"] == "fail" and "no runtime could load" in rows[(p, "fp32")]["reason"]
    # Bytes that are no ONNX at all (re-signed too): one line, exit 2, before anything runs.
    (b / "model.onnx").write_bytes(b"\x08\x07" + b"not a model" * 50)
    _resign(b, "model.onnx")
    r = _verify(str(b), "--providers", "cpu")
    assert r.exit_code == 2 and "not a readable ONNX model" in r.stderr and "PASSED" not in r.output


def test_every_requested_provider_unavailable_is_one_line(small_bundle):
    if available_providers()["cuda"] is None:
        pytest.skip("CUDA is available here")
    r = _verify(str(small_bundle), "--providers", "cuda")
    assert r.exit_code == 2 and "PASSED" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "none of the requested providers can run here: cuda:" in lines[0], r.stderr


def test_no_case_ran_fails(tmp_path):
    """torch runs fp32 only, by design: asking it for int8 alone runs nothing, and that is not a pass."""
    r = _verify(str(SHIPPED), "--providers", "torch", "--variants", "int8", "--json", str(tmp_path / "v.json"))
    assert r.exit_code == 1 and "FAILED: no case ran" in r.output, r.output
    assert _rows(tmp_path / "v.json")[("torch", "int8")]["status"] == "unsupported"


def test_unsupported_by_design_stays_when_another_runtime_ran_it(tmp_path):
    """tract cannot run DynamicQuantizeLSTM: unsupported beside ORT's pass; alone, nothing loaded int8: a failure."""
    if available_providers()["tract"] is not None:
        pytest.skip("tract not installed")
    r = _verify(str(SHIPPED), "--providers", "cpu,tract", "--variants", "int8", "--json", str(tmp_path / "v.json"))
    assert r.exit_code == 0 and "PASSED" in r.output, r.output
    rows = _rows(tmp_path / "v.json")
    assert rows[("cpu", "int8")]["cases"] and rows[("tract", "int8")]["status"] == "unsupported"
    r = _verify(str(SHIPPED), "--providers", "tract", "--variants", "int8")
    assert r.exit_code == 1 and "FAILED: no runtime could load the int8 variant" in r.output, r.output


def test_a_runtime_not_installed_is_skipped_not_failed_on_a_broken_file(small_bundle, tmp_path):
    """A byte flipped in model.onnx fails integrity on every runtime that could run it; one not installed here (a
    trial's "cuda fp32 fail (integrity)" without onnxruntime-gpu) is listed unsupported with why, as elsewhere."""
    missing = {p: why for p, why in available_providers().items() if why is not None}
    if not missing:
        pytest.skip("every runtime is installed here")
    b = tmp_path / "b"
    shutil.copytree(small_bundle, b)
    data = bytearray((b / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / "model.onnx").write_bytes(bytes(data))
    r = _verify(
        str(b), "--providers", ",".join(["cpu", *missing]), "--variants", "fp32", "--json", str(tmp_path / "v.json")
    )
    assert r.exit_code == 1 and "PASSED" not in r.output, r.output
    rows = _rows(tmp_path / "v.json")
    assert rows[("cpu", "fp32")]["status"] == "fail" and "integrity" in rows[("cpu", "fp32")]["reason"]
    for p, why in missing.items():
        assert rows[(p, "fp32")]["status"] == "unsupported" and rows[(p, "fp32")]["reason"] == why, rows[(p, "fp32")]

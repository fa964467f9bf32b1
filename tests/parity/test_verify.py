"""`lstm-edge verify`: schema-valid JSON, Markdown, plots, integrity, a broken model caught, exit codes."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from lstm_edge.atomic import sha256_file
from lstm_edge.cli import main

QUICK = ["--quick", "--providers", "torch,cpu,tract,cuda"]


@pytest.fixture(scope="module")
def schema():
    return json.loads(resources.files("lstm_edge").joinpath("schemas/verify.schema.json").read_text())


def test_verify_passes_with_schema_valid_outputs(shipped_bundle, tmp_path, schema):
    r = CliRunner().invoke(
        main,
        [
            "verify",
            str(shipped_bundle),
            *QUICK,
            "--json",
            str(tmp_path / "v.json"),
            "--markdown",
            str(tmp_path / "v.md"),
            "--plots",
            str(tmp_path / "plots"),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "v.json").read_text())
    jsonschema.validate(report, schema)
    assert report["passed"] is True
    by = {(x["runtime"], x["variant"]): x for x in report["results"]}
    assert by[("cpu", "fp32")]["status"] == "pass" and by[("tract", "int8")]["status"] == "unsupported"
    assert by[("cuda", "fp32")]["status"] in ("unsupported", "pass")
    for res in report["results"]:
        if res["status"] == "pass":
            assert all(c["passed"] for c in res["cases"])
    assert "| cpu | fp32 | pass |" in (tmp_path / "v.md").read_text()
    for png in ("error_vs_timestep.png", "state_drift.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 5000


def test_schema_rejects_a_malformed_report(schema, shipped_bundle):
    bad = {"schema": "lstm-edge/verify", "schema_version": 1, "passed": "yes"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def _swap_gate_blocks(bundle):
    """Swap the f and c gate blocks of layer 0 and re-record the hash: integrity passes, parity must not."""
    path = bundle / "model.onnx"
    model = onnx.load(str(path))
    W = next(t for t in model.graph.initializer if t.name == "W0")
    arr = onnx.numpy_helper.to_array(W).copy()
    H = arr.shape[1] // 4
    arr[:, 2 * H : 3 * H], arr[:, 3 * H :] = arr[:, 3 * H :].copy(), arr[:, 2 * H : 3 * H].copy()
    W.CopyFrom(onnx.numpy_helper.from_array(arr, "W0"))
    onnx.save(model, str(path))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"]["fp32"]["sha256"] = sha256_file(path)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_broken_model_is_caught(bundle_copy, tmp_path):
    _swap_gate_blocks(bundle_copy)
    r = CliRunner().invoke(
        main,
        [
            "verify",
            str(bundle_copy),
            "--quick",
            "--providers",
            "cpu",
            "--variants",
            "fp32",
            "--json",
            str(tmp_path / "v.json"),
        ],
    )
    assert r.exit_code == 1 and "FAILED" in r.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["results"][0]["status"] == "fail"


def test_tampered_file_fails_integrity(bundle_copy):
    with open(bundle_copy / "model.int8.onnx", "ab") as f:
        f.write(b"\0")
    r = CliRunner().invoke(main, ["verify", str(bundle_copy), "--quick", "--providers", "cpu"])
    assert r.exit_code == 1 and "integrity: model.int8.onnx" in r.output


def test_strict_fails_not_deployable_variants(shipped_bundle):
    manifest = json.loads((shipped_bundle / "manifest.json").read_text())
    if all(e.get("deployable", True) for e in manifest["artifacts"].values()):
        pytest.skip("every variant of the shipped model is deployable")
    r = CliRunner().invoke(main, ["verify", str(shipped_bundle), "--quick", "--providers", "cpu", "--strict"])
    assert r.exit_code == 1


@pytest.mark.parametrize(
    "args", [["missing-bundle"], ["{bundle}", "--providers", "tpu"], ["{bundle}", "--variants", "int4"]]
)
def test_bad_input_exits_2(shipped_bundle, args):
    args = [a.replace("{bundle}", str(shipped_bundle)) for a in args]
    r = CliRunner().invoke(main, ["verify", *args])
    assert r.exit_code == 2 and r.output.startswith("error:")


def test_probe_inputs_are_task_like(shipped_bundle):
    from lstm_edge.bundle import Bundle
    from lstm_edge.data import probe_inputs

    x, h0, c0 = probe_inputs(Bundle.open(shipped_bundle).config, 4, 50, False, seed=1)
    assert (x[..., 1].sum(axis=1) == 2).all() and not h0.any() and np.isfinite(x).all()

"""verify judges a variant by its own recorded bound first, its verdict second (issue 26): outside its bound on a
runtime it fails (exit 1) whether quantize called it deployable or could not judge it (unverified, no task data);
within its bound an unverified variant passes labelled "unverified"; a variant the task metric judged not deployable
is a finding either way (exit 0) unless --strict. Each case through the CLI, on one quantized small model whose
int8 entry is given each verdict, and a bound shrunk below what ORT's int8 reaches to make it miss."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_edge.cli import main


@pytest.fixture(scope="module")
def quantized(small_bundle, tmp_path_factory) -> Path:
    """small_bundle with its int8 variant (no task data: verdict unverified)."""
    bundle = tmp_path_factory.mktemp("verdicts") / "small"
    shutil.copytree(small_bundle, bundle)
    res = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", "dynamic"])
    assert res.exit_code == 0, res.output
    return bundle


def _variant(quantized: Path, tmp_path: Path, verdict: str, missed: bool) -> Path:
    """A copy whose int8 entry says `verdict`; `missed`: its recorded profile shrunk a million-fold, so ORT's int8
    falls outside it (its bound becomes the fp32 floor, 1e-5, where int8 reaches ~1e-3)."""
    bundle = tmp_path / "b"
    shutil.copytree(quantized, bundle)
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    entry = manifest["artifacts"]["int8"]
    assert entry["verdict"] == "unverified"  # what quantize wrote without task data
    entry["verdict"], entry["deployable"] = verdict, verdict == "deployable"
    if missed:
        for errs in entry["report"]["error_profile"].values():
            errs.update({k: v * 1e-6 for k, v in errs.items()})
    path.write_text(json.dumps(manifest, indent=1))
    return bundle


def _verify(bundle: Path, *extra: str):
    args = ["verify", str(bundle), "--quick", "--providers", "cpu", "--variants", "int8", *extra]
    return CliRunner().invoke(main, args)


def _row(output: str) -> tuple[str, str]:
    """(status, cases) of the cpu int8 row of verify's table."""
    m = re.search(r"^cpu\s+int8\s+(\S+)\s+(\S+)", output, re.M)
    assert m, output
    return m.group(1), m.group(2)


@pytest.mark.parametrize(
    ("verdict", "missed", "status", "code"),
    [
        ("unverified", False, "unverified", 0),  # within its bound: passes, labelled by what it is
        ("unverified", True, "fail", 1),  # outside its own bound: a failed verify, verdict or not
        ("deployable", True, "fail", 1),
        ("deployable", False, "pass", 0),
        ("not-deployable", True, "not-deployable", 0),  # the task metric already said no: a finding
        ("not-deployable", False, "not-deployable", 0),
    ],
)
def test_a_variant_is_judged_by_its_own_bound_then_its_verdict(quantized, tmp_path, verdict, missed, status, code):
    res = _verify(_variant(quantized, tmp_path, verdict, missed))
    assert res.exit_code == code, res.output
    got, cases = _row(res.output)
    assert got == status, res.output
    assert (cases == "48/48") == (not missed), res.output
    assert ("PASSED" if code == 0 else "FAILED") in res.output


@pytest.mark.parametrize(("verdict", "missed"), [("unverified", False), ("not-deployable", True)])
def test_strict_fails_every_variant_not_proven_deployable(quantized, tmp_path, verdict, missed):
    res = _verify(_variant(quantized, tmp_path, verdict, missed), "--strict")
    assert res.exit_code == 1 and "FAILED" in res.output, res.output


def test_quiet_names_the_variant_outside_its_bound_and_not_the_findings(quantized, tmp_path):
    """-q's one line lists what failed the report: the missed unverified int8, not a passing row."""
    res = _verify(_variant(quantized, tmp_path, "unverified", True), "-q")
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "cpu int8 fail" in res.output, res.output

"""`lstm-edge report`: the page written from the JSON verify and bench wrote on the shipped bundle, rendered in
headless Chromium and checked from its DOM; bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_edge.report_cmd import report

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "adding"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """verify's and bench's JSON on the shipped bundle, at their smallest settings (ORT CPU only, quick)."""
    from lstm_edge.bench import BenchConfig, bench
    from lstm_edge.parity import VerifyConfig, verify

    out = tmp_path_factory.mktemp("report-json")
    v = verify(SHIPPED, VerifyConfig(providers=("cpu",), progress=False).quick())
    b = bench(
        SHIPPED,
        BenchConfig(providers=("cpu",), variants=("fp32", "int8"), threads=("1",), cold_start=False, progress=False)
        .quick(),
    )  # fmt: skip
    paths = {"verify": out / "verify.json", "bench": out / "bench.json"}
    paths["verify"].write_text(json.dumps(v))
    paths["bench"].write_text(json.dumps(b))
    return paths


@pytest.fixture(scope="module")
def page(reports, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    r = CliRunner().invoke(
        report, [str(SHIPPED), "--out", str(out), "--verify", str(reports["verify"]), "--bench", str(reports["bench"])]
    )
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.output
    return out


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_page_is_self_contained(page):
    text = page.read_text()
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith(("#", "data:image/png;base64,")), ref
    assert "<script" not in text
    assert "≤" not in text  # a bound is printed as "bound X", never as a claim
    assert text.count("data:image/png;base64,") >= 4  # error vs timestep, state drift, quantization, bench


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (the web embed tests' browser)")
def test_rendered_in_chromium(page, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert headings == ["Model card", "Variants and verdicts", "Parity: verify", "Speed: bench", "Quantization",
                        "How to embed it"]  # fmt: skip
    rows = re.findall(r"<tr><td>cpu</td><td>([a-z0-9-]+)</td>", dom)
    assert rows == ["fp32", "int8", "int8-static", "fp16"]  # verify's detail table, one row per variant
    assert re.search(r"bound 1(\.\d+)?e-05", dom)  # fp32's bound beside its value (ORT's grows with T)
    for ref in re.findall(r'(?:src|href)="([^"]*)"', dom):
        assert ref.startswith(("#", "data:image/png;base64,")), ref  # nothing fetched from a network
    verdicts = {
        "fp32": "deployable",
        "int8": "not-deployable",
        "int8-static": "not-deployable",
        "fp16": "not-deployable",
    }
    for variant, verdict in verdicts.items():
        assert re.search(rf"<td><b>{re.escape(variant)}</b></td><td class=\"[a-z]+\">{verdict}</td>", dom), variant
    assert "PASSED" in dom and "lstm-edge bundle" in dom and "--target c" in dom
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.stat().st_size > 50_000  # a page drawn, not a blank one


def test_a_changed_bundle_is_said_before_anything_else(reports, tmp_path):
    """The verify report names the files it judged (their sha256). A bundle tampered after that verify (gate blocks
    swapped, manifest re-signed) gets a page and a stderr line saying the verify is of other files; a byte changed
    without re-signing gets the integrity warning — a trial's page said "verify PASSED" of both."""
    from tests.test_self_check import tamper

    bundle = tmp_path / "b"
    shutil.copytree(SHIPPED, bundle)
    assert json.loads(reports["verify"].read_text())["bundle"]["sha256"]["fp32"]
    args = [str(bundle), "--out", str(tmp_path / "r.html"), "--verify", str(reports["verify"])]
    r = CliRunner().invoke(report, args)
    # the same files: nothing to say of them (the shipped fp16 may fail its own self-check on some CPUs: said too)
    assert r.exit_code == 0 and "verify's report" not in r.output and "fp32" not in r.stderr, r.output
    tamper(bundle)
    r = CliRunner().invoke(report, args)
    assert r.exit_code == 0 and "warning: verify's report" in r.stderr and "fp32 changed since" in r.stderr, r.output
    page = (tmp_path / "r.html").read_text()
    assert "judged other files than the bundle holds now" in page
    # report runs ORT CPU's self-check of each variant: the re-signed bundle's fp32 fails it, said first on stderr
    # and on the page (a trial's tampered, re-signed bundle got a clean card)
    first = r.stderr.splitlines()[0]
    assert first.startswith("warning: self-check failed: onnxruntime") and "the fp32 variant" in first, r.stderr
    assert page.index("self-check failed") < page.index("deployable variants")  # the page leads with it
    with open(bundle / "model.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    r = CliRunner().invoke(report, args)
    assert "warning: integrity: fp32 (model.onnx) does not match its sha256" in r.stderr, r.output
    assert "does not match its sha256 in the manifest" in (tmp_path / "r.html").read_text()


def test_missing_tools_say_how_to_run_them(tmp_path):
    out = tmp_path / "report.html"
    r = CliRunner().invoke(report, [str(SHIPPED), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "verify has not been run" in text and "bench has not been run" in text
    assert f"lstm-edge verify {SHIPPED} --json {SHIPPED / 'verify.json'}" in text


@pytest.mark.parametrize(
    "args, problem",
    [
        (["no-such-bundle"], "bundle not found"),
        ([str(SHIPPED), "--verify", "BENCH"], "is bench's report, not verify's — pass it as --bench"),
        ([str(SHIPPED), "--bench", str(SHIPPED / "manifest.json")], "is not an lstm-edge bench report"),
        ([str(SHIPPED), "--verify", "missing.json"], "no such file"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(args, problem, reports, tmp_path):
    out = tmp_path / "report.html"
    args = [str(reports["bench"]) if a == "BENCH" else a for a in args]
    r = CliRunner().invoke(report, [*args, "--out", str(out)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and r.output.startswith("error: ") and problem in r.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_variant_not_marked_deployable_that_fails_cases_is_never_shown_as_pass():
    """It does not fail verify (quantize did not call it deployable), but its cell and row say fail with the count:
    a trial's page showed "pass · unverified" for 4/48 cases within bound."""
    from lstm_edge.report.proof import _status_cell, detail_rows

    out = {"max_scaled": 3.2, "tolerance": 0.1, "passed": False}
    case = {"batch": 1, "seq": 7, "state": "zero", "mode": "full", "passed": False, "outputs": {"y": out}}
    ok = case | {"passed": True, "outputs": {"y": out | {"max_scaled": 0.01, "passed": True}}}
    r = {"runtime": "c", "variant": "int8", "status": "not-deployable", "verdict": "unverified", "reason": "",
         "deployable": False, "cases": [case, ok, ok, ok]}  # fmt: skip
    assert str(_status_cell(r).body).startswith("fail 3/4 · unverified")
    assert "fail" in str(detail_rows({"results": [r]})[0][2].body).lower()
    assert str(_status_cell(r | {"cases": [ok]}).body).startswith("pass 1/1")

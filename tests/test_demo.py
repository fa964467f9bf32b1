"""The demo's story, piece by piece (issue 27 item 3), each through the command a user runs: verify's demo-sized
matrix and its table printing a bound as a bound, bench's int8 roofline cell, quantize's cell-state note, the
closing lines (deployable variants, the python embed hint's interpreter). `make demo` itself is timed by hand."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.demo import deployable_lines, embed_hints
from lstm_edge.export.quant_report import QuantizeReport, format_report


@pytest.fixture(scope="module")
def demo_verify(shipped_bundle, tmp_path_factory):
    """`lstm-edge verify --demo` on the shipped bundle, ORT CPU only, fp32 and int8: (the CLI result, its JSON)."""
    out = tmp_path_factory.mktemp("demo") / "verify.json"
    args = ["verify", str(shipped_bundle), "--demo", "--providers", "cpu", "--variants", "fp32,int8"]
    r = CliRunner().invoke(main, [*args, "--json", str(out)])
    return r, json.loads(out.read_text())


def test_verify_demo_matrix_and_bound_wording(demo_verify):
    r, report = demo_verify
    assert r.exit_code == 0, r.output
    rows = {(x["runtime"], x["variant"]): x for x in report["results"]}
    # B 1,4 × T 7,100 × {zero, random} state × {full, one step per call, the whole sequence per call}
    assert len(rows[("cpu", "fp32")]["cases"]) == 24
    assert {c["seq"] for c in rows[("cpu", "fp32")]["cases"]} == {7, 100}
    lines = [line for line in r.output.splitlines() if line.startswith("cpu ")]
    assert lines and all(", bound " in line for line in lines), r.output
    # the int8 row is over quantize's budget: its figure sits beside a bound, never under a claim "≤"
    assert "≤" not in r.output and "worst max scaled error, bound (case)" in r.output


def test_verify_quick_and_demo_refused_together(shipped_bundle):
    r = CliRunner().invoke(main, ["verify", str(shipped_bundle), "--quick", "--demo"])
    assert r.exit_code == 2 and "--quick and --demo" in r.output and "Traceback" not in r.output


def test_closing_lines_name_deployable_variants(demo_verify):
    _, report = demo_verify
    lines = deployable_lines(report)
    # fp32 passes on ORT CPU; ORT's int8 is marked not deployable by quantize, so it gets no line
    assert len(lines) == 1 and lines[0].split()[0] == "fp32" and "deployable on cpu" in lines[0]
    assert re.search(r"bound 1(\.\d+)?e-05\)", lines[0]), lines[0]  # the bound as a bound (ORT's grows with T)


def test_python_embed_hint_runs_as_printed(shipped_bundle, tmp_path):
    """The hint's interpreter runs the python target's example (a bare `python` lacks lstm-edge)."""
    embed = tmp_path / "embed"
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "python", "--out", str(embed / "python")])
    assert r.exit_code == 0, r.output
    hint = next(line for line in embed_hints(embed).splitlines() if "python:" in line)
    assert sys.executable in hint
    cmd = hint.split("python:", 1)[1].strip()
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "PASS" in done.stdout, done.stderr[-1500:]


def test_bench_table_int8_gflops_is_int8_equivalent(shipped_bundle):
    args = ["bench", str(shipped_bundle), "--providers", "cpu", "--variants", "fp32,int8", "--quick"]
    r = CliRunner().invoke(main, [*args, "--threads", "1", "--no-cold-start"])
    assert r.exit_code == 0, r.output
    int8 = next(line for line in r.output.splitlines() if line.startswith("cpu int8 "))
    fp32 = next(line for line in r.output.splitlines() if line.startswith("cpu fp32 "))
    assert "int8-equivalent" in int8 and "%" not in int8  # no share of a float32 peak it did not use
    assert "%)" in fp32


def test_quantize_report_says_why_cell_error_is_large(shipped_bundle):
    b = Bundle.open(shipped_bundle)
    text = format_report({"int8": QuantizeReport.from_dict(b.entry("int8")["report"])})
    assert "max |Δcn| against T" in text and "max scaled |Δcn| / max(1, |cn|) against PyTorch" in text
    assert "cell state c is not squashed by a tanh" in text

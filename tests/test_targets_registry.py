"""The bundle targets' one table: every target registered once in lstm_edge.targets.TARGETS, complete, and the
CLI's --target help and errors read from it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from lstm_edge.cli import main
from lstm_edge.targets import TARGETS, Target


def test_targets_lists_every_target_once():
    assert list(TARGETS) == ["python", "node", "web", "triton", "c", "http"]


@pytest.mark.parametrize("name", list(TARGETS))
def test_each_entry_is_complete(name):
    t = TARGETS[name]
    assert isinstance(t, Target) and t.name == name
    assert t.summary and "\n" not in t.summary
    assert callable(t.write) and t.write.__doc__
    assert t.variants and set(t.variants) <= {"fp32", "int8"}
    assert t.needs and "\n" not in t.needs


def test_bundle_help_lists_exactly_the_targets():
    r = CliRunner().invoke(main, ["bundle", "--help"])
    assert r.exit_code == 0, r.output
    listed = re.search(r"--target TEXT\s+([a-z |]+?)\s+\[required\]", r.output).group(1)
    assert listed.split(" | ") == list(TARGETS)


def test_unknown_target_is_one_line_exit_2(shipped_bundle, tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "android", "--out", str(out)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "unknown target 'android'" in r.output and ", ".join(TARGETS) in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_c_target_writes_a_project_that_checks_itself(shipped_bundle, tmp_path):
    out = tmp_path / "c"
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "c", "--out", str(out)])
    assert r.exit_code == 0, r.output
    embed = json.loads((out / "manifest.json").read_text())["embed"]
    assert embed["target"] == "c" and (out / embed["model"]).is_file() and (out / "README.md").is_file()
    # --force replaces it: the manifest's format tag makes the folder lstm-edge's
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "c", "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    if not shutil.which("cc") or not shutil.which("make"):
        pytest.skip("no C compiler or make here")
    res = subprocess.run(["make", "-C", str(out), "host"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr

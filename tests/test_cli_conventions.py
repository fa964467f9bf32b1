"""The conventions every `lstm-edge` command keeps (issue 27, item 4): -q/--quiet, --json PATH, help on every
option, progress that TQDM_DISABLE turns off, and bad input refused before torch is imported."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_edge.cli import main
from lstm_edge.runtimes import RUNTIMES


def commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    """Every command under `group`, by its full name ("verify", "group sub" for nested groups)."""
    found = {}
    ctx = click.Context(group, info_name=group.name)
    for name in group.list_commands(ctx):  # the lazy group imports each command here
        cmd = group.get_command(ctx, name)
        found[prefix + name] = cmd
        if isinstance(cmd, click.Group):
            found |= commands(cmd, f"{prefix}{name} ")
    return found


def options(cmd: click.Command) -> list[click.Option]:
    """The command's options, the --help click adds included."""
    with click.Context(cmd, info_name=cmd.name) as ctx:
        return [p for p in cmd.get_params(ctx) if isinstance(p, click.Option)]


def test_every_option_of_every_command_has_help():
    missing = [
        f"{name} {o.opts[0]}"
        for name, cmd in commands().items()
        for o in options(cmd)
        if not o.hidden and not (o.help or "").strip()
    ]
    assert len(commands()) >= 13
    assert not missing, f"options without help: {missing}"


def test_every_command_takes_quiet_and_a_json_path():
    for name, cmd in commands().items():
        if isinstance(cmd, click.Group):
            continue
        opts = {o: p for p in options(cmd) for o in p.opts}
        assert "-q" in opts and "--quiet" in opts and opts["-q"].is_flag, name
        j = opts.get("--json")
        assert j is not None and not j.is_flag and j.metavar == "PATH" and j.flag_value == "-", name


def test_provider_help_is_the_runtimes_table():
    for name in ("verify", "bench", "run", "score"):
        opt = next(o for o in options(commands()[name]) if o.name in ("providers", "provider"))
        words = opt.help.replace(",", " ").replace(".", " ").split()
        assert all(p in words for p in RUNTIMES), (name, opt.help)


@pytest.fixture()
def x_npy(tmp_path, shipped_bundle):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(2, 7, 2)).astype(np.float32))
    return path


def invoke(args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def test_quiet_prints_nothing_and_json_path_gets_the_result(shipped_bundle, x_npy, tmp_path):
    loud = invoke(["run", shipped_bundle, "--input", x_npy])
    assert loud.exit_code == 0 and "y (2, 1)" in loud.stdout
    out = tmp_path / "run.json"
    r = invoke(["run", shipped_bundle, "--input", x_npy, "-q", "--json", out])
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and r.stderr == ""
    assert np.asarray(json.loads(out.read_text())["y"]).shape == (2, 1)


@pytest.mark.parametrize(
    "args",
    [
        ["lint", "{b}/model.onnx"],
        ["doctor"],
        ["bundle", "{b}", "--target", "python", "--out", "{t}/embed"],
        ["codegen", "{b}", "--out", "{t}/c"],
        ["verify", "{b}", "--quick", "--providers", "cpu", "--variants", "fp32"],
        ["score", "{b}", "--input", "{t}/x.npy", "--output", "{t}/p.parquet", "--batch-size", "2"],
        ["import", "{b}/model.onnx", "--out", "{t}/imported"],
        ["report", "{b}", "--out", "{t}/report.html"],
    ],
    ids=lambda a: a[0],
)
def test_command_quiet_with_json_file(args, shipped_bundle, x_npy, tmp_path):
    args = [a.format(b=shipped_bundle, t=tmp_path) for a in args]
    out = tmp_path / "out.json"
    r = invoke([*args, "-q", "--json", out])
    assert r.exit_code == 0, r.output
    assert r.output == ""  # stdout and stderr: no table, no progress, no notes
    json.loads(out.read_text())


def test_json_dash_is_the_json_alone_on_stdout_and_the_old_flag_still_works(shipped_bundle, x_npy):
    for json_args in (["--json", "-"], ["--json"]):  # --json alone: the flag it was on run/export/quantize/…
        r = invoke(["run", shipped_bundle, *json_args, "--input", x_npy])
        assert r.exit_code == 0, r.output
        assert np.asarray(json.loads(r.stdout)["y"]).shape == (2, 1)
    r = invoke(["verify", shipped_bundle, "--quick", "--providers", "cpu", "--variants", "fp32", "--json", "-"])
    assert r.exit_code == 0 and json.loads(r.output)["passed"] is True  # no table, no bar mixed in


def test_quiet_errors_are_still_one_line(tmp_path):
    r = invoke(["run", tmp_path / "missing.onnx", "--input", "x.npy", "-q"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: model not found") and r.stderr.count("\n") == 1


def test_tqdm_disable_is_honoured(shipped_bundle):
    args = ["verify", shipped_bundle, "--quick", "--providers", "cpu", "--variants", "fp32"]
    shown = invoke(args)
    assert shown.exit_code == 0 and "verify:" in shown.stderr  # the bar, on stderr
    hidden = invoke(args, env={"TQDM_DISABLE": "1"})
    assert hidden.exit_code == 0 and "PASSED" in hidden.stdout
    assert hidden.stderr == ""


def test_bad_input_is_refused_before_torch_is_imported(tmp_path):
    """Each case in a fresh process: exit 2, one line, and neither torch nor onnx loaded to say so."""
    cases = [
        ["export", "nonexistent.pt"],
        ["verify", "missing-bundle"],
        ["bench", "models/adding", "--rate", "-1"],
        ["verify", "models/adding", "--providers", "cpu,nope"],
        ["bench", "models/adding", "--variants", "int4"],
        ["quantize", "missing-bundle"],
        ["quantize", "models/adding", "--mode", "bogus"],
        ["codegen", "missing-bundle", "--out", str(tmp_path / "c")],
        ["train", "--epochs", "0", "--out", str(tmp_path / "m.pt")],
        ["lint", "missing.onnx"],
        ["import", "missing.onnx", "--out", str(tmp_path / "i")],
        ["report", "missing-bundle", "--out", str(tmp_path / "r.html")],
        ["run", "missing.onnx", "--input", "x.npy"],
    ]
    probe = (
        "import contextlib, io, json, sys\n"
        "from lstm_edge.cli import main\n"
        "codes, errs = [], []\n"
        f"for args in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            main(args, prog_name='lstm-edge')\n"
        "        except SystemExit as e:\n"
        "            codes.append(e.code)\n"
        "    errs.append(err.getvalue())\n"
        "print(json.dumps({'codes': codes, 'errs': errs, 'heavy': [m for m in ('torch', 'onnx', 'matplotlib') "
        "if m in sys.modules]}))\n"
    )
    from tests.conftest import ROOT

    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False)
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    assert doc["codes"] == [2] * len(cases), list(zip(cases, doc["codes"], doc["errs"], strict=True))
    for err in doc["errs"]:
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert doc["heavy"] == [], f"refusing bad input imported {doc['heavy']}"


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What `lstm-edge ARGS` writes to stderr when stderr is a terminal (a pty), as a person running it sees it."""
    master, slave = pty.openpty()
    p = subprocess.run(
        [sys.executable, "-m", "lstm_edge.cli", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=os.environ | env,
        timeout=300,
        check=False,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child's end is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert p.returncode == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode()


def test_codegen_int8_says_what_it_is_doing_on_a_terminal(small_bundle, tmp_path):
    """Each stage of `codegen --precision int8` (56 s on a char-LM with no output before) is one line on a
    terminal; TQDM_DISABLE=1 turns them off, as it does every bar."""
    args = ["codegen", str(small_bundle), "--precision", "int8", "--force", "--out"]
    shown = on_a_terminal([*args, str(tmp_path / "a")], {})
    assert "… int8: simulating the C" in shown and "… int8: judging the C's task metric" in shown
    hidden = on_a_terminal([*args, str(tmp_path / "b")], {"TQDM_DISABLE": "1"})
    assert "…" not in hidden


@pytest.mark.parametrize(
    "argv, words",
    [
        (["export"], "error: missing argument 'FILE' — see `lstm-edge export --help`"),
        (["report", "b", "--bogus"], "error: no such option '--bogus' — did you mean '--out'?"),
        (["report", "b"], "error: missing option '--out' — see `lstm-edge report --help`"),
        (["bench", "b", "--rate", "abc"], "error: invalid value for '--rate': 'abc' is not a valid float"),
        (["nosuch"], "error: no such command 'nosuch' — see `lstm-edge --help`"),
        (["--bogus"], "error: no such option '--bogus'"),
    ],
)
def test_click_usage_errors_are_one_line(argv, words):
    """click's own refusals (a missing argument, an unknown option or command, a bad value) are the CLI's one line,
    exit 2 — a trial got click's three lines of usage, hint and "Error:" instead."""
    r = invoke(argv, prog_name="lstm-edge")
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.startswith(words) and r.stderr.count("\n") == 1 and "Usage:" not in r.stderr, r.stderr

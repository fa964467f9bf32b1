"""--force deletes only what is ours; an --out never overlaps its input; names are safe; HTML is escaped (issue 17,
items 2 and 7). Tiny models, in-process CLI: a few seconds in all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_edge.atomic import is_ours, staged_dir
from lstm_edge.checkpoint import save_checkpoint
from lstm_edge.cli import main
from lstm_edge.errors import LstmEdgeError
from tests.conftest import ROOT, make_model

ORT_WEB = ROOT / "tests" / "embed" / "npm" / "node_modules" / "onnxruntime-web" / "dist"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(make_model(input_size=2, hidden=4, layers=1, output=1), path)
    return path


@pytest.fixture(scope="module")
def bundle(ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "tiny"
    r = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(argv: list[str], needle: str) -> None:
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.output


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    return folder


def test_export_force_never_deletes_a_user_folder(ckpt, tmp_path):
    folder = _user_folder(tmp_path)
    _refused(["export", str(ckpt), "--out", str(folder), "--force"], "not a folder lstm-edge wrote")
    assert (folder / "thesis.tex").read_text() == "\\documentclass{article}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging folder left


def test_bundle_force_never_deletes_a_user_folder(bundle, tmp_path):
    folder = _user_folder(tmp_path)
    _refused(
        ["bundle", str(bundle), "--target", "python", "--out", str(folder), "--force"], "not a folder lstm-edge wrote"
    )
    assert (folder / "thesis.tex").is_file()


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_bundle_out_never_overlaps_its_input(bundle, where):
    before = _snapshot(bundle.parent)
    out = {"same": bundle, "inside": bundle / "embed", "containing": bundle.parent}[where]
    _refused(["bundle", str(bundle), "--target", "python", "--out", str(out), "--force"], "overlaps the input")
    assert _snapshot(bundle.parent) == before


@pytest.mark.parametrize("where", ["same", "containing"])
def test_export_out_never_overlaps_its_checkpoint(ckpt, tmp_path, where):
    inner = tmp_path / "work"
    inner.mkdir()
    src = inner / "model.pt"
    shutil.copyfile(ckpt, src)
    out = {"same": src, "containing": inner}[where]
    _refused(["export", str(src), "--out", str(out), "--force"], "overlaps the input")
    assert src.read_bytes() == ckpt.read_bytes()


@pytest.mark.parametrize("force", [False, True])
def test_out_dot_is_one_line_and_leaves_nothing(ckpt, tmp_path, monkeypatch, force):
    monkeypatch.chdir(tmp_path)
    _refused(["export", str(ckpt), "--out", ".", *(["--force"] if force else [])], "is the working folder")
    assert list(tmp_path.iterdir()) == []
    assert not list(tmp_path.parent.glob(".*old-*")) and not list(tmp_path.parent.glob(f".{tmp_path.name}.tmp-*"))


def test_out_dot_inside_a_bundle_is_refused(ckpt, bundle, tmp_path, monkeypatch):
    """Even where the working folder is a bundle (ours), replacing the folder a shell stands in is refused."""
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    before = _snapshot(copy)
    monkeypatch.chdir(copy)
    _refused(["export", str(ckpt), "--out", ".", "--force"], "is the working folder")
    _refused(["export", str(ckpt), "--out", "..", "--force"], "or contains it")
    assert _snapshot(copy) == before


def test_bundle_out_file_force_refuses_to_replace_a_file(bundle, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    _refused(["bundle", str(bundle), "--target", "python", "--out", str(f), "--force"], "not a folder")
    _refused(["export", str(bundle / "model.pt"), "--out", str(f), "--force"], "not a folder")
    assert f.read_text() == "mine"


def test_force_replaces_our_own_bundle_and_embed_folder(ckpt, bundle, tmp_path):
    out = tmp_path / "b"
    for _ in range(2):
        r = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(out), "--force"])
        assert r.exit_code == 0, r.output
    embed = tmp_path / "embed"
    for _ in range(2):
        r = CliRunner().invoke(main, ["bundle", str(out), "--target", "python", "--out", str(embed), "--force"])
        assert r.exit_code == 0, r.output
    assert is_ours(out) and is_ours(embed)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["b", "embed"]
    assert not list(tmp_path.glob(".*.tmp-*")) and not list(tmp_path.glob(".*.old-*"))


def test_force_replaces_a_triton_repository_but_refuses_a_hostile_name(bundle, tmp_path):
    """A Triton repository has no manifest.json: its lstm-edge.json carries the tag. The bundle name becomes a
    folder there, so a name edited into the manifest ('../x') is refused instead of escaping the stage."""
    out = tmp_path / "repo"
    for _ in range(2):
        r = CliRunner().invoke(main, ["bundle", str(bundle), "--target", "triton", "--out", str(out), "--force"])
        assert r.exit_code == 0, r.output
    assert is_ours(out) and (out / "tiny" / "config.pbtxt").is_file()
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["name"] = "../../escaped"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _refused(["bundle", str(copy), "--target", "triton", "--out", str(tmp_path / "r2")], "is not a safe name")
    assert not (tmp_path / "r2").exists() and not list(tmp_path.parent.glob("escaped*"))


def test_force_through_a_symlink_replaces_the_target_and_keeps_the_link(ckpt, bundle, tmp_path):
    v3 = tmp_path / "v3"
    shutil.copytree(bundle, v3)
    (v3 / "stale.txt").write_text("from v3")
    current = tmp_path / "current"
    current.symlink_to("v3")
    r = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(current), "--force"])
    assert r.exit_code == 0, r.output
    assert current.is_symlink() and os.readlink(current) == "v3"
    assert not (v3 / "stale.txt").exists() and (v3 / "manifest.json").is_file()  # v3 itself was replaced


def test_without_replace_a_folder_that_appears_meanwhile_is_never_overwritten(tmp_path):
    """Another writer creates --out while we stage: the rename refuses (RENAME_NOREPLACE), theirs stays."""
    target = tmp_path / "out"
    with pytest.raises(LstmEdgeError, match="appeared while writing"):
        with staged_dir(target, replace=False) as stage:
            (stage / "manifest.json").write_text("{}")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_two_concurrent_exports_to_one_new_out(ckpt, tmp_path):
    """Two real processes: one writes the bundle, the other says in one line that it exists; never both."""
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "lstm_edge.cli", "export", str(ckpt), "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(rc for rc, _ in results) == [0, 2], results
    err = next(e for rc, e in results if rc == 2).strip().splitlines()
    assert len(err) == 1 and ("exists" in err[0] or "appeared" in err[0]), err
    assert is_ours(out) and (out / "model.onnx").is_file()


@pytest.mark.parametrize(
    "name", ["</title><script>alert(1)</script>", "..", ".hidden", "a/b", "x" * 65, "", "naïve", "a b"]
)
def test_export_refuses_unsafe_names(ckpt, tmp_path, name):
    out = tmp_path / "b"
    _refused(["export", str(ckpt), "--out", str(out), "--name", name], "is not a safe name")
    assert not out.exists()


def test_export_refuses_an_unsafe_name_taken_from_the_checkpoint(ckpt, tmp_path):
    src = tmp_path / "<img src=x onerror=alert(1)>.pt"
    shutil.copyfile(ckpt, src)
    _refused(["export", str(src), "--out", str(tmp_path / "b")], "--name")
    r = CliRunner().invoke(main, ["export", str(src), "--out", str(tmp_path / "b"), "--name", "tiny-1.0_a"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["name"] == "tiny-1.0_a"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def test_web_target_escapes_a_hostile_manifest_name(bundle, tmp_path):
    """A name edited into the manifest after export (export refuses it) is text in index.html, never markup."""
    if not ORT_WEB.is_dir():
        pytest.skip("onnxruntime-web not installed (make embed-deps)")
    hostile = '</title><script>alert("x")</script><img src=x onerror=alert(1)>'
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["name"] = hostile
    (copy / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "web"
    r = CliRunner().invoke(main, ["bundle", str(copy), "--target", "web", "--out", str(out), "--ort-web", str(ORT_WEB)])
    assert r.exit_code == 0, r.output
    page = _Page()
    page.feed((out / "index.html").read_text())
    assert page.tags.count("script") == 2 and "img" not in page.tags  # ort.wasm.min.js and app.mjs only
    assert page.title == f"lstm-edge · {hostile} in the browser"
    embedded = json.loads((out / "manifest.json").read_text())
    assert embedded["name"] == hostile  # data stays data; app.mjs writes DOM text with textContent only

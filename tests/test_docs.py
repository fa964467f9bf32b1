"""The documentation stays true: the site builds strictly, every relative link lands, every runnable block runs.

Runnable convention: an HTML comment `<!-- runnable -->` on the line just before a fenced block. In a ```console
block the lines starting with `$ ` are the commands and the rest is the output they print, compared line by line with
every number masked (versions and timings differ between machines; the words and the layout must not); a ```python block runs as one script with the venv's python; in any other block every
non-empty line that is not a `#` comment is a command.
Mark only commands that take seconds: the test runs each block with bash, `set -e`, the venv's bin first on PATH.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Pages listed in mkdocs.yml's nav that other branches write (mkdocs.yml's validation.nav.not_found tolerates them).
FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    out, fence = [], None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and (fence is None or m.group(2).startswith(fence)):
            fence = None if fence else m.group(2)
            continue
        if fence is None:
            out.append((n, re.sub(r"`[^`]*`", "", line)))
    return out


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs uses; GitHub's agrees on plain headings)."""
    text = re.sub(r"`|\*\*|\[|\]\([^)]*\)", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for _, line in _prose_lines(page.read_text()) if re.match(r"^#{1,6} ", line)}


def _links() -> list[tuple[str, Path, str]]:
    found = []
    for page in PAGES:
        for n, line in _prose_lines(page.read_text()):
            for target in LINK.findall(line):
                if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                    found.append((f"{page.relative_to(ROOT)}:{n}", page, target))
    return found


@pytest.mark.parametrize(("where", "page", "target"), _links(), ids=[w for w, _, _ in _links()])
def test_relative_link_lands(where: str, page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.is_file(), f"{where}: {target} → {dest} does not exist"
    if anchor and dest.suffix == ".md":
        assert anchor in _anchors(dest), f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}"


def test_every_page_is_linked_and_nav_entries_exist() -> None:
    nav = re.findall(r"^\s*-\s+[^:\n]+:\s+(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert nav, "mkdocs.yml has no nav"
    missing = [p for p in nav if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml nav names pages that do not exist: {missing}"
    unlisted = sorted(p.name for p in DOCS.glob("*.md") if p.name not in nav)
    assert not unlisted, f"pages missing from mkdocs.yml's nav: {unlisted}"


def test_site_builds_strictly(tmp_path: Path) -> None:
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install 'lstm-edge[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    done = subprocess.run([*cmd, "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)*(?:e[-+]?\d+)?")


def _masked(line: str) -> str:
    """A printed line with every number as `#` and runs of spaces as one: what a reader's eye compares."""
    return " ".join(NUMBER.sub("#", line).split())


def _runnable_blocks() -> list[tuple[str, list[str], list[str]]]:
    blocks = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for n, line in enumerate(lines):
            if line.strip() != "<!-- runnable -->":
                continue
            start = FENCE.match(lines[n + 1]) if n + 1 < len(lines) else None
            assert start, f"{page.relative_to(ROOT)}:{n + 1}: <!-- runnable --> must sit just before a fenced block"
            body = []
            for inner in lines[n + 2 :]:
                if inner.strip().startswith(start.group(2)):
                    break
                body.append(inner)
            info = start.group(3).strip()
            if info.startswith("python"):
                cmds = ["python - <<'RUNNABLE_PYTHON'", *body, "RUNNABLE_PYTHON"]
            shown = []
            if info.startswith("console"):
                cmds = [b[2:] for b in body if b.startswith("$ ")]
                shown = [b for b in body if b.strip() and not b.startswith("$ ")]
            elif not info.startswith("python"):
                cmds = [b for b in body if b.strip() and not b.lstrip().startswith("#")]
            blocks.append((f"{page.relative_to(ROOT)}:{n + 2}", cmds, shown))
    return blocks


RUNNABLE = _runnable_blocks()


def test_readme_has_runnable_blocks() -> None:
    assert sum(where.startswith("README.md") for where, _, _ in RUNNABLE) >= 3, (
        "the README's first commands are runnable"
    )


@pytest.mark.parametrize(("where", "cmds", "shown"), RUNNABLE, ids=[w for w, _, _ in RUNNABLE])
def test_runnable_block_runs(where: str, cmds: list[str], shown: list[str], tmp_path: Path) -> None:
    assert cmds, f"{where}: a runnable block with no commands"
    # The commands' paths are the repository root's; they run in a scratch folder that shows its models/, so files a
    # block writes (x.json) never land in the checkout.
    (tmp_path / "models").symlink_to(ROOT / "models")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["TQDM_DISABLE"] = "1"
    script = "set -euo pipefail\n" + "\n".join(cmds) + "\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, (
        f"{where}: exit {done.returncode}\n{script}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
    # A console block's output is what a reader will compare theirs with: every line it shows is printed (numbers
    # aside). The README once showed verify's old header, "worst max scaled error (tolerance)", after it had changed.
    printed = {_masked(line) for line in (done.stdout + done.stderr).splitlines()}
    stale = [line for line in shown if _masked(line) not in printed]
    assert not stale, f"{where}: the block shows lines the commands no longer print: {stale}\n{done.stdout[-2000:]}"

"""The lean install (issue 27 item 6): the built wheel, installed into a fresh venv with only what it declares for
`lstm-edge[cpu]` (no torch, matplotlib, pyarrow, onnxscript or safetensors), runs, streams and verifies the shipped
bundle on ONNX Runtime CPU; a command that needs a missing extra names it in one line (exit 2); ONNX Runtime with
onnxruntime-gpu installed beside it is refused in one line.

Offline: the wheel is built without build isolation, and its dependencies are the distributions already installed
here, linked into the fresh venv — each one the wheel's metadata asks for (base + [cpu], transitively), nothing
else, as `pip install --no-index --find-links` would install from local wheels.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# What the lean install must not hold: each is an extra's (torch, plots, score).
HEAVY = ("torch", "matplotlib", "pyarrow", "onnxscript", "safetensors")


def wheel_requirements(wheel: Path, extras: tuple[str, ...]) -> list[Requirement]:
    """The wheel's Requires-Dist that apply to a plain install with `extras` (this interpreter's markers)."""
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [
        Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines() if line.startswith("Requires-Dist:")
    ]
    return [r for r in reqs if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *extras))]


def closure(reqs: list[Requirement]) -> dict[str, md.Distribution]:
    """Every installed distribution these requirements need, transitively (their own extras' markers honoured)."""
    found: dict[str, md.Distribution] = {}
    todo = [(r, ()) for r in reqs]
    while todo:
        req, _ = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name == "lstm-edge" or name in found:
            continue
        dist = md.distribution(req.name)  # PackageNotFoundError: the environment lacks a declared dependency
        assert req.specifier.contains(dist.version, prereleases=True), (req, dist.version)
        found[name] = dist
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append((sub, ()))
    return found


def link_distributions(dists: dict[str, md.Distribution], site: Path) -> None:
    """Symlink each distribution's top-level files (packages, modules, .dist-info, .libs) into `site`."""
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}
        for top in tops:
            src = base / top
            if src.exists() and not (site / top).exists():
                (site / top).symlink_to(src)


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> dict:
    """A fresh venv holding the built wheel and only the distributions lstm-edge[cpu] declares."""
    tmp = tmp_path_factory.mktemp("lean")
    # Built from a copy of the tree: setuptools writes build/ and *.egg-info beside the sources, which left them in
    # the checkout and raced when two test workers (pytest -n) built at once ("could not delete build/lib/…").
    src = tmp / "src"
    skip = (".git", ".venv", "artifacts", "build", "site", "node_modules", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", src],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert "Warning" not in built.stderr, built.stderr  # pyproject.toml builds with no warnings
    wheel = next((tmp / "dist").glob("lstm_edge-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    deps = tmp / "deps"
    deps.mkdir()
    link_distributions(closure(wheel_requirements(wheel, ("cpu",))), deps)
    (site / "lean-deps.pth").write_text(f"{deps}\n")
    pip = [sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel]
    done = subprocess.run(pip, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {"py": py, "cli": venv / "bin" / "lstm-edge", "deps": deps, "wheel": wheel, "env": env, "tmp": tmp}


def run(lean: dict, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], capture_output=True, text=True, env=lean["env"], cwd=cwd or lean["tmp"])


def test_the_wheel_holds_every_module_of_the_tree(lean):
    """Every .py and data file under lstm_edge/, export/ and runtimes/ is in the wheel, where its import name says."""
    names = set(zipfile.ZipFile(lean["wheel"]).namelist())
    tracked = subprocess.check_output(["git", "ls-files", "lstm_edge", "export", "runtimes"], cwd=ROOT, text=True)
    want = {
        "lstm_edge/" + f if not f.startswith("lstm_edge/") else f
        for f in tracked.split()
        if not f.endswith((".pyc", ".md")) and "__pycache__" not in f
    }
    assert want - names == set()


def test_lean_install_has_no_heavy_extras(lean):
    code = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    assert run(lean, lean["py"], "-c", code).stdout.strip() == "[]"


def test_lean_install_runs_streams_and_verifies_the_shipped_bundle(lean, shipped_bundle):
    code = f"""
import numpy as np, lstm_edge, sys
from lstm_edge.bundle import Bundle
r = lstm_edge.load({str(shipped_bundle)!r})
for case, a in Bundle.open({str(shipped_bundle)!r}).golden().items():
    y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
    assert np.abs(y - a["y"]).max() < 1e-4, case
s = r.stream()
s.state = (a["h0"][:, :1], a["c0"][:, :1])
ys = [s.step(a["x"][0, t]) for t in range(a["x"].shape[1])]
print("ok", r.describe()["runtime"], "torch" in sys.modules)
"""
    done = run(lean, lean["py"], "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "onnxruntime", "False"]
    verified = run(lean, lean["cli"], "verify", shipped_bundle, "--providers", "cpu", "--variants", "fp32", "--quick")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Traceback" not in verified.stderr
    assert "judged against the fp32 ONNX in float64" in verified.stderr  # not read as a proof against PyTorch
    doctor = run(lean, lean["cli"], "doctor")
    assert doctor.returncode == 0 and "torch: not installed" in doctor.stdout, doctor.stdout + doctor.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["run", "{bundle}", "--input", "{x}", "--provider", "torch"], "torch"),
        (["export", "{bundle}/model.pt", "--out", "{tmp}/b"], "torch"),
        (["verify", "{bundle}", "--providers", "cpu", "--variants", "fp32", "--quick", "--plots", "{tmp}/p"], "plots"),
        (["score", "{bundle}", "--input", "{x}", "--output", "{tmp}/pred.parquet"], "score"),
    ],
)
def test_a_missing_extra_is_named_in_one_line(lean, shipped_bundle, args, extra):
    import numpy as np

    x = lean["tmp"] / "x.npy"
    np.save(x, np.zeros((1, 5, 2), np.float32))
    fill = {"bundle": shipped_bundle, "x": x, "tmp": lean["tmp"]}
    done = run(lean, lean["cli"], *(a.format(**fill) for a in args))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"lstm-edge[{extra}]" in lines[0], done.stderr


def test_onnxruntime_beside_onnxruntime_gpu_is_refused_in_one_line(lean, shipped_bundle):
    """pip cannot stop [cpu] and [cuda] being installed together; opening ONNX Runtime then refuses, naming both."""
    ghost = lean["deps"] / "onnxruntime_gpu-1.20.0.dist-info"
    ghost.mkdir()
    (ghost / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.20.0\n")
    try:
        import numpy as np

        np.save(lean["tmp"] / "x.npy", np.zeros((1, 5, 2), np.float32))
        done = run(lean, lean["cli"], "run", shipped_bundle, "--input", lean["tmp"] / "x.npy")
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "onnxruntime-gpu" in lines[0] and "onnxruntime" in lines[0], done.stderr
    finally:
        for f in ghost.iterdir():
            f.unlink()
        ghost.rmdir()

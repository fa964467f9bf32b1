"""`lstm-edge bundle`: a self-contained folder to copy into a Python app, a Node.js service or a web page,
each carrying golden vectors and a program that checks itself against them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from lstm_edge.atomic import staged_dir
from lstm_edge.bundle import MANIFEST, Bundle, entry_verdict
from lstm_edge.config import OUTPUT_NAMES
from lstm_edge.errors import LstmEdgeError
from lstm_edge.tolerances import tolerance

TARGETS = ("python", "node", "web", "triton")
ORT_NODE_VERSION = "1.30.0"
ORT_WEB_VERSION = "1.30.0"
# What ort.wasm.min.js (the WASM-only build) fetches at run time: its loader module and the 14 MB SIMD binary.
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STREAMING_CASE = "b1_t100_random"

READMES = {
    "python": "# {name} in a Python app\n\n```bash\npip install 'lstm-edge[cpu]'\npython example.py   # streams the golden "
    'case one sample at a time and checks it\n```\nIn your app: `runner = lstm_edge.load(this_folder, variant="{variant}")`, '
    "then `stream = runner.stream()` and `y = stream.step(x_t)` per sample.\n",
    "node": "# {name} in a Node.js program\n\n```bash\nONNXRUNTIME_NODE_INSTALL=skip npm install   # the CPU binary ships in "
    "the package\nnpm test                                   # full sequence + step by step vs golden vectors\n```\n"
    "In your service: `ort.InferenceSession.create('{model}')`, feed `x` [batch, seq, {features}] and carry `hn`/`cn` "
    "back in as `h0`/`c0`.\n",
    "web": "# {name} in the browser\n\n```bash\npython3 -m http.server 8000   # any static server; no special headers "
    "needed\n# open http://localhost:8000/ — the page checks itself against the golden vectors\n```\n"
    "ONNX Runtime Web runs single-threaded WASM here (ort.wasm.min.js, its loader .mjs and 14 MB .wasm are in this "
    "folder, so it works offline). Servers must send .mjs as JavaScript and .wasm as application/wasm (all common "
    "ones do).\n",
}


def _write_golden(bundle: Bundle, entry: dict, out: Path, verify_hash: bool = True) -> None:
    """Raw little-endian float32 .bin files and a JSON index of names, shapes and tolerances."""
    (out / "golden").mkdir()
    cases = []
    for name, arrays in bundle.golden(verify_hash).items():
        files = {}
        for key, a in arrays.items():
            fname = f"{name}.{key}.bin"
            np.ascontiguousarray(a, dtype="<f4").tofile(out / "golden" / fname)
            files[key] = {"file": fname, "shape": list(a.shape)}
        cases.append(
            {
                "name": name,
                "arrays": files,
                "streaming": name == STREAMING_CASE,
                "tolerance": {k: tolerance(entry, arrays["x"].shape[1], k) for k in OUTPUT_NAMES},
            }
        )
    index = {
        "format": "lstm-edge/golden",
        "dtype": "float32",
        "byte_order": "little",
        "head": bundle.config.head,
        "error": "max |got - want| / max(1, |want|)",
        "cases": cases,
    }
    (out / "golden" / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def find_ort_web(explicit: str | None = None) -> Path:
    """The onnxruntime-web dist folder: --ort-web, $LSTM_EDGE_ORT_WEB, ./node_modules, or an npm install into a cache."""
    candidates = [Path(p) for p in (explicit, os.environ.get("LSTM_EDGE_ORT_WEB")) if p]
    candidates += [Path("node_modules/onnxruntime-web/dist")]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lstm-edge" / f"ort-web-{ORT_WEB_VERSION}"
    candidates.append(cache / "node_modules" / "onnxruntime-web" / "dist")
    for c in candidates:
        if all((c / f).is_file() for f in ORT_WEB_FILES):
            return c
    if explicit:
        raise LstmEdgeError(
            f"{explicit} lacks {', '.join(ORT_WEB_FILES)}", "point --ort-web at onnxruntime-web's dist/"
        )
    if not shutil.which("npm"):
        raise LstmEdgeError(
            "the web target needs onnxruntime-web and npm is not installed",
            "install Node.js/npm, or pass --ort-web DIR (onnxruntime-web's dist folder)",
        )
    cache.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), f"onnxruntime-web@{ORT_WEB_VERSION}"],
        capture_output=True,
        text=True,
    )
    dist = cache / "node_modules" / "onnxruntime-web" / "dist"
    if r.returncode != 0 or not all((dist / f).is_file() for f in ORT_WEB_FILES):
        raise LstmEdgeError(
            f"npm could not install onnxruntime-web@{ORT_WEB_VERSION}",
            "check network access to the npm registry, or pass --ort-web DIR",
        )
    return dist


def make_embed(
    bundle_path: str | Path,
    target: str,
    out: str | Path,
    variant: str = "fp32",
    force: bool = False,
    ort_web: str | None = None,
    verify_hash: bool = True,
    max_batch: int = 64,
) -> Path:
    if target not in TARGETS:
        raise LstmEdgeError(f"unknown target {target!r}", f"choose one of {', '.join(TARGETS)}")
    if variant not in ("fp32", "int8"):
        raise LstmEdgeError(f"--variant {variant}", "embedding targets take fp32 or int8")
    bundle = Bundle.open(bundle_path)
    entry = bundle.entry(variant)
    model_path = bundle.artifact(variant, verify_hash)
    out = Path(out)
    if out.exists() and not force:
        raise LstmEdgeError(f"{out} already exists", "pass --force to replace it, or choose another --out")
    dist = find_ort_web(ort_web) if target == "web" else None
    templates = resources.files("lstm_edge") / "templates"
    if target == "triton":  # a Triton model repository: its own layout (lstm_edge/triton.py)
        from lstm_edge.triton import write_triton_repo

        with staged_dir(out) as stage:
            write_triton_repo(bundle, variant, model_path, stage, max_batch)
        return out
    with staged_dir(out) as stage:
        shutil.copyfile(model_path, stage / model_path.name)
        slim = {k: v for k, v in entry.items() if k != "report"}
        manifest = {k: v for k, v in bundle.manifest.items() if k not in ("artifacts", "validation")}
        manifest["artifacts"] = {variant: slim}
        manifest["embed"] = {
            "target": target,
            "variant": variant,
            "model": model_path.name,
            "deployable": bool(entry.get("deployable", True)),
            "verdict": entry_verdict(entry),
            "golden": "golden/index.json",
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _write_golden(bundle, entry, stage, verify_hash)
        readme = READMES[target].format(
            name=bundle.name, variant=variant, model=model_path.name, features=bundle.config.input_size
        )
        (stage / "README.md").write_text(readme)
        if target == "python":
            (stage / "example.py").write_text((templates / "example.py").read_text())
        if target in ("node", "web"):
            (stage / "parity.mjs").write_text((templates / "parity.mjs").read_text())
        if target == "node":
            (stage / "check.mjs").write_text((templates / "check.mjs").read_text())
            package = {
                "name": f"{bundle.name}-lstm-edge",
                "version": "1.0.0",
                "private": True,
                "type": "module",
                "description": f"{bundle.name} LSTM ({variant}) with a golden-vector self-check",
                "scripts": {"test": "node check.mjs"},
                "dependencies": {"onnxruntime-node": ORT_NODE_VERSION},
            }
            (stage / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        if target == "web":
            html = (
                (templates / "index.html").read_text().replace("__NAME__", bundle.name).replace("__VARIANT__", variant)
            )
            (stage / "index.html").write_text(html)
            (stage / "app.mjs").write_text((templates / "app.mjs").read_text())
            for f in ORT_WEB_FILES:
                shutil.copyfile(dist / f, stage / f)
    return out

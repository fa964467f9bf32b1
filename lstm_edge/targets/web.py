"""`lstm-edge bundle --target web`: a static page running onnxruntime-web (single-threaded WASM, shipped in the
folder so it works offline) that checks itself against the golden vectors."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path

from lstm_edge.errors import LstmEdgeError
from lstm_edge.targets.common import TEMPLATES, TargetJob, copy_template, write_app_frame

ORT_WEB_VERSION = "1.30.0"
# What ort.wasm.min.js (the WASM-only build) fetches at run time: its loader module and the 14 MB SIMD binary.
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
README = (
    "# {name} in the browser\n\n```bash\npython3 -m http.server 8000   # any static server; no special headers "
    "needed\n# open http://localhost:8000/ — the page checks itself against the golden vectors\n```\n"
    "ONNX Runtime Web runs single-threaded WASM here (ort.wasm.min.js, its loader .mjs and 14 MB .wasm are in this "
    "folder, so it works offline). Servers must send .mjs as JavaScript and .wasm as application/wasm (all common "
    "ones do).\n"
)


# onnxruntime-web's single-threaded WASM build drifts from the float64 reference over T as tract does, well beyond ORT
# CPU's own allowance: the web page's fp32 bound is ORT CPU's (fp32_tolerance(T, "cpu")) + T × this, the same
# per-step allowance as tract's.
WEB_FP32_DRIFT_PER_STEP = 3.5e-7
WEB_FP32_DRIFT_REASON = (
    "onnxruntime-web 1.30 (WASM, one thread) drifts from the float64 reference over T where ORT CPU does not. "
    "Measured (benchmarks/web_fp32_drift.py, Node.js running the same .wasm, shipped model, B=16, 2 draws): worst "
    "max scaled error of y/hn/cn 1.6e-6/3.1e-6/7.4e-6 at T=100, 3.5e-6/1.7e-5/7.3e-5 at T=300, 1.0e-5/5.2e-5/1.2e-4 "
    "at T=1000 (ORT CPU on the same draws: 2.0e-6, 7.9e-6, 1.2e-5 for cn), i.e. up to 2.1e-7 per step above "
    "FP32_ABS; its Sigmoid and Tanh carry twice ORT CPU's one-signed bias (worst 0.25-wide bin mean 3.5e-8 and "
    "6.0e-8 against 1.8e-8 and 3.1e-8), which a forget gate compounds every step. The golden case b1_t100_random "
    "measured 1.13e-5 in Chromium against a bound of 4.5e-5 at T=100; a real defect (a swapped gate block) is off "
    "by ~1e-1."
)


def web_bounds(index: dict, variant: str) -> dict:
    """golden/index.json with the web page's fp32 bounds: each case's (ORT CPU's) tolerance plus
    T × WEB_FP32_DRIFT_PER_STEP, and "bound" saying why (other variants keep their bounds: int8's recorded profile
    dwarfs the drift)."""
    if variant != "fp32":
        return index
    time_axis = 1 if index.get("layout", "batch_first") == "batch_first" else 0
    for case in index["cases"]:
        steps = case["arrays"]["x"]["shape"][time_axis]
        case["tolerance"] = {k: v + steps * WEB_FP32_DRIFT_PER_STEP for k, v in case["tolerance"].items()}
    return index | {"bound": {"per_step": WEB_FP32_DRIFT_PER_STEP, "reason": WEB_FP32_DRIFT_REASON}}


def find_ort_web(explicit: str | None = None) -> Path:
    """The onnxruntime-web dist folder: --ort-web, $LSTM_EDGE_ORT_WEB, ./node_modules, or an npm install into a cache.

    Raises LstmEdgeError where `explicit` lacks the files, npm is missing, or the npm install fails.
    """
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


def write_web(job: TargetJob) -> None:
    """Fill job.stage with the app frame, index.html, app.mjs, parity.mjs and onnxruntime-web's files.

    Raises LstmEdgeError where onnxruntime-web cannot be found or installed (find_ort_web).
    """
    dist = find_ort_web(job.ort_web)
    write_app_frame(job, "web", README)
    golden = job.stage / "golden" / "index.json"
    golden.write_text(json.dumps(web_bounds(json.loads(golden.read_text()), job.variant), indent=1) + "\n")
    copy_template(job, "parity.mjs")
    # The name comes from a manifest anyone can edit: escaped, it is text in the page, never markup.
    page = (
        (TEMPLATES / "index.html")
        .read_text()
        .replace("__NAME__", html.escape(str(job.bundle.name)))
        .replace("__VARIANT__", html.escape(job.variant))
    )
    (job.stage / "index.html").write_text(page)
    copy_template(job, "app.mjs")
    for f in ORT_WEB_FILES:
        shutil.copyfile(dist / f, job.stage / f)

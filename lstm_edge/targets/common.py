"""What every bundle target shares: the Target entry and the job a writer gets, the checks made before anything is
written, and the embed folder's frame (the model file, a slim manifest, golden vectors as raw .bin files, README)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from lstm_edge.bundle import MANIFEST, Bundle, entry_verdict
from lstm_edge.runtimes.self_check import STREAMING_CASE
from lstm_edge.tolerances import tolerance

# STREAMING_CASE (runtimes.self_check): the golden case an app streams one step at a time, as every self-check does.
TEMPLATES = resources.files("lstm_edge") / "templates"
# A bundle without state I/O (the model's own forward exported whole, or a stateless import): said in its README.
WHOLE_SEQUENCES = (
    "\nThis model was exported as a whole graph (x → y, no state inputs or outputs): it runs whole sequences only "
    "(`runner.run(x)`, or one session.run per sequence), so the checks here run each golden case whole; it cannot "
    "stream one sample at a time.\n"
)


@dataclass(frozen=True)
class TargetJob:
    """One `lstm-edge bundle` run as a target writer sees it: the opened bundle, the chosen variant's manifest entry
    and model file, and `stage`, the empty staged folder that becomes --out when the writer returns."""

    bundle: Bundle
    variant: str
    entry: dict
    model_path: Path
    stage: Path
    verify_hash: bool = True
    ort_web: str | None = None  # web: onnxruntime-web's dist folder (None: found or npm-installed)
    max_batch: int = 64  # triton: max_batch_size


@dataclass(frozen=True)
class Target:
    """One bundle target, registered once in lstm_edge.targets.TARGETS.

    name: the --target value; summary: one line for CLI help and docs; write: fills job.stage (raises LstmEdgeError
    for a model the target cannot take); variants: the bundle variants it takes; needs: what the destination must
    have installed to run and check the folder.
    """

    name: str
    summary: str
    write: Callable[[TargetJob], None]
    variants: tuple[str, ...]
    needs: str


def io_names(bundle: Bundle) -> tuple[list[str], list[str]]:
    """The graph's input and output names in order: the manifest's io (a whole graph exported from the model's own
    forward, or a stateless import, takes x alone and gives y) or, for a manifest without io, the config's."""
    io = bundle.manifest.get("io") if isinstance(bundle.manifest.get("io"), dict) else {}
    names = [[p["name"] for p in io.get(k, []) if isinstance(p, dict) and "name" in p] for k in ("inputs", "outputs")]
    if not all(names):
        return list(bundle.config.input_names), list(bundle.config.output_names)
    return names[0], names[1]


def write_embed_manifest(job: TargetJob, target: str, model: str, golden: str = "golden/index.json") -> None:
    """The bundle's manifest, slimmed to this variant (no reports, no other artifacts), with an `embed` section
    naming the target, the model file and the golden index. Its format tag makes the folder ours to --force."""
    slim = {k: v for k, v in job.entry.items() if k != "report"}
    manifest = {k: v for k, v in job.bundle.manifest.items() if k not in ("artifacts", "validation")}
    manifest["artifacts"] = {job.variant: slim}
    manifest["embed"] = {
        "target": target,
        "variant": job.variant,
        "model": model,
        "deployable": bool(job.entry.get("deployable", True)),
        "verdict": entry_verdict(job.entry),
        "golden": golden,
    }
    (job.stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def write_golden(job: TargetJob) -> None:
    """golden/: raw little-endian .bin files (float32; token ids and lengths int64) and index.json naming each
    case's arrays (file, shape, dtype), the model's inputs and outputs in order, its layout, and tolerances."""
    out = job.stage / "golden"
    out.mkdir()
    config = job.bundle.config
    inputs, outputs = io_names(job.bundle)
    streams = config.streamable and job.bundle.stateful  # whole sequences only without state I/O
    cases = []
    for name, arrays in job.bundle.golden(job.verify_hash).items():
        files = {}
        for key, a in arrays.items():
            fname = f"{name}.{key}.bin"
            dtype = "int64" if a.dtype.kind in "iu" else "float32"
            np.ascontiguousarray(a, dtype="<i8" if dtype == "int64" else "<f4").tofile(out / fname)
            files[key] = {"file": fname, "shape": list(a.shape), "dtype": dtype}
        T = arrays["x"].shape[1 if config.batch_first else 0]
        cases.append(
            {
                "name": name,
                "arrays": files,
                # Streaming checks need every sequence at full length and a unidirectional model.
                "streaming": name == STREAMING_CASE and streams,
                # every target runs ONNX Runtime's CPU kernels (python, node, triton; the web page adds its WASM
                # drift on top, web.py): ORT CPU's bound, so a folder refuses where `lstm-edge run` does
                "tolerance": {k: tolerance(job.entry, T, k, "cpu") for k in outputs},
            }
        )
    index = {
        "format": "lstm-edge/golden",
        "dtype": "float32",
        "byte_order": "little",
        "head": config.head,
        "inputs": inputs,
        "outputs": outputs,
        "layout": "batch_first" if config.batch_first else "time_major",
        "error": "max |got - want| / max(1, |want|)",
        "cases": cases,
    }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def write_app_frame(job: TargetJob, target: str, readme: str) -> None:
    """What an app folder (python, node, web) holds besides its program: the variant's model file, the slim
    manifest, the golden vectors, and README.md from `readme` (a template with {name}, {variant}, {model},
    {features})."""
    model = job.model_path.name
    shutil.copyfile(job.model_path, job.stage / model)
    write_embed_manifest(job, target, model)
    write_golden(job)
    text = readme.format(name=job.bundle.name, variant=job.variant, model=model, features=job.bundle.config.input_size)
    if not job.bundle.stateful:
        text += WHOLE_SEQUENCES
    (job.stage / "README.md").write_text(text)


def copy_template(job: TargetJob, name: str) -> None:
    """Copy lstm_edge/templates/`name` into the stage unchanged."""
    (job.stage / name).write_text((TEMPLATES / name).read_text())

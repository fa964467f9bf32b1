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
from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.self_check import STREAMING_CASE
from lstm_edge.tolerances import tolerance

# STREAMING_CASE (runtimes.self_check): the golden case an app streams one step at a time, as every self-check does.
TEMPLATES = resources.files("lstm_edge") / "templates"


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


def open_streamable(bundle_path: str | Path) -> Bundle:
    """The bundle at `bundle_path`, opened. Raises LstmEdgeError where it cannot be opened, or where its state is
    not a graph input: every target checks itself streaming step by step."""
    bundle = Bundle.open(bundle_path)
    if not bundle.stateful:  # an imported model (or a fallback export) whose state is not a graph input
        raise LstmEdgeError(
            f"{bundle.name}'s state is not a graph input (a stateless import, or an export of the model's own forward), "
            "and every target checks itself streaming step by step",
            "run it whole-sequence with `lstm-edge run`; re-import a foreign model with state I/O: lstm-edge import "
            "MODEL.onnx --out BUNDLE --rebuild",
        )
    return bundle


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
                "streaming": name == STREAMING_CASE and config.streamable,
                "tolerance": {k: tolerance(job.entry, T, k) for k in config.output_names},
            }
        )
    index = {
        "format": "lstm-edge/golden",
        "dtype": "float32",
        "byte_order": "little",
        "head": config.head,
        "inputs": list(config.input_names),
        "outputs": list(config.output_names),
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
    (job.stage / "README.md").write_text(text)


def copy_template(job: TargetJob, name: str) -> None:
    """Copy lstm_edge/templates/`name` into the stage unchanged."""
    (job.stage / name).write_text((TEMPLATES / name).read_text())

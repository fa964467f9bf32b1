"""Writing manifest.json: every artifact with its path, sha256, bytes, precision and opset."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import onnx
import torch

from lstm_edge import __version__
from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import FORMAT, FORMAT_VERSION, MANIFEST
from lstm_edge.config import C0, CN, H0, HN, LENGTHS, X, Y
from lstm_edge.model import ModelConfig


def producers() -> dict[str, str]:
    """Versions of what wrote the bundle: lstm_edge, torch, onnx, python, and onnxruntime where installed."""
    versions = {
        "lstm_edge": __version__,
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }
    try:
        import onnxruntime  # deferred: an optional extra, and heavy to import

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def artifact_entry(root: Path, rel: str, precision: str, opset: int | None = None, **extra) -> dict:
    """The manifest entry of the file `rel` under `root`: path, sha256, bytes, precision, opset if given, and
    `extra` keys as they are."""
    path = root / rel
    entry = {"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size, "precision": precision}
    if opset is not None:
        entry["opset"] = opset
    entry.update(extra)
    return entry


def io_spec(config: ModelConfig) -> dict:
    """Names, shapes and dtypes of the graph's inputs and outputs, in the model's own layout."""
    LD, f32 = config.num_layers * config.num_directions, "float32"
    axes = ["batch", "seq"] if config.batch_first else ["seq", "batch"]
    x = {"name": X, "shape": axes, "dtype": "int64"} if config.vocab_size else {
        "name": X, "shape": [*axes, config.input_size], "dtype": f32}  # fmt: skip
    y = ["batch", config.output_size] if config.head in ("last", "final") else [*axes, config.output_size]
    widths = {H0: config.state_size, C0: config.hidden_size}
    states = [n for n in (H0, C0) if n in config.input_names]
    return {
        "layout": "batch_first" if config.batch_first else "time_major",
        "inputs": [x]
        + ([{"name": LENGTHS, "shape": ["batch"], "dtype": "int64"}] if config.lengths else [])
        + [{"name": n, "shape": [LD, "batch", widths[n]], "dtype": f32} for n in states],
        "outputs": [{"name": Y, "shape": y, "dtype": f32}]
        + [
            {"name": o, "shape": [LD, "batch", widths[i]], "dtype": f32} for i, o in ((H0, HN), (C0, CN)) if i in states
        ],
    }


def new_manifest(name: str, config: ModelConfig, source_sha256: str, gate_layout: str) -> dict:
    """A bundle's manifest before its artifacts are added: format, name, config and spec, streaming, I/O, gate
    layout, normalization, producers and the source checkpoint's sha256."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": config.to_dict(),
        "spec": config.describe(),
        "streaming": config.streamable,  # bidirectional models need the whole sequence (SEAMS item 5)
        "io": io_spec(config),
        "gate_layout": gate_layout,
        "normalization": {k: getattr(config, k) for k in ("x_mean", "x_std", "y_mean", "y_std")},
        "producers": producers(),
        "source_checkpoint_sha256": source_sha256,
        "artifacts": {},
    }


def write_manifest(root: Path, manifest: dict) -> None:
    """Written in place inside a staged folder; the folder's rename makes it atomic."""
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

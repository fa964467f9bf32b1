"""Writing manifest.json: every artifact with its path, sha256, bytes, precision and opset."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from lstm_edge import __version__
from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import FORMAT, FORMAT_VERSION, MANIFEST
from lstm_edge.model import ModelConfig


def producers() -> dict[str, str]:
    import onnx
    import torch

    versions = {
        "lstm_edge": __version__,
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def artifact_entry(root: Path, rel: str, precision: str, opset: int | None = None, **extra) -> dict:
    path = root / rel
    entry = {"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size, "precision": precision}
    if opset is not None:
        entry["opset"] = opset
    entry.update(extra)
    return entry


def io_spec(config: ModelConfig) -> dict:
    L, H = config.num_layers, config.hidden_size
    y = ["batch", "seq", config.output_size] if config.head == "sequence" else ["batch", config.output_size]
    f32 = "float32"
    return {
        "inputs": [
            {"name": "x", "shape": ["batch", "seq", config.input_size], "dtype": f32},
            {"name": "h0", "shape": [L, "batch", H], "dtype": f32},
            {"name": "c0", "shape": [L, "batch", H], "dtype": f32},
        ],
        "outputs": [
            {"name": "y", "shape": y, "dtype": f32},
            {"name": "hn", "shape": [L, "batch", H], "dtype": f32},
            {"name": "cn", "shape": [L, "batch", H], "dtype": f32},
        ],
    }


def new_manifest(name: str, config: ModelConfig, source_sha256: str, gate_layout: str) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": config.to_dict(),
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

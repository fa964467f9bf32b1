"""The .pt format: one dict, loadable with torch.load(weights_only=True) — it never unpickles code."""

from __future__ import annotations

import datetime as _dt
import io
import platform
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from lstm_edge import limits
from lstm_edge.atomic import atomic_write_bytes
from lstm_edge.bundle import check_config_sizes
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.model import LSTMModel, ModelConfig
from lstm_edge.version import __version__

FORMAT = "lstm-edge/checkpoint"
FORMAT_VERSION = 1


def provenance(seed: int | None = None) -> dict[str, Any]:
    """Where a checkpoint came from: lstm-edge, torch and Python versions, the seed, and the UTC date."""
    return {
        "lstm_edge": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def save_checkpoint(
    model: LSTMModel, path: str | Path, metrics: dict | None = None, training: dict | None = None
) -> Path:
    """Write `model` (its config and a CPU copy of its weights) with `metrics` and `training` to `path`, atomically,
    as lstm-edge's checkpoint format. Returns the path.

    Raises LstmEdgeError where the folder is not writable."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "metrics": metrics or {},
        "training": training or provenance(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(Path(path), buf.getvalue())


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """The checkpoint dict, validated. Any unreadable or foreign file becomes one LstmEdgeError.

    Raises LstmEdgeError for a missing file, a folder, a file over the size limit, or one that is not an lstm-edge
    checkpoint (or needs trust_pickle to load)."""
    path = Path(path)
    if not path.exists():
        raise LstmEdgeError(f"checkpoint not found: {path}", "check the path, or train one with `lstm-edge train`")
    if not path.is_file():
        raise LstmEdgeError(f"{path} is a directory, not a checkpoint file", "pass the .pt file inside it")
    if path.stat().st_size == 0:
        raise LstmEdgeError(f"{path} is empty", "re-create it with `lstm-edge train`")
    limits.check_file_size(path, limits.MAX_ARTIFACT_BYTES, "the checkpoint", "lstm-edge checkpoints are far smaller")
    if not _is_zip(path):
        # torch.save has written zip archives since 1.6; anything else is random bytes or a legacy pickle.
        raise LstmEdgeError(
            f"{path} is not a readable PyTorch checkpoint (not a torch.save zip archive)",
            "the file is corrupt or of another format; re-create it with `lstm-edge train`",
        )
    try:
        with warnings.catch_warnings():  # a corrupt file makes torch warn about pickle protocols: one error is enough
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as e:
        raise LstmEdgeError(
            f"{path} is not a readable PyTorch checkpoint ({type(e).__name__})",
            "the file is truncated or corrupt; re-create it with `lstm-edge train`",
        ) from e
    except Exception as e:  # weights_only refuses pickled code with UnpicklingError and friends
        if "weights_only" in str(e) or "Unpickl" in type(e).__name__:
            raise LstmEdgeError(
                f"{path} contains pickled Python objects, which can run code when loaded",
                "save a state_dict checkpoint, or pass --trust-pickle if you trust its author",
            ) from e
        raise LstmEdgeError(f"{path} could not be loaded ({type(e).__name__}: {e})".splitlines()[0]) from e
    if isinstance(payload, torch.nn.Module) and trust_pickle:
        return _from_module(payload)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LstmEdgeError(
            f"{path} is not an lstm-edge checkpoint (no '{FORMAT}' format tag)",
            "train with `lstm-edge train`, or export an nn.Module through the Python API",
        )
    _check_fields(payload, path)
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise LstmEdgeError(
            f"{path} has checkpoint format {payload['format_version']}, newer than this lstm-edge reads",
            "upgrade lstm-edge",
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload["state_dict"].items()):
        raise LstmEdgeError(
            f"{path}: the state_dict holds entries that are not named tensors",
            "the file is corrupt; re-create it with `lstm-edge train`",
        )
    return payload


def _check_fields(payload: dict, path: Path) -> None:
    """The types every reader relies on, checked once at the boundary: format_version an int (a "1" or None made
    `>` raise TypeError), config/state_dict/metrics/training dicts (quantize reads metrics and training)."""
    fix = "re-create it with `lstm-edge train`"
    version = payload.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise LstmEdgeError(f"{path}: format_version is {limits.short_repr(version)}, not a non-negative integer", fix)
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise LstmEdgeError(f"{path} lacks its config or state_dict", fix)
    for key in ("metrics", "training"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise LstmEdgeError(f"{path}: {key} is {limits.short_repr(payload[key])}, not a dict", fix)
    config = (payload.get("training") or {}).get("config")
    if config is not None and not isinstance(config, dict):
        raise LstmEdgeError(f"{path}: training.config is {limits.short_repr(config)}, not a dict", fix)


def check_finite_weights(state_dict: dict[str, torch.Tensor], origin: str) -> None:
    """LstmEdgeError naming the first tensor holding NaN or ±Inf: such a model is the user's to fix (a diverged
    training run), not an exporter bug that validation would report later as a parity failure (exit 1).

    Raises LstmEdgeError for the first non-finite tensor (`origin` names the file)."""
    for name, t in state_dict.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise LstmEdgeError(
                f"{origin}: weight {name} {tuple(t.shape)} holds {nan} NaN and {inf} ±Inf of its {t.numel()} values "
                "(the model itself, not the export)",
                "the training diverged or the file is damaged; retrain or restore an earlier checkpoint",
            )


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, OSError, ValueError):  # is_zipfile itself raises on some corrupt end records
        return False


def _from_module(module: torch.nn.Module) -> dict[str, Any]:
    if not isinstance(module, LSTMModel):
        raise LstmEdgeError(
            f"the pickled module is a {type(module).__name__}, not an lstm-edge LSTMModel",
            "export it with lstm_edge.export.export_onnx(module, example_input) from Python",
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": module.config.to_dict(),
        "state_dict": module.state_dict(),
        "metrics": {},
        "training": {},
    }


def load_checkpoint(path: str | Path, trust_pickle: bool = False) -> tuple[LSTMModel, ModelConfig]:
    """The model (eval mode, float32, nn.LSTM inside) and its config.

    Raises LstmEdgeError for what read_checkpoint refuses, non-finite weights, or a config and weights that do
    not fit together."""
    payload = read_checkpoint(path, trust_pickle=trust_pickle)
    check_finite_weights(payload["state_dict"], str(path))
    try:
        config = ModelConfig.from_dict(payload["config"])
        check_config_sizes(config, f"{path}: the config", "re-create the checkpoint with `lstm-edge train`")
        model = LSTMModel(config)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError, IndexError) as e:
        raise LstmEdgeError(
            f"{path}: config and weights do not fit together ({first_line(e, 160)})",
            "re-create the checkpoint with `lstm-edge train`",
        ) from e
    return model.eval(), config

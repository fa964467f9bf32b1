"""Reading a user's model file safely: which format it is, what loading it can execute, and the tensors inside.

A reader never guesses structure (that is lstm_edge.intake.recognize); it returns named tensors and, where the file
carries one, the user's own forward. What each format can execute when loaded:

| format | recognized by | loaded with | can run code? |
|---|---|---|---|
| state_dict / checkpoint dict (`torch.save(model.state_dict())`, tutorial and Lightning dicts) | zip with `data.pkl` | `torch.load(weights_only=True)` | no: a restricted unpickler that builds only tensors and containers |
| safetensors | 8-byte header length + JSON header | `safetensors.torch.load_file` | no: a header and raw bytes |
| lstm-edge checkpoint | the dict's `format` tag | `torch.load(weights_only=True)` | no |
| pickled whole module (`torch.save(model)`) | `weights_only` refuses it | `torch.load(weights_only=False)`, only with `--trust-pickle` | **yes**: unpickling can run any Python |
| TorchScript (`torch.jit.script/trace(...).save`) | zip with `code/__torch__…` | `torch.jit.load`, only with `--trust-pickle`; without it, its weights are read as data (lstm_edge.intake.torchscript) | **yes**: no Python, but `__setstate__` and the forward are TorchScript code from the file, run by the TorchScript interpreter (any registered torch operator, `torch.from_file` included) |
| torch.export (`torch.export.save`, `.pt2`) | zip with `archive_format` / `models/*.json` | `torch.export.load`, only with `--trust-pickle`; without it, its raw weight records are read as data (lstm_edge.intake.torchscript) | **yes**: torch unpickles its weights and constants with `weights_only=False` |
"""

from __future__ import annotations

import contextlib
import importlib.util
import pickle
import re
import struct
import sys
import types
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lstm_edge import limits
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.intake.code_forward import module_from_code
from lstm_edge.intake.torchscript import exported_program_weights, torchscript_weights
from lstm_edge.limits import check_model_path

CHECKPOINT_FORMAT = "lstm-edge/checkpoint"  # lstm_edge.checkpoint.FORMAT (not imported: the reader stays torch-only)
# Prefixes wrappers add to every key: DataParallel/DistributedDataParallel (`module.`), Lightning (`model.`).
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")  # _orig_mod.: torch.compile
# Said where a module (pickled or TorchScript) was saved in train() mode: export runs it in eval(), as deployed.
TRAIN_MODE_NOTE = "note: the module was saved in train() mode; exported in eval() mode: dropout off, as deployed"
UNTRUSTED_SCRIPT = (
    "its TorchScript forward was not run (it is code from the file: pass --trust-pickle to run it); "
    "read as weights only"
)
UNTRUSTED_PT2 = (
    "its program was not loaded (torch.export.load unpickles with weights_only=False: pass --trust-pickle to run "
    "it); read as weights only"
)
_RECURRENT_KEY = re.compile(r"(^|\.)weight_hh(_l\d+(_reverse)?)?$")  # an nn.LSTM/GRU, or a cell (LSTMCell)


@dataclass
class ModelFile:
    """What a reader found in a file.

    format: a human name for it ("state_dict", "safetensors", "pickled module", "TorchScript archive",
    "torch.export program", "lstm-edge checkpoint"). state_dict: every named tensor, wrapper prefixes stripped.
    forward: the user's own forward (x [B, T, F] → y or (y, …)) when the file has one, else None. module: the
    Python nn.Module (pickled files only): the torch.onnx fallback needs Python code, not a TorchScript graph.
    static_shape: (B, T, …) for a .pt2, whose exported forward only accepts the shape it was exported at.
    """

    path: Path
    format: str
    state_dict: dict[str, Tensor]
    forward: Callable[..., Any] | None = None
    module: nn.Module | None = None
    where: str = ""  # "under 'model_state_dict'" when the weights were nested in a bigger dict
    stripped: str = ""  # the wrapper prefix removed from every key
    static_shape: tuple[int, ...] | None = None
    checkpoint: dict | None = None  # lstm-edge's own payload
    notes: list[str] = field(default_factory=list)


def read_model(path: str | Path, trust_pickle: bool = False, code: str | Path | None = None) -> ModelFile:
    """Identify and load a model file. Raises LstmEdgeError (one line: the format it is and what to do) for any
    file that cannot be read, and for formats that can run code unless `trust_pickle`.

    code: a Python file defining the user's classes, imported first (as its own module name, and consulted for
    classes pickled from `__main__`, where a class defined in a training script lives)."""
    path = Path(path)
    check_model_path(path)
    size = path.stat().st_size
    if code is not None and not trust_pickle:
        raise LstmEdgeError("--code imports and runs a Python file", "pass --trust-pickle with it if you trust it")
    head = path.open("rb").read(64)
    if _is_safetensors(path, head, size):
        return _read_safetensors(path)
    members = _zip_members(path)
    if members is None:
        if head.startswith(b"\x80"):  # a pickle outside a zip: pre-1.6 torch.save (weights_only reads it) or plain
            return _read_torch_save(path, trust_pickle, code)
        _refuse_unknown(path, head)
    if any(re.search(r"(^|/)code/__torch__", m) for m in members):
        return _read_torchscript(path, trust_pickle)
    if any(m.endswith("archive_format") or re.search(r"(^|/)models/[^/]+\.json$", m) for m in members):
        return _read_exported_program(path, trust_pickle)
    if any(m.endswith("data.pkl") for m in members):
        return _read_torch_save(path, trust_pickle, code)
    if any(m.endswith(".npy") for m in members):
        raise LstmEdgeError(f"{path} is a NumPy .npz archive, not a model", "pass the model file (.pt/.safetensors)")
    if any(m.endswith("model.weights.h5") or m == "config.json" for m in members):
        raise LstmEdgeError(f"{path} is a Keras model, not a PyTorch one", "lstm-edge exports PyTorch models")
    raise LstmEdgeError(
        f"{path} is a zip archive but not one PyTorch writes (no data.pkl, TorchScript code or .pt2 program)",
        "pass a file written by torch.save, torch.jit.save or torch.export.save",
    )


# ---- format detection ------------------------------------------------------------------------------------------
def _is_safetensors(path: Path, head: bytes, size: int) -> bool:
    """safetensors: u64 little-endian header length N, then N bytes of JSON starting with '{'."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _zip_members(path: Path) -> list[str] | None:
    """The member names of a zip, None for a file that is not one. Raises LstmEdgeError for a zip this reader
    cannot open (a newer zip version or method: zipfile's NotImplementedError) or one that would inflate past
    limits.MAX_MODEL_FILE_BYTES or like a zip bomb (checked from its directory, before torch inflates anything)."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):  # corrupt end records raise several kinds
        return None
    except NotImplementedError as e:  # "zip file version 6.4": a header zipfile (and torch) cannot read
        raise LstmEdgeError(
            f"{path} is a zip archive this reader cannot open ({first_line(e, 80)})",
            "save the model again with torch.save (it writes plain zip archives)",
        ) from e
    limits.check_zip_sizes(
        infos,
        str(path),
        limits.MAX_MODEL_FILE_BYTES,
        "check the file; save it again with torch.save(model.state_dict())",
    )
    return [i.filename for i in infos]


def _refuse_unknown(path: Path, head: bytes) -> None:
    """Raise the one line naming what the file is (or that it is none of the formats read here)."""
    if head.startswith(b"PK"):
        raise LstmEdgeError(
            f"{path} is not a readable PyTorch checkpoint: it starts as a zip archive but has no end record",
            "the file is truncated or corrupt; save or copy it again",
        )
    named = {b"\x89HDF": "an HDF5 file (Keras .h5?)", b"GGUF": "a GGUF file (llama.cpp)"}
    if path.suffix == ".onnx":
        raise LstmEdgeError(
            f"{path} looks like an ONNX model, not a PyTorch file",
            "run it with `lstm-edge run`, or export from the PyTorch model it came from",
        )
    for magic, what in named.items():
        if head.startswith(magic):
            raise LstmEdgeError(f"{path} is {what}, not a PyTorch model", "lstm-edge exports PyTorch models")
    raise LstmEdgeError(
        f"{path} is not a readable PyTorch checkpoint (neither a torch.save archive, safetensors, TorchScript nor .pt2)",
        "check the file; save it with torch.save(model.state_dict(), PATH) or safetensors",
    )


# ---- readers -----------------------------------------------------------------------------------------------------
def _read_safetensors(path: Path) -> ModelFile:
    try:
        from safetensors.torch import load_file  # deferred: safetensors.torch imports torch
    except ImportError as e:  # a dependency, so only a broken install gets here
        raise LstmEdgeError("reading safetensors needs the safetensors package", "pip install safetensors") from e
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises SafetensorError (its own type) for a bad header or short data
        raise LstmEdgeError(
            f"{path} is a safetensors file that cannot be read ({first_line(e, 160)})",
            "the file is truncated or corrupt; save it again",
        ) from e
    sd, stripped = _strip_wrappers(dict(tensors))
    return ModelFile(path, "safetensors", sd, stripped=stripped)


def _read_torchscript(path: Path, trust_pickle: bool) -> ModelFile:
    if not trust_pickle:  # torch.jit.load runs the file's __setstate__, and its forward is code: weights only
        sd, stripped = _strip_wrappers(torchscript_weights(path))
        return ModelFile(
            path, "TorchScript archive (read as weights only)", sd, stripped=stripped, notes=[UNTRUSTED_SCRIPT]
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch.jit raises RuntimeError with a C++ trace
        raise LstmEdgeError(
            f"{path} is a TorchScript archive that torch.jit.load cannot load ({first_line(e, 160)})",
            "save it again with the same torch version, or save model.state_dict() instead",
        ) from e
    notes = [TRAIN_MODE_NOTE] if module.training else []
    module.eval()
    sd, stripped = _strip_wrappers({k: v.detach() for k, v in module.state_dict().items()})
    return ModelFile(path, "TorchScript archive", sd, forward=module, stripped=stripped, notes=notes)


def _read_exported_program(path: Path, trust_pickle: bool) -> ModelFile:
    if not trust_pickle:  # torch.export.load unpickles with weights_only=False: read the raw weights only
        sd, stripped = _strip_wrappers(exported_program_weights(path))
        return ModelFile(
            path, "torch.export program (read as weights only)", sd, stripped=stripped, notes=[UNTRUSTED_PT2]
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as e:  # serde raises several kinds
        raise LstmEdgeError(
            f"{path} is a torch.export program that torch.export.load cannot load ({first_line(e, 160)})",
            "save it again with this torch version, or save model.state_dict() instead",
        ) from e
    user_inputs = set(program.graph_signature.user_inputs)
    shapes = [
        tuple(int(d) for d in n.meta["val"].shape)
        for n in program.graph.nodes
        if n.op == "placeholder" and n.name in user_inputs and hasattr(n.meta.get("val"), "shape")
    ]
    sd, stripped = _strip_wrappers({k: v.detach() for k, v in program.state_dict.items()})
    return ModelFile(
        path,
        "torch.export program",
        sd,
        forward=program.module(),
        stripped=stripped,
        static_shape=shapes[0] if len(shapes) == 1 else None,
    )


def _read_torch_save(path: Path, trust_pickle: bool, code: str | Path | None) -> ModelFile:
    try:
        payload = _torch_load(path, weights_only=True)
    except _PickledObjects as e:
        if not trust_pickle:
            raise LstmEdgeError(
                f"{path} contains pickled Python objects (a whole nn.Module?), which can run code when loaded",
                "save model.state_dict() instead, or pass --trust-pickle (and --code FILE.py defining its class) "
                "if you trust its author",
            ) from e
        payload = _load_pickled(path, code)
    if isinstance(payload, nn.Module):
        notes = [TRAIN_MODE_NOTE] if payload.training else []
        module = payload.eval()
        sd, stripped = _strip_wrappers({k: v.detach() for k, v in module.state_dict().items()})
        return ModelFile(path, "pickled module", sd, forward=module, module=module, stripped=stripped, notes=notes)
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return ModelFile(path, "lstm-edge checkpoint", {}, checkpoint=payload)
    found = _find_state_dict(payload)
    if found is None:
        kind = type(payload).__name__
        raise LstmEdgeError(
            f"{path} holds a {kind} with no recurrent weights (no weight_hh_l0 anywhere inside)",
            "lstm-edge exports LSTM/GRU models: save one's state_dict with torch.save(model.state_dict(), PATH)",
        )
    where, sd = found
    raw = sd
    sd, stripped = _strip_wrappers(sd)
    if code is not None:  # --code: its class, built and loaded with these weights, gives the user's own forward
        module = module_from_code(_import_code(Path(code)), [raw, sd])
        return ModelFile(path, f"state_dict + --code {type(module).__name__}", sd, module, module, where, stripped)
    return ModelFile(path, "state_dict", sd, where=where, stripped=stripped)


class _PickledObjects(Exception):
    pass


def _torch_load(path: Path, weights_only: bool, pickle_module: Any = None) -> Any:
    kwargs = {"pickle_module": pickle_module} if pickle_module is not None else {}
    try:
        with warnings.catch_warnings():  # a corrupt file makes torch warn about pickle protocols: one error is enough
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=weights_only, **kwargs)
    except pickle.UnpicklingError as e:
        if weights_only:
            raise _PickledObjects(str(e)) from e
        raise LstmEdgeError(f"{path} cannot be unpickled ({first_line(e, 160)})", "save it again") from e
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as e:
        if weights_only and "weights_only" in str(e):
            raise _PickledObjects(str(e)) from e
        raise LstmEdgeError(
            f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {first_line(e, 120)})",
            "the file is truncated or corrupt; save or copy it again",
        ) from e
    except (AttributeError, ModuleNotFoundError, ImportError) as e:
        if weights_only:
            raise _PickledObjects(str(e)) from e
        raise LstmEdgeError(
            f"{path} pickles a class that is not importable here ({first_line(e, 160)})",
            "pass --code FILE.py naming the file that defines it, or run from the folder where it lives",
        ) from e
    except Exception as e:
        if weights_only and ("weights_only" in str(e) or "Unpickl" in type(e).__name__):
            raise _PickledObjects(str(e)) from e
        raise LstmEdgeError(f"{path} could not be loaded ({type(e).__name__}: {first_line(e, 160)})") from e


def _load_pickled(path: Path, code: str | Path | None) -> Any:
    """torch.load(weights_only=False) with the user's code importable, as it is when they run `python train.py`."""
    user = _import_code(Path(code)) if code is not None else None

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # A class defined in a training script is pickled as __main__.Name; here __main__ is lstm-edge.
            if module == "__main__" and user is not None and hasattr(user, name):
                return getattr(user, name)
            return super().find_class(module, name)

    shim = types.ModuleType("pickle")
    shim.__dict__.update(pickle.__dict__)
    shim.Unpickler = Unpickler  # type: ignore[attr-defined]
    folders = [Path.cwd()] + ([Path(code).resolve().parent] if code is not None else [])
    with _importable(folders):
        return _torch_load(path, weights_only=False, pickle_module=shim)


def _import_code(code: Path) -> types.ModuleType:
    if not code.is_file():
        raise LstmEdgeError(f"--code {code}: file not found", "pass the .py file that defines the model's class")
    name = code.stem
    spec = importlib.util.spec_from_file_location(name, code)
    if spec is None or spec.loader is None:
        raise LstmEdgeError(f"--code {code} is not a Python file", "pass the .py file that defines the model's class")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # pickles name the class by this module too (`usermodel.Net`)
    with _importable([code.resolve().parent]):
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # the user's code may raise anything
            raise LstmEdgeError(
                f"importing --code {code} failed ({type(e).__name__}: {first_line(e, 160)})",
                "fix the file; keep training code under `if __name__ == '__main__':`",
            ) from e
    return module


@contextlib.contextmanager
def _importable(folders: list[Path]) -> Iterator[None]:
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for f in added:
            sys.path.remove(f)


# ---- finding the weights -----------------------------------------------------------------------------------------
def _is_tensor_dict(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in d.items())


def _find_state_dict(payload: Any, depth: int = 3) -> tuple[str, dict[str, Tensor]] | None:
    """The dict of tensors holding recurrent weights: the payload itself, or one nested under any key
    (state_dict, model_state_dict, model, net, …). Several candidates: the first, in the file's own order."""
    if _is_tensor_dict(payload) and any(_RECURRENT_KEY.search(k) for k in payload):
        return "", dict(payload)
    if not isinstance(payload, dict) or depth == 0:
        return None
    for key, value in payload.items():
        found = _find_state_dict(value, depth - 1)
        if found is not None:
            inner, sd = found
            return f"under '{key}'" + (f" → {inner[6:]}" if inner else ""), sd
    return None


def _strip_wrappers(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Remove prefixes a wrapper put on every key (module., model., _orig_mod.), repeatedly."""
    stripped = ""
    while sd:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in sd)), None)
        if prefix is None:
            break
        sd = {k[len(prefix) :]: v for k, v in sd.items()}
        stripped += prefix
    return sd, stripped

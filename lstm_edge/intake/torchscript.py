"""The weights of a TorchScript archive or a torch.export .pt2, read as data. A TorchScript archive without
torch.jit.load: loading a TorchScript module runs its
`__setstate__` methods, and calling it runs its forward — TorchScript code from the file, which may call any
registered torch operator (`torch.from_file(PATH, shared=True, …).fill_(…)` writes to any file). A file the user did
not trust is read here as data only: its `data.pkl` by a pickle reader that builds nothing but plain records and
tensors, and each tensor's bytes from the archive's `data/` records, sizes checked against the zip directory.
A .pt2 without torch.export.load (which unpickles with weights_only=False): its weights config JSON and raw records.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstm_edge.errors import LstmEdgeError, first_line

_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


_IDENTITY = {"restore_type_tag", "build_intlist", "build_doublelist", "build_boollist", "build_tensorlist"}


def _identity(value: Any, *rest: Any) -> Any:
    return value


class _Record:
    """A scripted module's attributes, as pickled: nothing of its class is run."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(flat: Tensor, offset: int, size: tuple, stride: tuple, *rest: Any) -> Tensor:
    return torch.as_strided(flat, tuple(size), tuple(stride), int(offset))


class _DataOnly(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _Record
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch.jit._pickle" and name in _IDENTITY:
            return _identity
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not a plain record or tensor")

    def persistent_load(self, pid: Any) -> Tensor:
        _, dtype, key, _, numel = pid
        info = self.archive.getinfo(f"{self.prefix}data/{key}")
        width = torch.empty((), dtype=dtype).element_size()
        if info.file_size != int(numel) * width:
            raise pickle.UnpicklingError(f"tensor record {key} holds {info.file_size} bytes, not {numel}×{width}")
        return (
            torch.frombuffer(bytearray(self.archive.read(info)), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        )


def _named_tensors(obj: Any, prefix: str, out: dict[str, Tensor], depth: int = 0) -> None:
    state = obj.state if isinstance(obj, _Record) else None
    if not isinstance(state, dict) or depth > 32:
        return
    for key, value in state.items():
        if isinstance(value, Tensor):
            out[prefix + key] = value.detach().clone()
        elif isinstance(value, _Record):
            _named_tensors(value, f"{prefix}{key}.", out, depth + 1)


def torchscript_weights(path: str | Path) -> dict[str, Tensor]:
    """The named tensor attributes of a TorchScript archive's module tree (its parameters and buffers, keyed as
    module.state_dict() keys them), read as data: no TorchScript code is loaded or run.

    Raises LstmEdgeError (one line) when data.pkl holds anything but records and tensors, or a record's size does
    not match its declared shape."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1)
            with archive.open(pkl) as f:
                root = _DataOnly(f, archive, pkl[: -len("data.pkl")]).load()
    except Exception as e:  # an adversarial data.pkl can raise anything the pickle machine or as_strided raises
        raise LstmEdgeError(
            f"{path}: the weights of this TorchScript archive cannot be read as data ({type(e).__name__}: "
            f"{first_line(e, 160)})",
            "save model.state_dict() instead, or pass --trust-pickle to load it with torch.jit.load if you trust it",
        ) from e
    out: dict[str, Tensor] = {}
    _named_tensors(root, "", out)
    return out


# torch._export.serde.schema.ScalarType's numbers (the .pt2 weights config names dtypes by them)
_PT2_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16}
_PT2_DTYPES |= {7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16}


def _pt2_tensor(archive: zipfile.ZipFile, folder: str, name: str, entry: dict) -> Tensor:
    meta = entry["tensor_meta"]
    if entry.get("use_pickle"):
        raise ValueError(f"{name} is pickled")
    dtype = _PT2_DTYPES[meta["dtype"]]
    size = [int(d["as_int"]) for d in meta["sizes"]]
    stride = [int(d["as_int"]) for d in meta["strides"]]
    info = archive.getinfo(folder + entry["path_name"])
    width = torch.empty((), dtype=dtype).element_size()
    if info.file_size % width:
        raise ValueError(f"{name}: {info.file_size} bytes is not a whole number of {dtype}")
    flat = torch.frombuffer(bytearray(archive.read(info)), dtype=dtype) if info.file_size else torch.empty(0)
    return torch.as_strided(flat, size, stride, int(meta["storage_offset"]["as_int"])).clone()


def exported_program_weights(path: str | Path) -> dict[str, Tensor]:
    """The parameters and buffers of a torch.export .pt2 (names as its state_dict keys them), read from its weights
    config JSON and raw byte records: nothing is unpickled and no program is loaded.

    Raises LstmEdgeError (one line) when the archive has no such config, a weight is pickled, or a record does not
    hold its declared shape."""
    try:
        with zipfile.ZipFile(path) as archive:
            conf = next(n for n in archive.namelist() if n.endswith("data/weights/model_weights_config.json"))
            folder = conf[: -len("model_weights_config.json")]
            config = json.loads(archive.read(conf))["config"]
            return {name: _pt2_tensor(archive, folder, name, entry) for name, entry in config.items()}
    except Exception as e:  # an adversarial archive can raise anything json, zipfile or as_strided raises
        raise LstmEdgeError(
            f"{path}: the weights of this torch.export program cannot be read as data ({type(e).__name__}: "
            f"{first_line(e, 160)})",
            "pass --trust-pickle to load it with torch.export.load if you trust its author, or save "
            "model.state_dict() instead",
        ) from e

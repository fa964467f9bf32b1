"""Sizes lstm-edge refuses before reading or allocating, each with its reason: the boundary checks of issue 17.

Every file a user (or a manifest) names is checked against these before anything reads it whole, and every array
a run would allocate is estimated against the memory this machine has. A refusal is one LstmEdgeError naming the
size, the cap and the fix; nothing is read first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_edge.errors import LstmEdgeError

if TYPE_CHECKING:  # typing only: zipfile is imported where a zip is opened
    import zipfile

MiB, GiB = 2**20, 2**30

# manifest.json: the shipped bundle's is 18 KB with four variants' reports; 16 MiB is ~900× that. Reading a
# 1 GiB one took 2 GB of memory before json.loads even started.
MAX_MANIFEST_BYTES = 16 * MiB
# One artifact path in a manifest: a few file names deep. PATH_MAX on Linux is 4096; 1024 leaves the bundle's own
# path room, and a 5,000-character path failed deep inside open() as a traceback.
MAX_PATH_CHARS = 1024
# One artifact (an .onnx, the checkpoint, golden.npz). protobuf refuses 2 GiB; a near-2 GiB model was read
# whole before that refusal. 1 GiB is ~5000× the shipped 205 KB model and holds an LSTM of H=4096, L=4 in fp32
# (4·4·4096·8192·4 B ≈ 2.1 GB would not: models that size need external data, which lstm-edge does not write).
MAX_ARTIFACT_BYTES = 1 * GiB
# One input array read from a file (.npy/.npz/.json/.csv): 256 MiB is 64 M float32 values (B=64 × T=100 000 ×
# F=10). A zip-bomb .npz (1 MB inflating to 1 GB) is refused from its headers, never inflated.
MAX_INPUT_BYTES = 256 * MiB
# JSON text for an input (stdin or .json): json.loads builds Python objects ~10-30× the text's size.
MAX_JSON_INPUT_BYTES = 16 * MiB
# A user's model file (.pt/.pt2, a zip): what its members may inflate to in all. Export writes at most
# MAX_ARTIFACT_BYTES of weights; a training checkpoint holds them plus Adam's two moments (3×), so 4 GiB.
MAX_MODEL_FILE_BYTES = 4 * GiB
# torch.save, torch.jit.save and torch.export.save store every member uncompressed (ratio 1), and deflate reaches
# ~3× on float weights; a zip bomb inflates ~1000× (deflate's limit). A compressed member declaring more than
# ZIP_BOMB_FLOOR at over ZIP_BOMB_RATIO is refused from the zip directory, before a byte is inflated.
ZIP_BOMB_RATIO = 100
ZIP_BOMB_FLOOR = 64 * MiB
# Model sizes a manifest or checkpoint may declare: weights over MAX_ARTIFACT_BYTES could not have been exported.
MAX_MODEL_DIM = 2**20
# The fraction of available memory one run may plan to use (the rest: the runtime's own arenas, Python, the OS).
MEMORY_FRACTION = 0.5
# And at most this much whatever the machine has, so a refusal does not depend on the machine: x of shape
# (1, 10 000 000, 2) on the shipped 2×64 LSTM plans ~29 GiB (ORT reached 11 GB RSS before it was stopped); the
# verify matrix's largest case (B=16, T=1000) plans ~50 MB. Longer inputs stream in chunks (`run --stream`).
MAX_RUN_BYTES = 16 * GiB


def available_memory() -> int:
    """Bytes of memory available to allocate now: MemAvailable from /proc/meminfo, else 4 GiB (not Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4 * GiB


def check_memory(need: int, what: str, fix: str) -> None:
    """Refuse (LstmEdgeError) when `need` bytes exceed MAX_RUN_BYTES or MEMORY_FRACTION of available_memory(); `what` names the
    allocation ("x of shape (1, 10000000, 2) on a 2×64 LSTM"), `fix` says how to make it smaller.

    Raises LstmEdgeError when it does not fit."""
    if need > MAX_RUN_BYTES:
        raise LstmEdgeError(f"{what} needs ~{_size(need)} of memory, over the {_size(MAX_RUN_BYTES)} cap", fix)
    budget = int(available_memory() * MEMORY_FRACTION)
    if need > budget:
        raise LstmEdgeError(f"{what} needs ~{_size(need)} of memory, more than the {_size(budget)} available", fix)


def check_model_path(path: Path) -> None:
    """A model file the user named: it exists, is a file and is not empty. Nothing is read; read_model starts here,
    and `lstm-edge export` calls it before importing torch, so that a wrong path is refused at once.

    Raises:
        LstmEdgeError: the path is missing, a directory, or an empty file.
    """
    if not path.exists():
        raise LstmEdgeError(f"model file not found: {path}", "check the path")
    if not path.is_file():
        raise LstmEdgeError(f"{path} is a directory, not a model file", "pass the .pt/.pt2/.safetensors file inside it")
    if path.stat().st_size == 0:
        raise LstmEdgeError(f"{path} is empty", "save the model again")


def check_file_size(path: Path, cap: int, what: str, fix: str) -> int:
    """The size of `path` in bytes (following symlinks).

    Raises LstmEdgeError when over `cap` or unreadable."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LstmEdgeError(f"{what} {path} cannot be read ({e.strerror or e})", fix) from e
    if size > cap:
        raise LstmEdgeError(f"{what} {path} is {size} bytes, over the {_size(cap)} cap", fix)
    return size


def loads_json(text: str | bytes, what: str, fix: str):
    """json.loads with every way untrusted JSON fails as one LstmEdgeError: bad syntax, nesting too deep for
    Python's parser (RecursionError), an integer of more than 4300 digits (ValueError), undecodable bytes.

    Raises LstmEdgeError for each of those (`what` names the source, `fix` is its fix)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LstmEdgeError(f"{what} is not valid JSON ({e.msg} at line {e.lineno})", fix) from e
    except RecursionError as e:
        raise LstmEdgeError(f"{what} is nested too deeply to read", fix) from e
    except (ValueError, UnicodeDecodeError) as e:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise LstmEdgeError(f"{what} cannot be read ({str(e).splitlines()[0][:120]})", fix) from e


def check_dims(names_values: dict[str, object], what: str, fix: str) -> None:
    """Each value is an int in 1..MAX_MODEL_DIM (bools refused).

    Raises LstmEdgeError naming the first that is not."""
    for name, v in names_values.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_MODEL_DIM:
            raise LstmEdgeError(f"{what}: {name} is {short_repr(v)}, not an integer in 1..{MAX_MODEL_DIM}", fix)


def short_repr(v: object) -> str:
    """repr(v) cut to a line's worth, safe for any value (an int too long to print is named by its size)."""
    # repr of an int over 4300 digits raises ValueError itself: name its size instead
    text = (
        repr(v)
        if not isinstance(v, int) or abs(v) < 10**30
        else f"an integer of ~{int(v.bit_length() * 0.30103)} digits"
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _size(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


ZIP_STORED = 0  # zipfile.ZIP_STORED, the no-compression method (named here: zipfile is imported lazily)


def check_zip_sizes(infos: list[zipfile.ZipInfo], where: str, cap: int, fix: str) -> None:
    """Refuse a zip from its directory alone (nothing inflated): members declaring more than `cap` bytes in all,
    or a compressed member declaring over ZIP_BOMB_FLOOR at more than ZIP_BOMB_RATIO × its compressed size.

    Raises LstmEdgeError naming the member, its declared size and the cap."""
    total = sum(i.file_size for i in infos)
    for i in infos:
        ratio = i.file_size / max(i.compress_size, 1)
        if i.compress_type != ZIP_STORED and i.file_size > ZIP_BOMB_FLOOR and ratio > ZIP_BOMB_RATIO:
            raise LstmEdgeError(
                f"{where}: member {i.filename} inflates {i.compress_size} bytes to {i.file_size} ({ratio:.0f}×), "
                f"over the {ZIP_BOMB_RATIO}× a model file can hold (a zip bomb? not inflated)",
                fix,
            )
    if total > cap:
        big = max(infos, key=lambda i: i.file_size)
        raise LstmEdgeError(
            f"{where}: its members inflate to {total} bytes ({big.filename}: {big.file_size}), over the "
            f"{_size(cap)} cap (not inflated)",
            fix,
        )


def check_npz(path: Path, cap: int, fix: str) -> None:
    """Refuse an .npz from its zip directory and .npy headers alone, before anything is inflated: a member, or all
    of them, declaring more than `cap` bytes (a zip bomb: 1 MB inflating to 1 GB), or an .npy header claiming more
    data than its member holds. Raises LstmEdgeError naming the member."""
    import zipfile  # deferred: ~2 ms (with lzma, bz2, shutil) for .npz files alone

    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        for i in infos:
            if i.file_size > cap or total > cap:
                raise LstmEdgeError(
                    f"{path.name}: {i.filename} inflates to {i.file_size} bytes ({total} in all), over the "
                    f"{cap}-byte cap (not inflated)",
                    fix,
                )
            if i.filename.endswith(".npy"):
                with zf.open(i) as f:
                    shape, dtype, offset = read_npy_header(f, f"{path.name}: {i.filename}", fix)
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if need > i.file_size - offset:
                    raise LstmEdgeError(
                        f"{path.name}: the header of {i.filename} claims {shape} {dtype} ({need} bytes) but the "
                        f"member holds {i.file_size - offset}",
                        fix,
                    )


def read_npy_header(f, what: str, fix: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from an open .npy file's header, read without its data.

    Raises LstmEdgeError for a file that is not .npy or holds Python objects."""
    try:
        major, _ = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise LstmEdgeError(f"{what} has no readable .npy header ({_reason(e)})", fix) from e
    if dtype.hasobject:
        raise LstmEdgeError(f"{what} holds Python objects, which can run code when loaded", "save plain numbers")
    return tuple(shape), dtype, f.tell()


def _reason(e: BaseException) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).splitlines()[0][:160]


def run_memory(shape: tuple[int, int, int], layers: int | None, hidden: int | None) -> int:
    """Bytes a run of x [B, T, F] plans to allocate, estimated from how ONNX Runtime's LSTM kernel works: each layer
    computes its input gates for all T steps at once (B·T·4H) and writes its outputs (B·T·H), and the next layer
    reads them; the state is [L, B, H] in and out, twice for h and c. In float32, with unknown L/H taken as 1/F."""
    B, T, F = shape
    L, H = layers or 1, hidden or F
    return 4 * B * (T * (F + L * 6 * H) + 4 * L * H)


def check_run_memory(
    shape: tuple[int, int, int], layers: int | None, hidden: int | None, fix: str | None = None
) -> None:
    """LstmEdgeError when run_memory exceeds what this machine has free (limits.check_memory): x of shape
    (1, 10 000 000, 2) on a 2×64 LSTM plans ~31 GB and is refused before any runtime allocates."""
    need = run_memory(shape, layers, hidden)
    if need > 256 * 2**20:  # below this, no machine lstm-edge runs on lacks it; skip reading /proc/meminfo
        check_memory(
            need,
            f"x of shape {tuple(shape)} on a model of {layers or '?'} layers × {hidden or '?'} hidden",
            fix or "run fewer sequences or shorter ones at a time (stream long sequences in chunks: --stream --chunk)",
        )

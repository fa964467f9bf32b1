"""score's input readers: what --input is (.npy, .npz, Parquet) without reading its data, the work units it splits
into (the same for both engines), and the batches of each unit."""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_edge.errors import LstmEdgeError


@dataclass
class ArrayFile:
    """A C-ordered array inside a file at a byte offset: a .npy, or a member stored (not compressed) in a .npz."""

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]

    def open(self) -> np.ndarray:
        """The array, memory-mapped read-only (an empty one in memory: a zero-size memmap is refused)."""
        if int(np.prod(self.shape)) == 0:
            return np.zeros(self.shape, self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)


@dataclass
class InputSpec:
    """What was found at --input: its kind, row count, and how to read it."""

    kind: str  # npy | npz | npz-compressed | parquet
    path: Path
    rows: int
    x: ArrayFile | None = None  # npy / stored npz
    ids: ArrayFile | None = None  # npz with an `id` array


def npy_header(f, where: str) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) from the .npy header at f's position, f left at the data.

    Raises LstmEdgeError for a header that does not parse, Fortran order, or Python objects."""
    try:
        major, _ = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
    except ValueError as e:
        raise LstmEdgeError(f"{where} is not a readable .npy array ({e})", "save it with np.save / np.savez") from e
    if fortran and len(shape) > 1:
        raise LstmEdgeError(f"{where} is stored in Fortran order", "save np.ascontiguousarray(x)")
    if dtype.hasobject:
        raise LstmEdgeError(f"{where} holds Python objects", "save a float array")
    return dtype, tuple(shape)


def check_x_shape(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """Raises LstmEdgeError unless x is 3-D [sequences, steps, features] of floats or 2-D [sequences, steps] of
    integer token ids (an Embedding bundle's input; check_features matches either against the bundle)."""
    if len(shape) == 2 and dtype.kind in "iu":
        return
    if len(shape) != 3:
        raise LstmEdgeError(
            f"{where} has shape {shape}", "give x as [sequences, steps, features] (token ids: [sequences, steps])"
        )
    if dtype.kind != "f":
        raise LstmEdgeError(f"{where} has dtype {dtype}", "give float32 values (float64 is converted)")


def check_regular(p: Path) -> None:
    """Raises LstmEdgeError unless `p` (symlinks followed) is a regular file: a FIFO blocks a reader forever."""
    try:
        mode = p.stat().st_mode
    except OSError as e:
        raise LstmEdgeError(f"{p} cannot be read ({e.strerror})", "check the path") from e
    if not stat.S_ISREG(mode):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(mode) else "device or socket"
        raise LstmEdgeError(f"{p} is a {kind}, not a regular file (not read)", "save the data to a file first")


def inspect_input(path: str | Path) -> InputSpec:
    """Find what --input is without reading its data. Raises LstmEdgeError for anything unreadable."""
    p = Path(path)
    if not p.exists():
        raise LstmEdgeError(f"input not found: {p}", "pass --input DATA (.npy, .npz, .parquet or a folder of them)")
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in (".parquet", ".pq"):
        return inspect_parquet(p)
    check_regular(p)
    if suffix == ".npy":
        with open(p, "rb") as f:
            dtype, shape = npy_header(f, str(p))
            offset = f.tell()
        check_x_shape(shape, dtype, str(p))
        if p.stat().st_size < offset + int(np.prod(shape)) * dtype.itemsize:
            raise LstmEdgeError(f"{p} is shorter than its header says (truncated?)", "write the file again")
        return InputSpec("npy", p, shape[0], x=ArrayFile(str(p), offset, dtype.str, shape))
    if suffix == ".npz":
        return inspect_npz(p)
    raise LstmEdgeError(f"unknown input format {suffix!r}", "use .npy, .npz, .parquet or a folder of .parquet files")


def inspect_npz(p: Path) -> InputSpec:
    """An .npz input: its x (and id) located for memory-mapping when stored, or marked to stream when deflated.

    Raises LstmEdgeError for a file that is not a zip, has no x, a bad x, or ids that do not match x's rows."""
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, NotImplementedError) as e:  # NotImplementedError: zip version 6.4
        raise LstmEdgeError(f"{p} is not a readable .npz ({e})", "save it with np.savez(path, x=x)") from e
    with zf:
        names = {n.removesuffix(".npy"): n for n in zf.namelist()}
        if "x" not in names:
            raise LstmEdgeError(f"{p} has no array 'x' (it has: {', '.join(names) or 'none'})", "np.savez(path, x=x)")
        arrays = {}
        compressed = False
        for key in ("x", "id"):
            if key not in names:
                continue
            info = zf.getinfo(names[key])
            with zf.open(info) as f:
                dtype, shape = npy_header(f, f"{p}:{key}")
                header = f.tell()
            compressed |= info.compress_type != zipfile.ZIP_STORED
            # A stored member's bytes sit contiguously after its local header: memory-map them in place.
            with open(p, "rb") as raw:
                raw.seek(info.header_offset + 26)
                n, m = np.frombuffer(raw.read(4), "<u2")
            offset = info.header_offset + 30 + int(n) + int(m) + header
            arrays[key] = ArrayFile(str(p), offset, dtype.str, shape)
    x = arrays["x"]
    check_x_shape(x.shape, np.dtype(x.dtype), f"{p}:x")
    ids = arrays.get("id")
    if ids is not None and ids.shape != (x.shape[0],):
        raise LstmEdgeError(f"{p}: id has shape {ids.shape} but x has {x.shape[0]} rows", "give one id per sequence")
    if compressed:
        return InputSpec("npz-compressed", p, x.shape[0])
    return InputSpec("npz", p, x.shape[0], x=x, ids=ids)


def parquet_dataset(p: Path):
    """A pyarrow dataset over the Parquet file or folder `p`.

    Raises LstmEdgeError where pyarrow cannot read it."""
    import pyarrow.dataset as pads  # deferred: pyarrow is heavy, and only Parquet input needs it

    files = parquet_files(p)
    try:
        return pads.dataset(files if p.is_dir() else str(p), format="parquet")
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for unreadable files
        raise LstmEdgeError(f"{p} is not readable Parquet ({str(e).splitlines()[0][:160]})", "check the file") from e


PARQUET_MAGIC = b"PAR1"  # a Parquet file begins and ends with it


def parquet_files(p: Path) -> list[str]:
    """The Parquet files at `p` (a file, or a folder read recursively, skipping names starting with "." or "_" as
    pyarrow's discovery does: _SUCCESS, _lstm-edge.json), each checked from its first and last 4 bytes.

    Raises:
        LstmEdgeError: a FIFO or device, a symlink leading out of the folder, or a file that is not Parquet.
    """
    if not p.is_dir():
        found = [p]
    else:
        root = p.resolve()
        found = []
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p)
            if any(part.startswith((".", "_")) for part in rel.parts) or f.is_dir():
                continue
            if root not in f.resolve().parents:
                raise LstmEdgeError(
                    f"{f} is a symlink leading out of {p} (not read)", "copy the file into the folder instead"
                )
            found.append(f)
    for f in found:
        check_regular(f)
        with open(f, "rb") as fh:
            head = fh.read(4)
            fh.seek(max(f.stat().st_size - 4, 0))
            tail = fh.read(4)
        if f.stat().st_size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            raise LstmEdgeError(
                f"{f} is not a Parquet file (no PAR1 magic at its start and end)",
                f"remove it from {p}, or point --input at the Parquet files" if p.is_dir() else "check the file",
            )
    return [str(f) for f in found]


def inspect_parquet(p: Path) -> InputSpec:
    """A Parquet input: its row count, after checking it has files and `id` and `x` columns.

    Raises LstmEdgeError for an unreadable dataset, no files, or a missing column."""
    ds = parquet_dataset(p)
    if not ds.files:
        raise LstmEdgeError(f"{p} holds no Parquet files", "point --input at a .parquet file or a folder of them")
    missing = [c for c in ("id", "x") if c not in ds.schema.names]
    if missing:
        raise LstmEdgeError(
            f"{p} has no {' or '.join(repr(m) for m in missing)} column (it has: {', '.join(ds.schema.names)})",
            "give an `id` column and an `x` column holding each sequence as a list of steps",
        )
    return InputSpec("parquet", p, ds.count_rows())


def plan_units(spec: InputSpec, batch_size: int) -> list[tuple]:
    """Split the input into work units, the same for both engines so their batches (and so their numbers) match.

    A unit is ("rows", start, stop) of batch_size rows of an array, ("rowgroup", file, index) of a Parquet file, or
    ("stream",) for a compressed .npz (local only). Batches never cross a unit: a Parquet row group smaller than
    batch_size gives a smaller batch. Matching batches matter for int8: dynamic quantization picks one input scale
    per batch, so a row's int8 result depends on its batch-mates (fp32 does not: measured bit-identical).

    Raises LstmEdgeError for a Parquet file whose footer cannot be read.
    """
    if spec.x is not None:
        return [("rows", s, min(s + batch_size, spec.rows)) for s in range(0, spec.rows, batch_size)]
    if spec.kind == "npz-compressed":
        return [("stream",)]
    import pyarrow.parquet as pq  # deferred: pyarrow is heavy, and only Parquet input needs it

    units = []
    for f in parquet_dataset(spec.path).files:
        try:
            groups = pq.ParquetFile(f).metadata.num_row_groups
        except Exception as e:  # pyarrow's ArrowInvalid for a corrupt footer
            raise LstmEdgeError(f"{f} is not readable Parquet ({str(e).splitlines()[0][:160]})", "check it") from e
        units += [("rowgroup", f, g) for g in range(groups)]
    return units


def iter_unit(
    spec: InputSpec, unit: tuple, batch_size: int
) -> Iterator[tuple[np.ndarray, list[np.ndarray] | np.ndarray]]:
    """(ids [B], x) per batch of one work unit, at most batch_size rows held at once; x is [B, T, F] or [T_i, F] rows."""
    if unit[0] == "rows":  # npy and stored npz: a slice of a memory map, copied
        _, start, stop = unit
        ids = np.asarray(spec.ids.open()[start:stop]) if spec.ids is not None else np.arange(start, stop)
        yield ids, np.array(spec.x.open()[start:stop])
    elif unit[0] == "stream":
        yield from iter_compressed_npz(spec, batch_size)
    else:
        import pyarrow.parquet as pq  # deferred: pyarrow is heavy, and only Parquet input needs it

        _, f, group = unit
        for rb in pq.ParquetFile(f).iter_batches(batch_size=batch_size, row_groups=[group], columns=["id", "x"]):
            if rb.num_rows:
                yield rb.column(0).to_numpy(zero_copy_only=False), decode_x(rb.column(1), f)


def iter_compressed_npz(spec: InputSpec, batch_size: int):
    """A deflated .npz cannot be memory-mapped: decompress x row by row as a stream (ids, if any, are small).

    Raises LstmEdgeError for an x that ends before its header's shape."""
    with zipfile.ZipFile(spec.path) as zf:
        names = {n.removesuffix(".npy"): n for n in zf.namelist()}
        ids = None
        if "id" in names:
            with zf.open(names["id"]) as f:
                ids = np.lib.format.read_array(f, allow_pickle=False)
        with zf.open(names["x"]) as f:
            dtype, shape = npy_header(f, f"{spec.path}:x")
            row = int(np.prod(shape[1:])) * dtype.itemsize
            for start in range(0, shape[0], batch_size):
                n = min(batch_size, shape[0] - start)
                buf = f.read(n * row)
                if len(buf) != n * row:
                    raise LstmEdgeError(f"{spec.path}: x ends early (truncated?)", "write the file again")
                x = np.frombuffer(buf, dtype).reshape((n, *shape[1:]))
                yield (ids[start : start + n] if ids is not None else np.arange(start, start + n)), x


def decode_x(col, where: str = "input") -> list[np.ndarray]:
    """A Parquet/Arrow `x` column (list of steps, each a list of F numbers) → one [T_i, F] float array per row;
    a column of integer lists (token ids) → one [T_i] int64 array per row.

    Raises LstmEdgeError for a column that is not lists of float lists, nulls, or steps of unequal width."""
    import pyarrow as pa  # deferred: pyarrow is heavy, and only Parquet input needs it
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        raise LstmEdgeError(
            f"{where}: x has type {col.type}", "store each sequence as a list of steps (list<list<float>>)"
        )
    inner = col.type.value_type
    if pa.types.is_integer(inner):  # token ids: each row a list of T ids (an Embedding bundle's input)
        if col.null_count or col.flatten().null_count:
            raise LstmEdgeError(f"{where}: x holds null token ids", "drop or fill them before scoring")
        ids = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum(pc.list_value_length(col).to_numpy(zero_copy_only=False))])
        return [ids[bounds[i] : bounds[i + 1]] for i in range(len(col))]
    if not (pa.types.is_list(inner) or pa.types.is_large_list(inner) or pa.types.is_fixed_size_list(inner)):
        raise LstmEdgeError(f"{where}: x steps have type {inner}", "store each step as a list of feature values")
    if not pa.types.is_floating(inner.value_type):
        raise LstmEdgeError(f"{where}: x values have type {inner.value_type}", "store float32 or float64 values")
    if col.null_count:
        raise LstmEdgeError(f"{where}: x has {col.null_count} null sequences", "drop or fill them before scoring")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    steps = col.flatten()
    widths = pc.list_value_length(steps).to_numpy(zero_copy_only=False)
    if steps.null_count or (len(widths) and widths.min() != widths.max()):
        raise LstmEdgeError(f"{where}: x steps have {sorted(set(widths.tolist()))[:5]} features", "every step needs F")
    values = steps.flatten()
    if values.null_count:
        raise LstmEdgeError(f"{where}: x holds {values.null_count} null values", "fill them before scoring")
    F = int(widths[0]) if len(widths) else 0
    flat = values.to_numpy(zero_copy_only=False).reshape(-1, max(F, 1))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [flat[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]

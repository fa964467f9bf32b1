"""`lstm-edge score`: bulk inference over a file of sequences, in this process or on Ray Data.

    result = score("models/adding", "sessions.parquet", "pred.parquet", ScoreConfig(variant="int8"))

Inputs (one row = one sequence, always from a zero initial state):
  .npy      x [N, T, F], memory-mapped; the id is the row index.
  .npz      x [N, T, F] (and optionally id [N]); stored members are memory-mapped, compressed ones streamed.
  Parquet   a file or a folder of files with an `id` column and an `x` column: each row a list of steps, each step a
            list of F numbers. Lengths may differ between rows: rows of equal length are run together, each at its own
            length (no padding, so nothing to mask and no `lengths` input needed).
Output: Parquet with `id` and the requested outputs per row: y [O] (head "last") or [T, O] (head "seq"), hn and cn
[L, H] (the state after the last step).

Both engines run the same function (`score_batch`) on the same runner class, so the numbers are the same; see
README "Bulk scoring" for where ONNX Runtime itself is not bit-deterministic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_edge.bundle import SCORE_FORMAT, SCORE_INFO
from lstm_edge.errors import LstmEdgeError

ENGINES = ("local", "ray")
OUTPUTS = ("y", "hn", "cn")
RAY_INSTALL = "pip install 'lstm-edge[ray]'"
ROW_GROUP_BYTES = 8 << 20  # results buffered per Parquet row group (local engine) …
ROW_GROUP_ROWS = 16_384  # … whichever limit comes first
# Ray: rows per task (each task writes one Parquet file). A task's actor holds its queue until the task ends, so at
# the end of a run one actor can idle for up to a task while the other finishes: 16 tasks over 100,000 rows left an
# actor idle 1.7 s at the end (of a 21 s run), 64 tasks 0.04 s (measured, 2 actors). 4,096 rows of the adding model
# at T=100 is ~0.8 s of one actor.
TASK_ROWS = 4096


@dataclass
class ScoreConfig:
    """Everything `score` is asked for, in one place."""

    provider: str = "cpu"
    variant: str = "fp32"
    batch_size: int = 256  # sequences per runner call; memory per batch ≈ batch_size × T × F × 4 bytes in and out
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance; else join this cluster ("auto", "ray://…")
    workers: int | None = None  # ray: actors in the pool (None: this machine's cores, or the cluster's CPUs - 1)
    outputs: tuple[str, ...] = ("y",)
    threads: int | None = None  # runner threads (None: local uses all cores, each Ray actor uses 1)
    verify_hash: bool = True
    progress: bool = True

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise LstmEdgeError(f"unknown engine {self.engine!r}", f"choose one of {', '.join(ENGINES)}")
        if self.batch_size < 1:
            raise LstmEdgeError(f"--batch-size {self.batch_size}", "use a batch of at least 1 sequence")
        if self.workers is not None and self.workers < 1:
            raise LstmEdgeError(f"--workers {self.workers}", "use at least 1 worker")
        if self.threads is not None and self.threads < 1:
            raise LstmEdgeError(f"--threads {self.threads}", "use a positive thread count")
        bad = [o for o in self.outputs if o not in OUTPUTS]
        if bad or not self.outputs:
            raise LstmEdgeError(f"--outputs {','.join(self.outputs)}", f"choose from {','.join(OUTPUTS)}")
        if self.ray_address and self.engine != "ray":
            raise LstmEdgeError("--ray-address needs --engine ray", "add --engine ray, or drop --ray-address")


@dataclass
class ScoreResult:
    output: Path
    rows: int
    seconds: float
    engine: str
    runner: dict = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


# ---- reading inputs ------------------------------------------------------------------------------------------------


@dataclass
class ArrayFile:
    """A C-ordered array inside a file at a byte offset: a .npy, or a member stored (not compressed) in a .npz."""

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]

    def open(self) -> np.ndarray:
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


def _npy_header(f, where: str) -> tuple[np.dtype, tuple[int, ...]]:
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


def _check_x_shape(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    if len(shape) != 3:
        raise LstmEdgeError(f"{where} has shape {shape}", "give x as [sequences, steps, features]")
    if dtype.kind != "f":
        raise LstmEdgeError(f"{where} has dtype {dtype}", "give float32 values (float64 is converted)")


def inspect_input(path: str | Path) -> InputSpec:
    """Find what --input is without reading its data. Raises LstmEdgeError for anything unreadable."""
    p = Path(path)
    if not p.exists():
        raise LstmEdgeError(f"input not found: {p}", "pass --input DATA (.npy, .npz, .parquet or a folder of them)")
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in (".parquet", ".pq"):
        return _inspect_parquet(p)
    if suffix == ".npy":
        with open(p, "rb") as f:
            dtype, shape = _npy_header(f, str(p))
            offset = f.tell()
        _check_x_shape(shape, dtype, str(p))
        if p.stat().st_size < offset + int(np.prod(shape)) * dtype.itemsize:
            raise LstmEdgeError(f"{p} is shorter than its header says (truncated?)", "write the file again")
        return InputSpec("npy", p, shape[0], x=ArrayFile(str(p), offset, dtype.str, shape))
    if suffix == ".npz":
        return _inspect_npz(p)
    raise LstmEdgeError(f"unknown input format {suffix!r}", "use .npy, .npz, .parquet or a folder of .parquet files")


def _inspect_npz(p: Path) -> InputSpec:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
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
                dtype, shape = _npy_header(f, f"{p}:{key}")
                header = f.tell()
            compressed |= info.compress_type != zipfile.ZIP_STORED
            # A stored member's bytes sit contiguously after its local header: memory-map them in place.
            with open(p, "rb") as raw:
                raw.seek(info.header_offset + 26)
                n, m = np.frombuffer(raw.read(4), "<u2")
            offset = info.header_offset + 30 + int(n) + int(m) + header
            arrays[key] = ArrayFile(str(p), offset, dtype.str, shape)
    x = arrays["x"]
    _check_x_shape(x.shape, np.dtype(x.dtype), f"{p}:x")
    ids = arrays.get("id")
    if ids is not None and ids.shape != (x.shape[0],):
        raise LstmEdgeError(f"{p}: id has shape {ids.shape} but x has {x.shape[0]} rows", "give one id per sequence")
    if compressed:
        return InputSpec("npz-compressed", p, x.shape[0])
    return InputSpec("npz", p, x.shape[0], x=x, ids=ids)


def _parquet_dataset(p: Path):
    import pyarrow.dataset as pads

    try:
        return pads.dataset(str(p), format="parquet")
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for unreadable files
        raise LstmEdgeError(f"{p} is not readable Parquet ({str(e).splitlines()[0][:160]})", "check the file") from e


def _inspect_parquet(p: Path) -> InputSpec:
    ds = _parquet_dataset(p)
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
    """
    if spec.x is not None:
        return [("rows", s, min(s + batch_size, spec.rows)) for s in range(0, spec.rows, batch_size)]
    if spec.kind == "npz-compressed":
        return [("stream",)]
    import pyarrow.parquet as pq

    units = []
    for f in _parquet_dataset(spec.path).files:
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
        yield from _iter_compressed_npz(spec, batch_size)
    else:
        import pyarrow.parquet as pq

        _, f, group = unit
        for rb in pq.ParquetFile(f).iter_batches(batch_size=batch_size, row_groups=[group], columns=["id", "x"]):
            if rb.num_rows:
                yield rb.column(0).to_numpy(zero_copy_only=False), decode_x(rb.column(1), f)


def _iter_compressed_npz(spec: InputSpec, batch_size: int):
    """A deflated .npz cannot be memory-mapped: decompress x row by row as a stream (ids, if any, are small)."""
    with zipfile.ZipFile(spec.path) as zf:
        names = {n.removesuffix(".npy"): n for n in zf.namelist()}
        ids = None
        if "id" in names:
            with zf.open(names["id"]) as f:
                ids = np.lib.format.read_array(f, allow_pickle=False)
        with zf.open(names["x"]) as f:
            dtype, shape = _npy_header(f, f"{spec.path}:x")
            row = int(np.prod(shape[1:])) * dtype.itemsize
            for start in range(0, shape[0], batch_size):
                n = min(batch_size, shape[0] - start)
                buf = f.read(n * row)
                if len(buf) != n * row:
                    raise LstmEdgeError(f"{spec.path}: x ends early (truncated?)", "write the file again")
                x = np.frombuffer(buf, dtype).reshape((n, *shape[1:]))
                yield (ids[start : start + n] if ids is not None else np.arange(start, start + n)), x


def decode_x(col, where: str = "input") -> list[np.ndarray]:
    """A Parquet/Arrow `x` column (list of steps, each a list of F numbers) → one [T_i, F] float array per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        raise LstmEdgeError(
            f"{where}: x has type {col.type}", "store each sequence as a list of steps (list<list<float>>)"
        )
    inner = col.type.value_type
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


# ---- one batch -----------------------------------------------------------------------------------------------------


def score_batch(runner, ids: np.ndarray, x: np.ndarray | list[np.ndarray], outputs: tuple[str, ...]):
    """Run one batch; returns a pyarrow Table (id, *outputs) in the input's row order.

    x [B, T, F] runs as one call; a list of [T_i, F] runs one call per distinct length (rows of equal length together,
    so no row is padded). Raises LstmEdgeError for rows the runner rejects (wrong F, NaN, empty).
    """
    if isinstance(x, np.ndarray):
        groups = [(np.arange(len(x)), x)]
        lengths = np.full(len(x), x.shape[1])
    else:
        lengths = np.array([len(s) for s in x])
        groups = []
        for T in np.unique(lengths):
            idx = np.flatnonzero(lengths == T)
            groups.append((idx, np.stack([x[i] for i in idx])))
    B = len(lengths)
    got: dict[str, list] = {k: [None] * B for k in OUTPUTS}
    for idx, xb in groups:
        try:
            y, (h, c) = runner.run(xb)  # y [b, O] or [b, T, O]; h, c [L, b, H]
        except LstmEdgeError as e:  # name the rows: the runner only knows its own batch's indices
            first = ids[idx[0]].item() if hasattr(ids[idx[0]], "item") else ids[idx[0]]
            raise LstmEdgeError(f"in the batch of ids {first!r}…: {e.problem}", e.fix) from e
        for j, i in enumerate(idx):
            got["y"][i], got["hn"][i], got["cn"][i] = y[j], h[:, j], c[:, j]
    return _to_table(ids, {k: got[k] for k in outputs}, runner.source.config.head if runner.source.config else "last")


def _to_table(ids: np.ndarray, cols: dict[str, list[np.ndarray]], head: str):
    import pyarrow as pa

    arrays, names = [pa.array(ids)], ["id"]
    for name, rows in cols.items():
        arrays.append(_nested(rows, ragged_first=(name == "y" and head == "seq")))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(SCORE_METADATA)


def _nested(rows: list[np.ndarray], ragged_first: bool):
    """Per-row float32 arrays of one shape → nested fixed-size lists; ragged_first: the first axis varies (y per step)."""
    import pyarrow as pa

    inner_shape = rows[0].shape[1:] if ragged_first else rows[0].shape
    flat = pa.array(np.concatenate([np.ravel(r) for r in rows]).astype(np.float32, copy=False))
    for n in reversed(inner_shape):
        flat = pa.FixedSizeListArray.from_arrays(flat, int(n))
    if ragged_first:
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
        flat = pa.ListArray.from_arrays(pa.array(offsets), flat)
    return flat


# ---- the bundle, by content ----------------------------------------------------------------------------------------


@dataclass
class BundlePayload:
    """The files a runner needs (manifest + the variant's model), as bytes with their sha256.

    This is what travels to Ray workers: they never see the driver's path, and refuse bytes that changed on the way.
    """

    files: dict[str, bytes]
    sha256: dict[str, str]

    @classmethod
    def from_bundle(cls, bundle_path: str | Path, variant: str, verify_hash: bool = True) -> BundlePayload:
        from lstm_edge.bundle import MANIFEST, Bundle

        bundle = Bundle.open(bundle_path)
        model = bundle.artifact(variant, verify_hash)
        files = {MANIFEST: (bundle.root / MANIFEST).read_bytes(), bundle.entry(variant)["path"]: model.read_bytes()}
        return cls(files, {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})

    def materialize(self, where: Path) -> Path:
        """Check every file against its sha256, write them under `where`, return the bundle folder."""
        for name, data in self.files.items():
            if hashlib.sha256(data).hexdigest() != self.sha256[name]:
                raise LstmEdgeError(f"bundle file {name} arrived with a different sha256", "re-run; check the cluster")
            target = (where / name).resolve()
            if where.resolve() not in target.parents:
                raise LstmEdgeError(f"bundle file {name!r} points outside the bundle", "re-export the bundle")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return where


# ---- engines -------------------------------------------------------------------------------------------------------


def score(
    bundle: str | Path, input_path: str | Path, output: str | Path, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Score every sequence in `input_path` with the bundle and write Parquet to `output`.

    local: one runner in this process, batches streamed from the input (memory ≈ a few batches, not N) into one
    Parquet file, written to a temporary sibling and renamed at the end. ray: see `_score_ray`; writes a folder of
    Parquet files, staged the same way. Raises LstmEdgeError for bad input, config or a missing Ray (exit 2).
    """
    from lstm_edge.atomic import staged_file

    cfg = cfg or ScoreConfig()
    cfg.check()
    spec = inspect_input(input_path)
    out = Path(output)
    if out.resolve() == spec.path.resolve():
        raise LstmEdgeError("--output is the input", "choose another output path")
    # score replaces its output, so only a Parquet path can be ours to replace (a thesis.txt never is): a .parquet
    # file for the local engine; for Ray, which writes a folder of Parquet files, any path but an existing file.
    if cfg.engine != "ray" and (out.suffix.lower() not in (".parquet", ".pq") or (out.exists() and not out.is_file())):
        raise LstmEdgeError(f"--output {out} is not a .parquet file path", "write predictions to PRED.parquet")
    if cfg.engine == "ray" and out.is_file():
        raise LstmEdgeError(
            f"--output {out} is a file; the Ray engine writes a folder of Parquet files", "name a folder"
        )
    _check_replaceable(out)
    _check_features(bundle, spec)  # here, not in a worker: Ray would print its tracebacks before our line
    if cfg.engine == "ray":
        return _score_ray(bundle, spec, out, cfg)

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from lstm_edge.runtimes import RunnerOptions, open_runner

    opts = RunnerOptions(variant=cfg.variant, threads=cfg.threads, verify_hash=cfg.verify_hash)
    t0 = time.perf_counter()
    rows = 0
    with (
        open_runner(bundle, cfg.provider, options=opts) as runner,
        staged_file(out) as tmp,
        tqdm(total=spec.rows, unit="seq", desc="score", disable=not cfg.progress) as bar,
    ):
        writer, pending, pending_rows, pending_bytes = None, [], 0, 0
        try:
            for unit in plan_units(spec, cfg.batch_size):
                for ids, x in iter_unit(spec, unit, cfg.batch_size):
                    table = score_batch(runner, ids, x, cfg.outputs)
                    writer = writer or pq.ParquetWriter(str(tmp), table.schema)
                    pending.append(table)
                    pending_rows, pending_bytes = pending_rows + table.num_rows, pending_bytes + table.nbytes
                    # Row groups of up to ROW_GROUP_ROWS rows / ROW_GROUP_BYTES, not one per batch: the writer keeps
                    # every group's metadata until close (+9 MiB over 150,000 rows in 64-row groups, measured), and
                    # each small pending table costs ~18 KB of Arrow overhead (measured), so neither may grow with N.
                    if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                        writer.write_table(pa.concat_tables(pending))
                        pending, pending_rows, pending_bytes = [], 0, 0
                    rows += table.num_rows
                    bar.update(table.num_rows)
            if writer is None:
                raise LstmEdgeError(f"{spec.path} holds no sequences", "give at least one row")
            if pending:
                writer.write_table(pa.concat_tables(pending))
        finally:
            if writer is not None:
                writer.close()
        info = runner.describe()
    return ScoreResult(out, rows, time.perf_counter() - t0, "local", info)


SCORE_METADATA = {b"lstm_edge": b"score"}  # in every Parquet file score writes: what lets a re-run replace it


def _check_replaceable(out: Path) -> None:
    """LstmEdgeError unless `out` is absent or something score wrote (a user's own Parquet file is never replaced)."""
    from lstm_edge.atomic import is_ours

    if not out.exists():
        return
    if out.is_dir():  # empty, or a Ray score output: is_ours alone would also let a bundle folder be replaced
        if any(out.iterdir()) and not (is_ours(out) and (out / SCORE_INFO).is_file()):
            raise LstmEdgeError(f"--output {out} is not an lstm-edge score folder", "choose a new path, or delete it")
        return
    import pyarrow.parquet as pq

    try:
        ours = (pq.read_schema(str(out)).metadata or {}).get(b"lstm_edge") == b"score"
    except Exception:  # not Parquet at all (pyarrow raises ArrowInvalid, OSError, …): certainly not ours
        ours = False
    if not ours:
        raise LstmEdgeError(
            f"--output {out} exists and was not written by lstm-edge score", "choose a new path, or delete it"
        )


def _check_features(bundle: str | Path, spec: InputSpec) -> None:
    """LstmEdgeError when an array input's feature count is not the model's (Parquet rows are checked as read)."""
    from lstm_edge.bundle import Bundle

    if spec.x is None or len(spec.x.shape) != 3:
        return
    config = Bundle.open(bundle).config
    want = config.input_size if not config.vocab_size else None
    if want is not None and spec.x.shape[-1] != want:
        raise LstmEdgeError(
            f"{spec.path}: x has {spec.x.shape[-1]} features but the model takes {want}",
            f"give x as [sequences, steps, {want}]",
        )


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the extra is ray[data], not bare ray
    except ImportError as e:
        raise LstmEdgeError("--engine ray needs Ray Data, which is not installed", RAY_INSTALL) from e
    return ray


class ScoreActor:
    """One per Ray actor: unpacks the bundle bytes once, opens one runner, and scores each work unit it is given."""

    def __init__(self, payload: BundlePayload, spec: InputSpec, cfg: ScoreConfig) -> None:
        from lstm_edge.runtimes import RunnerOptions, open_runner

        self._dir = tempfile.TemporaryDirectory(prefix="lstm-edge-score-")
        root = payload.materialize(Path(self._dir.name))
        opts = RunnerOptions(variant=cfg.variant, threads=cfg.threads or 1)
        self.runner = open_runner(root, cfg.provider, options=opts)
        self.spec, self.cfg = spec, cfg

    def __call__(self, batch: dict) -> Iterator:
        for unit in batch["unit"]:  # units as JSON strings (batch_size=1: one unit per call)
            for ids, x in iter_unit(self.spec, tuple(json.loads(unit)), self.cfg.batch_size):
                yield score_batch(self.runner, ids, x, self.cfg.outputs)


def _user_error(e: BaseException | None) -> LstmEdgeError | None:
    """The LstmEdgeError an actor raised, found through Ray's wrappers (RayTaskError, UserCodeException)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, LstmEdgeError) and getattr(e, "problem", None):
            return e
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__  # RayTaskError keeps the original in .cause
    return None


def _score_ray(bundle, spec: InputSpec, out: Path, cfg: ScoreConfig) -> ScoreResult:
    """Ray Data: read → map_batches over an actor pool (one runner per actor) → write_parquet into a staged folder.

    Without cfg.ray_address a local Ray instance is started (and shut down after); with one, it joins that cluster.
    The bundle goes to the actors as bytes with sha256 (BundlePayload); the input and output paths must be visible
    to every node (on one machine they are; on a cluster use a shared filesystem).
    """
    from lstm_edge.atomic import staged_dir

    ray = import_ray()
    if spec.kind == "npz-compressed":
        raise LstmEdgeError(
            f"{spec.path} is a compressed .npz, which Ray workers cannot split",
            "save it with np.savez (uncompressed), as .npy, or as Parquet",
        )
    payload = BundlePayload.from_bundle(bundle, cfg.variant, cfg.verify_hash)
    started = False
    workers = cfg.workers
    if not ray.is_initialized():
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, log_to_driver=False)
        else:
            # One actor per core: the Parquet write runs inside the actors (Ray Data fuses it into the map: one file
            # per task, no write processes seen) and the driver, raylet and GCS took ~3 CPU-seconds per 100,000 rows
            # (~0.13 of a core) beside 2 actors' 22 (measured). The one extra logical CPU is a slot for any Ray Data
            # task that is not fused, so none waits for an actor that only ends with the run.
            workers = workers or os.cpu_count() or 1
            ray.init(num_cpus=workers + 1, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.execution_options.preserve_order  # the caller's, restored after
    try:
        ctx.enable_progress_bars = cfg.progress
        if not cfg.progress:
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx.execution_options.preserve_order = True  # one output file order, whatever the actors' timing
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
        units = plan_units(spec, cfg.batch_size)
        if not units or spec.rows == 0:
            raise LstmEdgeError(f"{spec.path} holds no sequences", "give at least one row")
        # One dataset row per work unit; the actor reads its rows where it runs, in the same batches as --engine local.
        # One task per block: at least 8 per actor (balance on small inputs), at most TASK_ROWS rows each.
        blocks = min(len(units), max(8 * workers, math.ceil(spec.rows / TASK_ROWS)))
        ds = ray.data.from_items([{"unit": json.dumps(u)} for u in units], override_num_blocks=blocks)
        ds = ds.map_batches(
            ScoreActor,
            fn_constructor_kwargs={"payload": payload, "spec": spec, "cfg": cfg},
            batch_size=1,
            batch_format="numpy",
            # Ray Data's actor pool defaults to max_restarts=-1 and max_task_retries=-1: an actor that dies is
            # restarted and the unit it held is scored again (tests/test_score_ray.py kills one to check).
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        t0 = time.perf_counter()
        with staged_dir(out) as stage:
            (stage / SCORE_INFO).write_text(json.dumps({"format": SCORE_FORMAT}))  # ours to replace next run
            try:
                ds.write_parquet(str(stage))
            except Exception as e:  # a bad row raises LstmEdgeError inside an actor; Ray wraps it on the way back
                cause = _user_error(e)
                if cause is None:
                    raise
                raise LstmEdgeError(cause.problem, cause.fix) from None
        seconds = time.perf_counter() - t0
        import pyarrow.dataset as pads

        rows = pads.dataset(str(out), format="parquet").count_rows()
    finally:
        ctx.enable_progress_bars, ctx.execution_options.preserve_order = saved
        if started:
            ray.shutdown()
    return ScoreResult(
        out, rows, seconds, "ray", {"workers": workers, "variant": cfg.variant, "provider": cfg.provider}
    )

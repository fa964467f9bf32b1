"""score's Ray Data engine: the bundle shipped to actors as checked bytes, one runner per actor, one Parquet file
per task, written into a staged folder."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lstm_edge.atomic import staged_dir
from lstm_edge.bundle import MANIFEST, Bundle
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.formats import SCORE_FORMAT, SCORE_INFO
from lstm_edge.runtimes import RunnerOptions, open_runner
from lstm_edge.runtimes.checks import CLIPPED_FIX
from lstm_edge.score.batches import score_batch
from lstm_edge.score.config import RAY_INSTALL, TASK_ROWS, ScoreConfig, ScoreResult
from lstm_edge.score.readers import InputSpec, iter_unit, plan_units


@dataclass
class BundlePayload:
    """The files a runner needs (manifest + the variant's model + the golden cases its self-check runs), as bytes
    with their sha256.

    This is what travels to Ray workers: they never see the driver's path, and refuse bytes that changed on the way.
    """

    files: dict[str, bytes]
    sha256: dict[str, str]

    @classmethod
    def from_bundle(cls, bundle_path: str | Path, variant: str, verify_hash: bool = True) -> BundlePayload:
        """The manifest, `variant`'s model file and golden.npz (where the bundle has one: each actor's self-check
        runs it) as bytes, each with its sha256.

        Raises LstmEdgeError for a bundle that does not open or a variant (or golden.npz) that fails its checks."""
        bundle = Bundle.open(bundle_path)
        model = bundle.artifact(variant, verify_hash)
        files = {MANIFEST: (bundle.root / MANIFEST).read_bytes(), bundle.entry(variant)["path"]: model.read_bytes()}
        if "golden" in bundle.manifest["artifacts"]:
            files[bundle.entry("golden")["path"]] = bundle.artifact("golden", verify_hash).read_bytes()
        return cls(files, {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})

    def materialize(self, where: Path) -> Path:
        """Check every file against its sha256, write them under `where`, return the bundle folder.

        Raises LstmEdgeError for a file whose bytes changed on the way or whose name points outside `where`."""
        for name, data in self.files.items():
            if hashlib.sha256(data).hexdigest() != self.sha256[name]:
                raise LstmEdgeError(f"bundle file {name} arrived with a different sha256", "re-run; check the cluster")
            target = (where / name).resolve()
            if where.resolve() not in target.parents:
                raise LstmEdgeError(f"bundle file {name!r} points outside the bundle", "re-export the bundle")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return where


def import_ray():
    """The `ray` module with Ray Data loaded.

    Raises LstmEdgeError (the fix: the ray extra) where Ray Data is not installed."""
    try:
        import ray  # deferred: the optional extra lstm-edge[ray], heavy to import
        import ray.data  # noqa: F401 - the extra is ray[data], not bare ray
    except ImportError as e:
        raise LstmEdgeError("--engine ray needs Ray Data, which is not installed", RAY_INSTALL) from e
    return ray


class ScoreActor:
    """One per Ray actor: unpacks the bundle bytes once, opens one runner (self-checked, as cfg says), and scores
    each work unit it is given. A runner that refuses to open (its self-check failed here) is raised by the first
    call, where Ray hands the error back as it is (raised in __init__, it arrives as an ActorDiedError)."""

    def __init__(self, payload: BundlePayload, spec: InputSpec, cfg: ScoreConfig) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="lstm-edge-score-")
        root = payload.materialize(Path(self._dir.name))
        opts = RunnerOptions(variant=cfg.variant, threads=cfg.threads or 1, self_check=cfg.self_check)
        self.runner, self.refused = None, None
        try:
            self.runner = open_runner(root, cfg.provider, options=opts)
        except LstmEdgeError as e:
            self.refused = e
        self.spec, self.cfg = spec, cfg

    def __call__(self, batch: dict) -> Iterator:
        if self.refused is not None:
            raise self.refused
        for unit in batch["unit"]:  # units as JSON strings (batch_size=1: one unit per call)
            for ids, x in iter_unit(self.spec, tuple(json.loads(unit)), self.cfg.batch_size):
                yield score_batch(self.runner, ids, x, self.cfg.outputs)


def count_clipped(bundle, spec: InputSpec, cfg: ScoreConfig, units: list) -> tuple[int, str]:
    """(values clipped, the one line naming them) for a variant that clips x to its recorded range (the int8 C),
    counted here on the driver before any actor starts, so both --strict-range and the warning cover every row;
    (0, "") for every other variant. Reads the input once more only then.

    Raises:
        ParityError: with cfg.strict_range, where any value would be clipped (nothing is started or written).
    """
    if (cfg.provider, cfg.variant) != ("c", "int8"):
        return 0, ""
    import numpy as np  # deferred: numpy, only for this count

    from lstm_edge.runtimes.c_runner import int8_input_range  # deferred: the C runner imports the code generator

    rng = int8_input_range(Bundle.open(bundle))
    clipped = 0
    for unit in units:
        for _, x in iter_unit(spec, tuple(unit), cfg.batch_size):
            rows = [x] if isinstance(x, np.ndarray) else x
            clipped += sum(rng.clipped(np.asarray(r, np.float32)) for r in rows)
    problem = rng.problem(clipped, None, cfg.variant) if clipped else ""
    if clipped and cfg.strict_range:
        raise ParityError(problem, CLIPPED_FIX)
    return clipped, problem


def user_error(e: BaseException | None) -> LstmEdgeError | None:
    """The LstmEdgeError an actor raised, found through Ray's wrappers (RayTaskError, UserCodeException)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, LstmEdgeError) and getattr(e, "problem", None):
            return e
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__  # RayTaskError keeps the original in .cause
    return None


def score_ray(bundle, spec: InputSpec, out: Path, cfg: ScoreConfig) -> ScoreResult:
    """Ray Data: read → map_batches over an actor pool (one runner per actor) → write_parquet into a staged folder.

    Without cfg.ray_address a local Ray instance is started (and shut down after); with one, it joins that cluster.
    The bundle goes to the actors as bytes with sha256 (BundlePayload); the input and output paths must be visible
    to every node (on one machine they are; on a cluster use a shared filesystem).

    Raises LstmEdgeError for a compressed .npz (workers cannot split it), an input without rows, a missing Ray,
    or the first bad row an actor met (unwrapped from Ray's errors).
    """
    ray = import_ray()
    if spec.kind == "npz-compressed":
        raise LstmEdgeError(
            f"{spec.path} is a compressed .npz, which Ray workers cannot split",
            "save it with np.savez (uncompressed), as .npy, or as Parquet",
        )
    payload = BundlePayload.from_bundle(bundle, cfg.variant, cfg.verify_hash)
    clipped, problem = count_clipped(bundle, spec, cfg, plan_units(spec, cfg.batch_size))  # before Ray starts
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
                cause = user_error(e)
                if cause is None:
                    raise
                raise (ParityError if isinstance(cause, ParityError) else LstmEdgeError)(
                    cause.problem, cause.fix
                ) from None
        seconds = time.perf_counter() - t0
        import pyarrow.dataset as pads  # deferred: pyarrow is heavy

        rows = pads.dataset(str(out), format="parquet").count_rows()
    finally:
        ctx.enable_progress_bars, ctx.execution_options.preserve_order = saved
        if started:
            ray.shutdown()
    checked = "passed" if cfg.self_check else "skipped"  # each actor passed (or found its pass cached), or it failed
    info = {"workers": workers, "variant": cfg.variant, "provider": cfg.provider, "self_check": checked}
    return ScoreResult(out, rows, seconds, "ray", info, clipped, problem)

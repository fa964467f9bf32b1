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

from pathlib import Path

import numpy as np

from lstm_edge.atomic import is_ours
from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError
from lstm_edge.extras import require
from lstm_edge.formats import SCORE_INFO
from lstm_edge.score.batches import score_batch
from lstm_edge.score.config import ENGINES, OUTPUTS, ScoreConfig, ScoreResult
from lstm_edge.score.local import score_local
from lstm_edge.score.ray_engine import BundlePayload, ScoreActor, import_ray, score_ray
from lstm_edge.score.readers import InputSpec, decode_x, inspect_input, iter_unit, plan_units


def score(
    bundle: str | Path, input_path: str | Path, output: str | Path, cfg: ScoreConfig | None = None
) -> ScoreResult:
    """Score every sequence in `input_path` with the bundle and write Parquet to `output`.

    local: one runner in this process, batches streamed from the input (memory ≈ a few batches, not N) into one
    Parquet file, written to a temporary sibling and renamed at the end. ray: see `ray_engine.score_ray`; writes a
    folder of Parquet files, staged the same way.

    Raises:
        LstmEdgeError: bad input, config or output path, a missing pyarrow ([score]) or Ray (the CLI: exit 2).
    """
    cfg = cfg or ScoreConfig()
    cfg.check()
    require("score")  # Parquet out: before any row is read
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
    check_replaceable(out)
    check_features(bundle, spec)  # here, not in a worker: Ray would print its tracebacks before our line
    check_state_outputs(bundle, cfg.outputs)
    if cfg.engine == "ray":
        return score_ray(bundle, spec, out, cfg)
    return score_local(bundle, spec, out, cfg)


def check_replaceable(out: Path) -> None:
    """Refuse to replace an `out` score did not write (a user's own Parquet file is never replaced).

    Raises:
        LstmEdgeError: `out` exists and is neither empty nor score's own output.
    """
    if not out.exists():
        return
    if out.is_dir():  # empty, or a Ray score output: is_ours alone would also let a bundle folder be replaced
        if any(out.iterdir()) and not (is_ours(out) and (out / SCORE_INFO).is_file()):
            raise LstmEdgeError(f"--output {out} is not an lstm-edge score folder", "choose a new path, or delete it")
        return
    import pyarrow.parquet as pq  # deferred: pyarrow is only needed where an output already exists

    try:
        ours = (pq.read_schema(str(out)).metadata or {}).get(b"lstm_edge") == b"score"
    except Exception:  # not Parquet at all (pyarrow raises ArrowInvalid, OSError, …): certainly not ours
        ours = False
    if not ours:
        raise LstmEdgeError(
            f"--output {out} exists and was not written by lstm-edge score", "choose a new path, or delete it"
        )


def check_state_outputs(bundle: str | Path, outputs: tuple[str, ...]) -> None:
    """Refuse hn/cn from a bundle without state I/O whose graph does not return them (its forward exported whole):
    the runner would hand back the zero state it was given, not the model's.

    Raises:
        LstmEdgeError: `outputs` asks for a state output the stateless bundle's graph (manifest io) does not give.
    """
    b = Bundle.open(bundle)
    io = b.manifest.get("io") if isinstance(b.manifest.get("io"), dict) else {}
    gives = {o.get("name") for o in io.get("outputs", []) if isinstance(o, dict)}
    missing = [o for o in outputs if o != "y" and o not in gives]
    if missing and not b.stateful:
        raise LstmEdgeError(
            f"--outputs {','.join(outputs)}: the bundle's graph returns {', '.join(sorted(gives)) or 'y'} alone "
            "(exported as a whole graph, no state outputs)",
            "score --outputs y",
        )


def check_features(bundle: str | Path, spec: InputSpec) -> None:
    """Refuse an array input whose feature count is not the model's (Parquet rows are checked as they are read).

    Raises:
        LstmEdgeError: x's last axis is not the model's input size.
    """
    if spec.x is None:
        return
    config = Bundle.open(bundle).config
    tokens = len(spec.x.shape) == 2  # readers.check_x_shape let only integer ids through at 2-D
    if tokens != bool(config.vocab_size):
        raise LstmEdgeError(
            f"{spec.path}: x has shape {spec.x.shape} ({np.dtype(spec.x.dtype)}), but the model takes "
            + ("token ids [sequences, steps]" if config.vocab_size else "[sequences, steps, features] of floats"),
            "give x as " + ("integer ids [N, T]" if config.vocab_size else f"float [N, T, {config.input_size}]"),
        )
    want = config.input_size if not config.vocab_size else None
    if want is not None and spec.x.shape[-1] != want:
        raise LstmEdgeError(
            f"{spec.path}: x has {spec.x.shape[-1]} features but the model takes {want}",
            f"give x as [sequences, steps, {want}]",
        )


__all__ = [
    "ENGINES",
    "OUTPUTS",
    "BundlePayload",
    "InputSpec",
    "ScoreActor",
    "ScoreConfig",
    "ScoreResult",
    "decode_x",
    "import_ray",
    "inspect_input",
    "iter_unit",
    "plan_units",
    "score",
    "score_batch",
]

"""One batch through a runner into an Arrow table (id + the requested outputs), tagged as score's own output."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError
from lstm_edge.score.config import OUTPUTS

SCORE_METADATA = {b"lstm_edge": b"score"}  # in every Parquet file score writes: what lets a re-run replace it


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
    return to_table(ids, {k: got[k] for k in outputs}, runner.source.config.head if runner.source.config else "last")


def to_table(ids: np.ndarray, cols: dict[str, list[np.ndarray]], head: str):
    """ids and per-row output arrays as a pyarrow Table (id, *cols) tagged with SCORE_METADATA; with head "seq",
    y varies in length per row."""
    import pyarrow as pa  # deferred: pyarrow is heavy, and only Parquet input or output needs it

    arrays, names = [pa.array(ids)], ["id"]
    for name, rows in cols.items():
        arrays.append(nested(rows, ragged_first=(name == "y" and head == "seq")))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(SCORE_METADATA)


def nested(rows: list[np.ndarray], ragged_first: bool):
    """Per-row float32 arrays of one shape → nested fixed-size lists; ragged_first: the first axis varies (y per step)."""
    import pyarrow as pa  # deferred: pyarrow is heavy, and only Parquet input or output needs it

    inner_shape = rows[0].shape[1:] if ragged_first else rows[0].shape
    flat = pa.array(np.concatenate([np.ravel(r) for r in rows]).astype(np.float32, copy=False))
    for n in reversed(inner_shape):
        flat = pa.FixedSizeListArray.from_arrays(flat, int(n))
    if ragged_first:
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
        flat = pa.ListArray.from_arrays(pa.array(offsets), flat)
    return flat

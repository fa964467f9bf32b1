"""Tasks and data: the adding problem (the embedded default), scikit-learn's digits, and user files.

User data layouts:
- `.npz` with arrays `X` [N, T, F] and `y`: [N] or [N, O] float (regression, head `last`), [N, T, O] float
  (regression, head `sequence`), or [N] integer class labels (classification).
- `.csv` in long format with a header: a `sequence` column (id), feature columns, and a `target` column; rows in
  time order, every sequence the same length; the target of a sequence is the value on its last row (an integer
  column → classification, otherwise regression).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_edge.errors import LstmEdgeError

TASKS = ("adding", "digits")


@dataclass
class TaskData:
    """One task's arrays, split train/val/test with a fixed seed."""

    name: str
    kind: str  # "regression" | "classification"
    head: str  # "last" | "sequence"
    output_size: int
    X: np.ndarray  # (N, T, F) float32
    y: np.ndarray  # regression: (N, O) or (N, T, O) float32; classification: (N,) int64
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray

    def split(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        idx = getattr(self, part)
        return self.X[idx], self.y[idx]

    def normalization(self) -> dict[str, list[float]]:
        """Statistics of the training split only, so validation and test stay unseen."""
        X, y = self.split("train")
        flat_x = X.reshape(-1, X.shape[-1])
        x_std = flat_x.std(axis=0)
        stats = {
            "x_mean": flat_x.mean(axis=0).tolist(),
            "x_std": np.where(x_std > 1e-8, x_std, 1.0).tolist(),
            "x_min": flat_x.min(axis=0).tolist(),
            "x_max": flat_x.max(axis=0).tolist(),
        }
        if self.kind == "regression":
            flat = y.reshape(-1, y.shape[-1])
            y_std = flat.std(axis=0)
            stats["y_mean"] = flat.mean(axis=0).tolist()
            stats["y_std"] = np.where(y_std > 1e-8, y_std, 1.0).tolist()
        return stats


def adding_problem(n: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hochreiter & Schmidhuber (1997): x[...,0] ~ U(0,1), x[...,1] marks one step in each half; y = their sum."""
    if seq_len < 2:
        raise LstmEdgeError(f"the adding task needs --seq-len ≥ 2, got {seq_len}", "use e.g. --seq-len 100")
    rng = np.random.default_rng(seed)
    values = rng.random((n, seq_len), dtype=np.float32)
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second])[:, None]  # (N, 1)
    return X, y.astype(np.float32)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (UCI, 1797 images), read row by row as 8-step sequences of 8 pixels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise LstmEdgeError("the digits task needs scikit-learn", "pip install 'lstm-edge[datasets]'") from e
    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)  # (1797, 8, 8), (1797,)


def load_user_data(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise LstmEdgeError(f"data file not found: {path}", "pass an existing .npz or .csv file to --data")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "X" not in z or "y" not in z:
                    raise LstmEdgeError(f"{path} lacks arrays X and y", "save it with np.savez(path, X=X, y=y)")
                X, y = z["X"], z["y"]
        except (ValueError, OSError) as e:
            raise LstmEdgeError(f"{path} is not a readable .npz file ({e})", "save it with np.savez") from e
    elif path.suffix == ".csv":
        X, y = _read_long_csv(path)
    else:
        raise LstmEdgeError(f"unknown data format {path.suffix!r}", "use a .npz (X, y) or a long-format .csv")
    if X.ndim != 3 or len(X) == 0 or X.shape[1] == 0:
        raise LstmEdgeError(f"X in {path} has shape {X.shape}", "X must be [N, T, F] with N ≥ 1 and T ≥ 1")
    if len(y) != len(X):
        raise LstmEdgeError(f"X has {len(X)} sequences but y has {len(y)}", "give one target per sequence")
    if not np.isfinite(X).all() or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise LstmEdgeError(f"{path} holds NaN or Inf values", "clean or impute the data before training")
    return X.astype(np.float32), y


def _read_long_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "sequence" not in rows[0] or "target" not in rows[0]:
        raise LstmEdgeError(f"{path} lacks the columns 'sequence' and 'target'", "see the CSV layout in the README")
    features = [k for k in rows[0] if k not in ("sequence", "target")]
    seqs: dict[str, list[dict]] = {}
    for r in rows:
        seqs.setdefault(r["sequence"], []).append(r)
    lengths = {len(v) for v in seqs.values()}
    if len(lengths) != 1:
        raise LstmEdgeError(f"{path}: sequences have lengths {sorted(lengths)}", "pad or cut them to one length")
    try:
        X = np.array([[[float(r[k]) for k in features] for r in v] for v in seqs.values()], dtype=np.float32)
        targets = [v[-1]["target"] for v in seqs.values()]
        is_int = all(t.strip().lstrip("-").isdigit() for t in targets)
        y = np.array([int(t) for t in targets]) if is_int else np.array([[float(t)] for t in targets], np.float32)
    except ValueError as e:
        raise LstmEdgeError(f"{path} has a non-numeric value ({e})", "every feature and target must be a number") from e
    return X, y


def load_task(task: str, seq_len: int = 100, n: int = 12000, seed: int = 0, data: str | None = None) -> TaskData:
    """Build a task's arrays and its 80/10/10 split (seeded)."""
    if data is not None:
        X, y = load_user_data(data)
        name = Path(data).stem
    elif task == "adding":
        X, y = adding_problem(n, seq_len, seed)
        name = "adding"
    elif task == "digits":
        X, y = digits()
        name = "digits"
    else:
        raise LstmEdgeError(f"unknown task {task!r}", f"choose one of {', '.join(TASKS)} or pass --data FILE")
    if y.dtype.kind in "iu":
        if y.ndim != 1 or y.min() < 0:
            raise LstmEdgeError("class labels must be a 1-D array of integers ≥ 0", "encode classes as 0..K-1")
        kind, head, out = "classification", "last", int(y.max()) + 1
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y[:, None]
        kind, head, out = "regression", ("sequence" if y.ndim == 3 else "last"), y.shape[-1]
        if y.ndim == 3 and y.shape[1] != X.shape[1]:
            raise LstmEdgeError("y is [N, T, O] but its T differs from X's", "give one target per step")
    perm = np.random.default_rng(seed + 1).permutation(len(X))
    n_val = max(1, len(X) // 10)
    n_test = max(1, len(X) // 10) if len(X) >= 3 else 0
    n_train = len(X) - n_val - n_test
    if n_train < 1:
        raise LstmEdgeError(f"only {len(X)} sequences", "give at least 3 sequences (80/10/10 split)")
    return TaskData(
        name=name,
        kind=kind,
        head=head,
        output_size=out,
        X=X,
        y=y,
        train=perm[:n_train],
        val=perm[n_train : n_train + n_val],
        test=perm[n_train + n_val :],
    )


def held_out(task: str, seq_len: int, n: int, seed: int = 0, data: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Data the model never trained on: fresh adding sequences (another seed), or the test split of a fixed
    dataset (`seed` is the training seed, which fixed the split)."""
    if task == "adding" and data is None:
        return adding_problem(n, seq_len, seed + 1_000_003)
    if task not in TASKS and data is None:
        raise LstmEdgeError(
            f"the model's task {task!r} is not built in, so there is no held-out data",
            "pass the data it was trained on with --data FILE",
        )
    X, y = load_task(task, seq_len=seq_len, seed=seed, data=data).split("test")
    return X[:n], y[:n]


def metric(kind: str, y_pred: np.ndarray, y_true: np.ndarray) -> tuple[str, float]:
    """MSE for regression, accuracy (%) for classification."""
    if kind == "classification":
        return "accuracy", float((y_pred.argmax(-1) == y_true).mean() * 100.0)
    return "mse", float(np.mean((y_pred.astype(np.float64) - y_true) ** 2))


def sample_inputs(
    batch: int,
    seq: int,
    input_size: int,
    layers: int,
    hidden: int,
    random_state: bool,
    seed: int,
    x_mean=None,
    x_std=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x in the model's raw units (normal around its normalization statistics); h0/c0 zero or random."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(list(x_mean) if x_mean is not None else [0.0] * input_size, np.float32)
    std = np.asarray(list(x_std) if x_std is not None else [1.0] * input_size, np.float32)
    x = (rng.standard_normal((batch, seq, input_size)) * std + mean).astype(np.float32)
    return (x, *_initial_state(rng, layers, batch, hidden, random_state))


def _initial_state(rng, layers: int, batch: int, hidden: int, random_state: bool) -> tuple[np.ndarray, np.ndarray]:
    if not random_state:
        h0 = np.zeros((layers, batch, hidden), np.float32)
        return h0, h0.copy()
    h0 = rng.uniform(-0.9, 0.9, (layers, batch, hidden)).astype(np.float32)  # h = o·tanh(C) lies in (-1, 1)
    c0 = (rng.standard_normal((layers, batch, hidden)) * 2.0).astype(np.float32)
    return h0, c0


def probe_inputs(
    config, batch: int, seq: int, random_state: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs for parity checks: sequences of the model's own task where it is generated (adding), otherwise
    normal draws around the normalization statistics. Quantize records int8 error on these; verify re-draws them."""
    if config.task != "adding":
        return sample_inputs(
            batch,
            seq,
            config.input_size,
            config.num_layers,
            config.hidden_size,
            random_state,
            seed,
            config.x_mean,
            config.x_std,
        )
    if seq >= 2:
        x = adding_problem(batch, seq, seed)[0]
    else:
        rng = np.random.default_rng(seed)
        x = np.stack([rng.random((batch, 1)), np.ones((batch, 1))], axis=-1).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    return (x, *_initial_state(rng, config.num_layers, batch, config.hidden_size, random_state))


def model_inputs(config, batch: int, seq: int, random_state: bool, seed: int) -> tuple[np.ndarray, ...]:
    """Inputs for any ModelSpec, in `config.input_names` order (x[, lengths], h0[, c0]), in the model's layout.

    x: normal draws around the normalization statistics, or int64 token ids spread over the whole table with both
    edges (0 and vocab_size - 1) present; lengths: mixed within the batch, the first sequence full (T) and the last
    of length 1 when batch > 1; states zero or random ([L·D, B, H_out] and [L·D, B, H])."""
    rng = np.random.default_rng(seed)
    shape = (batch, seq) if config.batch_first else (seq, batch)
    if config.vocab_size:
        x = rng.integers(0, config.vocab_size, shape, dtype=np.int64)
        flat = x.reshape(-1)
        flat[0], flat[-1] = 0, config.vocab_size - 1  # the table's edges
    else:
        mean, std = (np.asarray(v, np.float32) for v in (config.x_mean, config.x_std))
        x = (rng.standard_normal((*shape, config.input_size)) * std + mean).astype(np.float32)
    inputs = [x]
    if config.lengths:
        lengths = rng.integers(1, seq + 1, batch, dtype=np.int64)
        lengths[0] = seq
        if batch > 1:
            lengths[-1] = 1
        inputs.append(lengths)
    rows, width = config.state_shapes["h0"]
    h0, c0 = _initial_state(rng, rows, batch, width, random_state)
    inputs.append(h0)
    if config.has_cell_state:
        inputs.append(_initial_state(rng, rows, batch, config.hidden_size, random_state)[1])
    return tuple(inputs)

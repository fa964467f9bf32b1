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
        """(X, y) of one part: "train", "val" or "test" (shapes as the fields above, N = that part's size)."""
        idx = getattr(self, part)
        return self.X[idx], self.y[idx]

    def normalization(self) -> dict[str, list[float]]:
        """Per-feature statistics of the training split only, so validation and test stay unseen.

        Returns x_mean, x_std (std < 1e-8 → 1.0, so a constant feature does not divide by zero), x_min, x_max, each a
        list of F floats in raw input units; for regression also y_mean, y_std (O floats). ModelConfig takes these
        keyword for keyword.
        """
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
    """The adding problem of Hochreiter & Schmidhuber (1997), `n` sequences of `seq_len` steps from `seed`.

    x[..., 0] ~ U(0, 1); x[..., 1] marks one step in each half of the sequence; y = the sum of the two marked values.
    Returns X (n, seq_len, 2) float32 and y (n, 1) float32. Raises LstmEdgeError for seq_len < 2 (no two halves).
    """
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
    """scikit-learn's bundled 8×8 digits (UCI, 1797 images), read row by row as 8-step sequences of 8 pixels.

    Returns X (1797, 8, 8) float32 pixel intensities 0–16 and y (1797,) int64 labels 0–9. Raises LstmEdgeError when
    scikit-learn is not installed (the `datasets` extra).
    """
    try:
        from sklearn.datasets import load_digits  # deferred: sklearn is heavy, and only this task needs it
    except ImportError as e:
        raise LstmEdgeError("the digits task needs scikit-learn", "pip install 'lstm-edge[datasets]'") from e
    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)  # (1797, 8, 8), (1797,)


def load_user_data(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A user's task file in one of the layouts of the module docstring (.npz with X, y; long-format .csv).

    Returns X (N, T, F) float32 and y as stored ((N,), (N, O), (N, T, O) float, or (N,) integer labels). Raises
    LstmEdgeError for a missing or unreadable file, an unknown suffix, X not [N, T, F] with N, T ≥ 1, a count
    mismatch between X and y, or NaN/Inf values.
    """
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
    """Build a task's arrays and its 80/10/10 train/val/test split (TaskSpec.load is the typed way to call this).

    Args:
        task: "adding" or "digits"; ignored when `data` is given.
        seq_len: T of the adding problem (steps per sequence).
        n: N of the adding problem (sequences).
        seed: draws the adding sequences (seed) and permutes the split (seed + 1).
        data: a user's .npz/.csv file (load_user_data); its stem becomes the task name.

    Returns:
        TaskData: integer targets → classification with head "last"; float targets → regression, head "sequence"
        when y is (N, T, O), else "last".

    Raises:
        LstmEdgeError: an unknown task, unreadable data, bad labels, or fewer than 3 sequences.
    """
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


# Seeds of fresh draws of a generated task (adding) that the model never trained on, offset from the training seed
# far past the seeds training itself uses (seed for the draws, seed + 1 for the split), so no draw coincides.
# Quantize evaluates on "test" and calibrates on "train". The metrics recorded in shipped bundles were measured on
# these exact draws (tests/test_train_checkpoint.py rebuilds them): never change the numbers.
FRESH_SEED_OFFSET = {"test": 1_000_003, "train": 2_000_003}


@dataclass(frozen=True)
class TaskSpec:
    """Which data a task is: everything that fixes its sequences and its train/val/test split.

    Training builds its data from one (`TrainConfig.task_spec()`) and records it in the checkpoint
    (`training["task"]`); quantize reads it back (`TaskSpec.recorded`) to reach the same held-out split, so neither
    side depends on the other's field names.

    Attributes:
        task: "adding", "digits", or any other name for a user's task (then `data` must name its file).
        seq_len: T of generated tasks (adding); fixed datasets keep their own T.
        samples: N of generated tasks; fixed datasets keep their own N.
        seed: the training seed: it draws generated sequences and permutes the 80/10/10 split (seed + 1).
        data: a user's .npz/.csv file, which replaces the built-in task.
    """

    task: str = "adding"
    seq_len: int = 100
    samples: int = 12000
    seed: int = 0
    data: str | None = None

    @classmethod
    def recorded(cls, task: str, training: dict | None, data: str | None = None) -> TaskSpec:
        """The split a checkpoint was trained on, for the model's `task`, with `data` standing in for its file.

        Args:
            task: the model's task (ModelConfig.task).
            training: the checkpoint's `training` record: `{"task": asdict(TaskSpec), …}` where train_to_file wrote
                it; older checkpoints (the shipped models) hold the TrainConfig as `config` and the seed beside it.
                Empty or None (a model not trained by lstm-edge): T = 100, seed 0.
            data: the data file passed now (quantize --data); the recorded path is not reused, since the file may
                have moved or changed since training.

        Returns:
            a TaskSpec; raises nothing (missing fields take the defaults above).
        """
        training = training or {}
        rec = training.get("task")
        if isinstance(rec, dict):
            seq_len, seed, samples = rec.get("seq_len"), rec.get("seed"), rec.get("samples")
        else:  # checkpoints written before training["task"]: TrainConfig's seq_len/samples and the provenance seed
            old = training.get("config") or {}
            seq_len, seed, samples = old.get("seq_len"), training.get("seed"), old.get("samples")
        return cls(
            task=task, seq_len=int(seq_len or 100), samples=int(samples or 12000), seed=int(seed or 0), data=data
        )

    @property
    def has_data(self) -> bool:
        """Whether held-out data exists without asking the user: a built-in task, or a data file."""
        return self.data is not None or self.task in TASKS

    def load(self) -> TaskData:
        """The task's arrays and split (load_task on these fields); raises LstmEdgeError as load_task does."""
        return load_task(self.task, seq_len=self.seq_len, n=self.samples, seed=self.seed, data=self.data)


def held_out(spec: TaskSpec, part: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` sequences of a task for judging ("test") or calibrating ("train") a trained model.

    A generated task (adding) gets fresh draws at seed + FRESH_SEED_OFFSET[part], never the training draws; a fixed
    dataset or a data file gets the first `n` of that part of its seeded 80/10/10 split.

    Args:
        spec: the task and split the model was trained on (TaskSpec.recorded for a checkpoint).
        part: "test" (held-out evaluation) or "train" (calibration).
        n: at most this many sequences (a fixed dataset's split may hold fewer).

    Returns:
        X (n, T, F) float32 in raw input units, and y as load_task gives it ((n, O) float32 or (n,) int64).

    Raises:
        LstmEdgeError: the task is not built in and no data file was given, or the file cannot be read.
    """
    if part not in FRESH_SEED_OFFSET:
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    if spec.task == "adding" and spec.data is None:
        return adding_problem(n, spec.seq_len, spec.seed + FRESH_SEED_OFFSET[part])
    if not spec.has_data:
        what = "held-out" if part == "test" else "calibration"
        raise LstmEdgeError(
            f"the model's task {spec.task!r} is not built in, so there is no {what} data",
            "pass the data it was trained on with --data FILE (.npz or .csv)",
        )
    X, y = spec.load().split(part)
    return X[:n], y[:n]


def metric(kind: str, y_pred: np.ndarray, y_true: np.ndarray) -> tuple[str, float]:
    """The task metric of predictions against targets, as (name, value).

    Regression: ("mse", mean squared error in the target's units², computed in float64) for y_pred and y_true of the
    same shape. Classification: ("accuracy", % of argmax(y_pred[..., K]) equal to the integer labels y_true, 0–100).
    """
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
    """Random model inputs: x ~ N(x_mean, x_std) per feature in the model's raw units, and an initial state.

    Args:
        batch, seq: B and T. input_size, layers, hidden: F, L, H of the model.
        random_state: False → h0 = c0 = 0; True → h0 ~ U(-0.9, 0.9) (h = o·tanh(c) lies in (-1, 1)), c0 ~ N(0, 2²).
        seed: numpy Generator seed (same seed, same arrays).
        x_mean, x_std: F floats each (the model's normalization statistics); None → 0 and 1.

    Returns:
        x (B, T, F), h0 (L, B, H), c0 (L, B, H), all float32.
    """
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
    x ~ N(x_mean, x_std) per feature from the config's recorded normalization statistics (sample_inputs).

    Quantize records a variant's error profile on these (and, without task data, all its error statistics);
    verify re-draws them with other seeds. `config` is the model's ModelConfig; batch, seq are B and T; T = 1 of the
    adding task marks its single step. Returns x (B, T, F), h0 and c0 (L, B, H), float32, as sample_inputs.
    """
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

"""The data quantize measures and calibrates on, kept apart from the ONNX Runtime calls (as ORT keeps calibrate.py).

- Evaluation: the task's held-out split (lstm_edge.data.held_out on the checkpoint's recorded TaskSpec), or, for a
  task that is not built in and no --data, probe inputs x ~ N(x_mean, x_std) from the recorded normalization
  statistics: enough to measure output error, not the task metric.
- Calibration (static int8): the task's training split, streamed to ORT through its CalibrationDataReader protocol.
- Input ranges for input equalization (dynamic int8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_edge.config import C0, H0, ModelConfig, X
from lstm_edge.data import FRESH_SEED_OFFSET, TaskSpec, held_out, probe_inputs
from lstm_edge.errors import LstmEdgeError
from lstm_edge.progress import progress_bar

NO_DATA = "not measured (no data)"


@dataclass
class EvalData:
    """What quantize measures a variant on.

    Attributes:
        X: (N, T, F) float32 inputs in the model's raw units.
        y: the task's targets for X ((N, O) float32 or (N,) int64), or None where there is no task data (probe inputs).
        source: one line saying what X is, for the report.
    """

    X: np.ndarray
    y: np.ndarray | None
    source: str

    @property
    def has_targets(self) -> bool:
        """Whether the task metric can be measured on this data."""
        return self.y is not None


def evaluation_data(spec: TaskSpec, config: ModelConfig, n: int) -> EvalData:
    """Up to `n` held-out sequences of the model's task, or `n` probe sequences where the task has no data.

    Args:
        spec: the checkpoint's recorded task and split, with quantize's --data in `spec.data`.
        config: the model's config (its recorded x_mean/x_std shape the probe inputs).
        n: the number of sequences (QuantizeConfig.eval_samples).

    Returns:
        EvalData; probe inputs have T = spec.seq_len (100 when the checkpoint recorded none) and zero initial state,
        drawn at the seed of the held-out split so they are the same on every run.

    Raises:
        LstmEdgeError: the data file cannot be read (see lstm_edge.data.load_user_data).
    """
    if spec.has_data:
        X_eval, y_eval = held_out(spec, "test", n)
        return EvalData(X_eval, y_eval, f"{len(X_eval)} held-out sequences of the task ({spec.data or spec.task})")
    x = probe_inputs(config, n, spec.seq_len, False, seed=spec.seed + FRESH_SEED_OFFSET["test"])[0]
    return EvalData(
        x,
        None,
        f"{n} probe sequences of T={spec.seq_len}, x ~ N(x_mean, x_std) from the recorded normalization "
        "(no task data: pass --data to measure the task metric)",
    )


def calibration_inputs(spec: TaskSpec, n: int) -> np.ndarray:
    """Up to `n` sequences of the task's training split (fresh draws for the adding task), (n, T, F) float32.

    Raises:
        LstmEdgeError: the task is not built in and no --data was given (static int8 cannot calibrate on random
            inputs: its activation scales would fit the wrong ranges), or the data file cannot be read.
    """
    if not spec.has_data:
        raise LstmEdgeError(
            f"static quantization needs calibration data, and the model's task {spec.task!r} is not built in",
            "pass the data it was trained on with --data FILE (.npz or .csv), or use --mode dynamic or fp16",
        )
    return held_out(spec, "train", n)[0]


def input_ranges(config: ModelConfig, spec: TaskSpec, n: int) -> dict | None:
    """Per-feature input range for input equalization (model.input_equalized), in raw input units.

    The training data's (recorded in the config by `lstm-edge train`) unless --data was passed, else the range of `n`
    calibration sequences. Returns {"x_min": [F], "x_max": [F], "source": str}, or None where neither exists (a
    custom task without --data); raises LstmEdgeError only for an unreadable data file.
    """
    if config.x_min and config.x_max and spec.data is None:
        return {"x_min": list(config.x_min), "x_max": list(config.x_max), "source": "training data (checkpoint config)"}
    if not spec.has_data:
        return None
    X_cal = calibration_inputs(spec, n)
    flat = X_cal.reshape(-1, X_cal.shape[-1]).astype(np.float64)
    return {"x_min": flat.min(0).tolist(), "x_max": flat.max(0).tolist(), "source": "calibration data"}


class CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over calibration sequences, with a progress bar.

    Feeds x (B ≤ `batch`, T, F) with zero h0/c0 (L, B, H), as the model starts a sequence.
    """

    def __init__(self, X_cal: np.ndarray, layers: int, hidden: int, progress: bool, batch: int = 16) -> None:
        self._batches = [X_cal[i : i + batch] for i in range(0, len(X_cal), batch)]
        self._bar = progress_bar(total=len(X_cal), desc="calibrate", unit="seq", enabled=progress)
        self._it = iter(self._batches)
        self._shape = (layers, hidden)
        self.inputs = {X, H0, C0}  # what the model takes (an imported model without state I/O: x alone)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch's feeds {x, h0, c0}, or None after the last (ORT's end-of-data signal)."""
        xb = next(self._it, None)
        if xb is None:
            self._bar.close()
            return None
        self._bar.update(len(xb))
        h = np.zeros((self._shape[0], len(xb), self._shape[1]), np.float32)
        return {k: v for k, v in {X: xb, H0: h, C0: h.copy()}.items() if k in self.inputs}

    def rewind(self) -> None:
        """Start again from the first batch (ORT calls this between calibration passes)."""
        self._it = iter(self._batches)

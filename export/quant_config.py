"""The options of `lstm-edge quantize` (QuantizeConfig) and their checks, read by every quantize module."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lstm_edge.bundle import variant_for_mode
from lstm_edge.errors import LstmEdgeError

METHODS = ("minmax", "entropy", "percentile")
# --calibration-samples / eval sequences: ORT's static calibration runs each through an augmented session
# (~2 ms a sequence of T=100 here), so 100 000 is already ~3 minutes; 10⁹ was accepted and died allocating.
MAX_SAMPLES = 100_000


@dataclass
class QuantizeConfig:
    """Options of `lstm-edge quantize` (see its --help); sample counts are sequences."""

    mode: str = "all"  # dynamic | static | fp16 | all
    calibration_samples: int = 256
    method: str = "minmax"  # minmax | entropy | percentile
    per_channel: bool = True  # measured better on LSTM weights (see the README's quantization table)
    # Weights in [-64, 64]: without it ORT's u8×s8 kernels saturate on x86 CPUs without VNNI, so the same int8 file
    # gives 13× its fp32 MSE there (measured; see lstm_edge.int8_sim.WEIGHT_LEVELS) and a verdict that depends on
    # the CPU it was measured on.
    reduce_range: bool = True
    max_metric_drop: float | None = None  # None: 5% relative for MSE, 0.5 points for accuracy
    data: str | None = None
    quantize_state: bool = False
    eval_samples: int = 512
    progress: bool = True


def check_options(cfg: QuantizeConfig) -> None:
    """Raises LstmEdgeError (exit 2) for options wrong in themselves, before anything is read."""
    if cfg.mode != "all":
        variant_for_mode(cfg.mode)
    if cfg.method not in METHODS:
        raise LstmEdgeError(f"unknown --method {cfg.method!r}", "choose minmax, entropy or percentile")
    for flag, n in (("--calibration-samples", cfg.calibration_samples), ("eval_samples", cfg.eval_samples)):
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SAMPLES:
            raise LstmEdgeError(f"{flag} {n}", f"pass a count in 1..{MAX_SAMPLES}")
    drop = cfg.max_metric_drop
    if drop is not None and not (isinstance(drop, int | float) and math.isfinite(drop) and drop >= 0):
        raise LstmEdgeError(f"--max-metric-drop {drop}", "give a finite budget ≥ 0 (0.05 = 5% relative MSE)")

"""Golden vectors: input cases with the PyTorch outputs, which every runtime, test and embedding checks against."""

from __future__ import annotations

import numpy as np

from lstm_edge.config import ModelConfig
from lstm_edge.data import model_inputs
from lstm_edge.export.validate import Reference

# (name, B, T, random initial state): different batches, lengths, zero and random state.
GOLDEN_CASES = (
    ("b1_t1_zero", 1, 1, False),
    ("b2_t16_random", 2, 16, True),
    ("b3_t50_zero", 3, 50, False),
    ("b1_t100_random", 1, 100, True),
)


def make_golden(reference: Reference, config: ModelConfig, seed: int = 7) -> dict[str, np.ndarray]:
    """Flat {"case/array": ndarray} for np.savez: each case's inputs (config.input_names: float32, int64 token ids
    and lengths kept int64) and the reference's outputs (config.output_names, float32)."""
    arrays: dict[str, np.ndarray] = {}
    for k, (name, B, T, random_state) in enumerate(GOLDEN_CASES):
        inputs = model_inputs(config, B, T, random_state, seed + k)
        outputs = reference(*inputs)
        for key, a in (*zip(config.input_names, inputs, strict=True), *zip(config.output_names, outputs, strict=True)):
            a = np.asarray(a)
            arrays[f"{name}/{key}"] = np.ascontiguousarray(a, dtype=np.int64 if a.dtype.kind in "iu" else np.float32)
    return arrays

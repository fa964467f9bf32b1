"""Golden vectors: input cases with the PyTorch outputs, which every runtime, test and embedding checks against."""

from __future__ import annotations

import numpy as np

from lstm_edge.data import sample_inputs
from lstm_edge.export.validate import Reference

# (name, B, T, random initial state): different batches, lengths, zero and random state.
GOLDEN_CASES = (
    ("b1_t1_zero", 1, 1, False),
    ("b2_t16_random", 2, 16, True),
    ("b3_t50_zero", 3, 50, False),
    ("b1_t100_random", 1, 100, True),
)


def make_golden(reference: Reference, dims: dict, seed: int = 7) -> dict[str, np.ndarray]:
    """Flat {"case/array": ndarray} for np.savez: x, h0, c0 and the reference's y, hn, cn per case."""
    arrays: dict[str, np.ndarray] = {}
    for k, (name, B, T, random_state) in enumerate(GOLDEN_CASES):
        x, h0, c0 = sample_inputs(
            B,
            T,
            dims["input_size"],
            dims["num_layers"],
            dims["hidden_size"],
            random_state,
            seed + k,
            x_mean=dims.get("x_mean"),
            x_std=dims.get("x_std"),
        )
        y, hn, cn = reference(x, h0, c0)
        for key, a in (("x", x), ("h0", h0), ("c0", c0), ("y", y), ("hn", hn), ("cn", cn)):
            arrays[f"{name}/{key}"] = np.ascontiguousarray(a, dtype=np.float32)
    return arrays

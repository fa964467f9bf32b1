"""Every numerical tolerance in lstm-edge, with the reason for its value. Tests, export and verify read these."""

from __future__ import annotations

import numpy as np

# Float64 mapping checks (GateLSTM ↔ nn.LSTM): both compute the same equations in double; anything above
# rounding noise means a wrong weight mapping.
MAPPING_F64 = 1e-6  # the bound; measured differences sit near 1e-15

# Float32 runtimes against the PyTorch float32 reference. oneDNN's fused nn.LSTM kernel is itself up to ~2e-6
# from the exact result, and ORT/OpenVINO/tract reassociate the same sums differently. A trained adding model's
# cell state reaches ~35-60 over 300 steps, where one float32 ulp is ~4e-6, so the bound scales with
# max(1, |reference|) per element.
FP32_ABS = 1e-5

# fp16 weights and activations carry ~3 decimal digits (eps 9.8e-4); over a two-layer LSTM the rounding of
# the 4H-wide pre-activations compounds to ~1e-3. 1e-2 leaves a factor of ~10 before a real defect.
FP16_ABS = 1e-2

# int8: no fixed elementwise bound is meaningful (weights are rounded to 1/127 of their range). An int8 variant
# is judged by its task metric against the budget set at quantize time (lstm_edge.export.quantize), and in
# verify by an error bound recorded in the manifest from held-out data, multiplied by this safety factor for
# unseen shapes and initial states.
INT8_RECORDED_FACTOR = 4.0
# ... and error growth over time must stay bounded: the error at T=1000 may exceed the error at T=100 by at
# most this factor (a leaking int8 state would grow without bound).
INT8_GROWTH_MAX = 4.0

# Default quantization budgets (issue #4): relative increase of an MSE-type metric, points of accuracy.
MSE_RELATIVE_DROP = 0.05
ACCURACY_POINTS_DROP = 0.5


def scaled_error(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|actual - reference| / max(1, |reference|), in float64."""
    ref = reference.astype(np.float64)
    return np.abs(actual.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))


def precision_tolerance(precision: str) -> float | None:
    """The fixed scaled bound for a precision; None where the manifest's recorded bound applies (int8)."""
    return {"fp32": FP32_ABS, "fp16": FP16_ABS}.get(precision)


def tolerance(entry: dict, seq: int, output: str) -> float:
    """The scaled bound for one output of a bundle variant (its manifest entry) at sequence length `seq`.

    fp32/fp16: the fixed bound. int8: the error quantize recorded at the nearest measured length ≥ seq (so growth
    over T is bounded by the recorded profile), times INT8_RECORDED_FACTOR, and never below the fp32 bound — the
    float parts of an int8 graph cannot beat float32 noise.
    """
    fixed = precision_tolerance(entry.get("precision", ""))
    if fixed is not None:
        return fixed
    profile = (entry.get("report") or {}).get("error_profile")
    if not profile:
        from lstm_edge.errors import LstmEdgeError

        raise LstmEdgeError(
            f"the {entry.get('path')} variant has no recorded error profile", "re-run `lstm-edge quantize`"
        )
    buckets = sorted(int(t) for t in profile)
    bucket = next((t for t in buckets if t >= seq), buckets[-1])
    return max(profile[str(bucket)][output] * INT8_RECORDED_FACTOR, FP32_ABS)


# The int8 C (lstm-edge codegen --precision int8) against its Python simulation (lstm_edge.c_int8_sim): every float
# operation is one IEEE float32 operation in the same order on both sides, integer sums are exact, and the C is
# built with -ffp-contract=off and no libm, so they agree to the last bit (measured: 0 on x86-64 gcc and clang, and
# on the emulated Cortex-M4F).
C_INT8_VS_SIM = 0.0

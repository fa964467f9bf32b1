"""Every numerical tolerance in lstm-edge, with the reason for its value. Tests, export and verify read these."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.registry import RUNTIMES

# Float64 mapping checks (GateLSTM ↔ nn.LSTM): both compute the same equations in double; anything above
# rounding noise means a wrong weight mapping.
MAPPING_F64 = 1e-6  # the bound; measured differences sit near 1e-15

# Float32 runtimes against the PyTorch float32 reference. oneDNN's fused nn.LSTM kernel is itself up to ~2e-6
# from the exact result, and ORT/OpenVINO/tract reassociate the same sums differently. A trained adding model's
# cell state reaches ~35-60 over 300 steps, where one float32 ulp is ~4e-6, so the bound scales with
# max(1, |reference|) per element.
FP32_ABS = 1e-5

# A runtime may add a scaled error per recurrent step on top of FP32_ABS: its Sigmoid's worst bin mean bias near
# saturation, tract's 3.5e-7 a step and ONNX Runtime CPU's 1.8e-8 (which took one draw at T=1000 to 1.42e-5); the
# others keep FP32_ABS. Each value and the measurement behind it sit in that runtime's entry of the one
# table of runtimes (lstm_edge.runtimes.registry: fp32_drift_per_step, fp32_drift_reason); this is the view of it.
FP32_SIGMOID_BIAS_PER_STEP = {p: i.fp32_drift_per_step for p, i in RUNTIMES.items() if i.fp32_drift_per_step}

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


def metric_drop(kind: str, fp32: float, variant: float) -> tuple[float, float]:
    """(drop, default budget) of a variant's task metric against fp32's: for "classification" accuracy points lost
    (fp32 − variant, budget ACCURACY_POINTS_DROP), else the relative MSE increase ((variant − fp32) / fp32, budget
    MSE_RELATIVE_DROP). A variant is within budget when drop ≤ budget. Raises ZeroDivisionError for an fp32 MSE of 0."""
    if kind == "classification":
        return fp32 - variant, ACCURACY_POINTS_DROP
    return (variant - fp32) / fp32, MSE_RELATIVE_DROP


def scaled_error(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|actual - reference| / max(1, |reference|), in float64."""
    ref = reference.astype(np.float64)
    return np.abs(actual.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))


def error_stats(actual: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """Error statistics of one output against its reference, computed in float64 over all elements.

    Returns max/mean/p99 of |Δ| (absolute, in the output's units) and of |Δ|/max(|ref|, 1e-6) (relative), the
    cosine similarity, the SQNR in dB (10·log10(Σref² / Σ|Δ|²); None when the two are identical), and the
    max scaled error |Δ|/max(1, |ref|) that every tolerance here bounds. Empty arrays give zeros.
    """
    a, b = actual.astype(np.float64).ravel(), reference.astype(np.float64).ravel()
    if not a.size:
        zero = dict.fromkeys(("max_abs", "mean_abs", "p99_abs", "max_rel", "mean_rel", "p99_rel", "max_scaled"), 0.0)
        return zero | {"cosine": 1.0, "sqnr_db": None}
    d = np.abs(a - b)
    rel = d / np.maximum(np.abs(b), 1e-6)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    noise = float(np.sum(d**2))
    return {
        "max_abs": float(d.max()),
        "mean_abs": float(d.mean()),
        "p99_abs": float(np.percentile(d, 99)),
        "max_rel": float(rel.max()),
        "mean_rel": float(rel.mean()),
        "p99_rel": float(np.percentile(rel, 99)),
        "cosine": float(a @ b / norm) if norm > 0 else 1.0,
        "sqnr_db": float(10 * np.log10(np.sum(b**2) / noise)) if noise > 0 and np.any(b) else None,
        "max_scaled": float(scaled_error(a, b).max()),
    }


def fp32_tolerance(seq: int, runtime: str | None = None) -> float:
    """The scaled float32 bound after `seq` recurrent steps on `runtime` (a provider name; None: any runtime).

    FP32_ABS, plus seq × FP32_SIGMOID_BIAS_PER_STEP for a runtime whose sigmoid is biased (tract: 1e-5 + 3.5e-4 at
    seq 1000). Raises nothing.
    """
    return FP32_ABS + seq * FP32_SIGMOID_BIAS_PER_STEP.get(runtime or "", 0.0)


def precision_tolerance(precision: str, seq: int = 1, runtime: str | None = None) -> float | None:
    """The scaled bound for a precision at sequence length `seq` on `runtime`; None where the manifest's recorded
    bound applies (int8)."""
    if precision == "fp32":
        return fp32_tolerance(seq, runtime)
    return {"fp16": FP16_ABS}.get(precision)


def tolerance(entry: dict, seq: int, output: str, runtime: str | None = None) -> float:
    """The scaled bound for one output of a bundle variant (its manifest entry) at sequence length `seq` (steps),
    run by `runtime` (a provider name such as "tract"; None: the bound every runtime shares).

    fp32: fp32_tolerance(seq, runtime). fp16: the fixed bound, or for a variant quantize measured over it (not
    deployable) its measured worst (report.parity_bound.max_scaled). int8: the error quantize recorded at the nearest
    measured length ≥ seq (so growth over T is bounded by the recorded profile), times INT8_RECORDED_FACTOR, and
    never below the fp32 bound — the float parts of an int8 graph cannot beat float32 noise. An output the variant's
    graph does not have (a stateless graph's hn/cn, passed through by the runner) is held to the fp32 bound.
    The c runtime's int8 is its own scheme, held to the profile quantize recorded for it (c_error_profile) where
    there is one; an entry quantized before that record holds ORT's alone, which stays the c runtime's bound.
    Raises LstmEdgeError when an int8 entry has no recorded error profile.
    """
    fixed = precision_tolerance(entry.get("precision", ""), seq, runtime)
    report = entry.get("report") or {}
    worst = (report.get("parity_bound") or {}).get("max_scaled") if entry.get("precision") == "fp16" else None
    if fixed is not None and worst is not None and worst > fixed:
        # An fp16 variant quantize measured over the fixed bound (and marked not deployable: the shipped adding
        # model's cn reaches 0.128 at T=1000) is held to its own measured worst, so its self-check refuses a corrupt
        # file, not the precision loss quantize already reported.
        return float(worst)
    if fixed is not None:
        return fixed
    profile = (runtime == "c" and report.get("c_error_profile")) or report.get("error_profile")
    if not profile:
        raise LstmEdgeError(
            f"the {entry.get('path')} variant has no recorded error profile", "re-run `lstm-edge quantize`"
        )
    recorded = _recorded(profile, seq, output)
    if recorded is None:  # a graph without this output (a stateless one's hn/cn): the runner hands back its input
        return fp32_tolerance(seq, runtime)
    return max(recorded * INT8_RECORDED_FACTOR, fp32_tolerance(seq, runtime))


def _recorded(profile: dict | None, seq: int, output: str) -> float | None:
    """The error a profile ({T: {output: error}}) recorded at the nearest measured length ≥ seq (the longest where
    seq is beyond them all); None without a profile or a figure for `output`."""
    if not profile:
        return None
    buckets = sorted(int(t) for t in profile)
    bucket = next((t for t in buckets if t >= seq), buckets[-1])
    return profile[str(bucket)].get(output)


# The int8 C (lstm-edge codegen --precision int8) against its Python simulation (lstm_edge.c_int8_sim): every float
# operation is one IEEE float32 operation in the same order on both sides, integer sums are exact, and the C is
# built with -ffp-contract=off and no libm, so they agree to the last bit (measured: 0 on x86-64 gcc and clang, and
# on the emulated Cortex-M4F).
C_INT8_VS_SIM = 0.0

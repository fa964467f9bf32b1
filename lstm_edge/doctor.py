"""`lstm-edge doctor`: what is installed, what clashes, what the CPU offers for int8."""

from __future__ import annotations

import ctypes.util

from lstm_edge.environment import cpu_features, ort_import_error, ort_providers, versions
from lstm_edge.runtimes.registry import RUNTIMES


def _find_lib(names: list[str]) -> str | None:
    for n in names:
        found = ctypes.util.find_library(n)
        if found:
            return found
    return None


def diagnose() -> dict:
    """What is installed, what clashes, what the CPU offers, each problem with its fix.

    Returns {"versions": {dist: version | None}, "ort_providers": [...], "cuda": "available" or the reason not,
    "cuda_libraries": {"cudart"|"cublas"|"cudnn": found}, "cpu_features": {...}, "problems": [{"problem", "fix"}]}.
    Problems are advice, not errors: raises nothing.
    """
    cpu, cuda = RUNTIMES["cpu"], RUNTIMES["cuda"]
    ort_extras = f"'lstm-edge[{cpu.extra}]' (or [{cuda.extra}])"
    found = versions()
    problems = []
    providers = ort_providers()
    if providers is None and (found["onnxruntime"] or found["onnxruntime-gpu"]):
        problems.append(
            {
                "problem": f"ONNX Runtime is installed but cannot be imported ({ort_import_error()})",
                "fix": f"pip install --force-reinstall {ort_extras}; check its shared libraries",
            }
        )
    elif providers is None:
        problems.append({"problem": "ONNX Runtime is not installed", "fix": f"pip install {ort_extras}"})
    reason = cuda.unavailable_reason()
    if reason and "both onnxruntime" in reason:
        p, _, fix = reason.partition(" — ")
        problems.append({"problem": p, "fix": fix})
    libs = {"cudart": _find_lib(["cudart"]), "cublas": _find_lib(["cublas"]), "cudnn": _find_lib(["cudnn"])}
    if found["onnxruntime-gpu"] and not all(libs.values()):
        missing = ", ".join(k for k, v in libs.items() if not v)
        problems.append(
            {
                "problem": f"onnxruntime-gpu is installed but {missing} not found",
                "fix": "install the CUDA runtime and cuDNN 9 (pip install nvidia-cudnn-cu12 …) or add them to "
                "LD_LIBRARY_PATH",
            }
        )
    features = cpu_features()
    if not (features["avx512_vnni"] or features["avx_vnni"]):
        problems.append(
            {
                "problem": "the CPU has no VNNI: int8 dot products are emulated and gain less",
                "fix": "expect smaller int8 speed-ups here than on VNNI CPUs (advice, not an error)",
            }
        )
    return {
        "versions": found,
        "ort_providers": providers or [],
        "cuda": reason or "available",
        "cuda_libraries": {k: bool(v) for k, v in libs.items()},
        "cpu_features": features,
        "problems": problems,
    }

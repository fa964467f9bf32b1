"""`lstm-edge doctor`: what is installed, what clashes, what the CPU offers for int8."""

from __future__ import annotations

import ctypes.util
import importlib.metadata as md
import platform
from pathlib import Path


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _find_lib(names: list[str]) -> str | None:
    for n in names:
        found = ctypes.util.find_library(n)
        if found:
            return found
    return None


def diagnose() -> dict:
    from lstm_edge.runtimes.ort_cuda import cuda_unavailable_reason

    versions = {"python": platform.python_version()}
    for dist in (
        "lstm-edge",
        "torch",
        "onnx",
        "onnxscript",
        "onnxruntime",
        "onnxruntime-gpu",
        "openvino",
        "tract",
    ):
        versions[dist] = _version(dist)
    problems = []
    providers: list[str] = []
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        problems.append({"problem": "ONNX Runtime is not installed", "fix": "pip install 'lstm-edge[cpu]' (or [cuda])"})
    reason = cuda_unavailable_reason()
    if reason and "both onnxruntime" in reason:
        p, _, fix = reason.partition(" — ")
        problems.append({"problem": p, "fix": fix})
    libs = {"cudart": _find_lib(["cudart"]), "cublas": _find_lib(["cublas"]), "cudnn": _find_lib(["cudnn"])}
    if versions["onnxruntime-gpu"] and not all(libs.values()):
        missing = ", ".join(k for k, v in libs.items() if not v)
        problems.append(
            {
                "problem": f"onnxruntime-gpu is installed but {missing} not found",
                "fix": "install the CUDA runtime and cuDNN 9 (pip install nvidia-cudnn-cu12 …) or add them to "
                "LD_LIBRARY_PATH",
            }
        )
    flags = _cpu_flags()
    features = {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "amx": "amx_int8" in flags,
    }
    if not (features["avx512_vnni"] or features["avx_vnni"]):
        problems.append(
            {
                "problem": "the CPU has no VNNI: int8 dot products are emulated and gain less",
                "fix": "expect smaller int8 speed-ups here than on VNNI CPUs (advice, not an error)",
            }
        )
    return {
        "versions": versions,
        "ort_providers": providers,
        "cuda": reason or "available",
        "cuda_libraries": {k: bool(v) for k, v in libs.items()},
        "cpu_features": features,
        "problems": problems,
    }

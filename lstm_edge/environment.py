"""What this machine offers, probed in one place: package versions, runtimes usable here, CPU model, features and
cores. verify and bench record it beside their figures; doctor judges it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from lstm_edge.runtimes.registry import RUNTIMES
from lstm_edge.version import __version__

# The distributions every figure depends on (lstm-edge itself and its exporter's stack) ...
CORE_DISTRIBUTIONS = ("lstm-edge", "torch", "onnx", "onnxscript")
# ... and with them each runtime's (runtimes.registry): together, the versions that explain a parity or speed figure.
DISTRIBUTIONS = tuple(dict.fromkeys(CORE_DISTRIBUTIONS + tuple(d for i in RUNTIMES.values() for d in i.distributions)))


def version(dist: str) -> str | None:
    """The installed version of distribution `dist` (a PyPI name), or None when it is not installed."""
    import importlib.metadata as md  # deferred: ~10 ms; the c runner's cache key reads cpu_model() alone

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """python and every distribution in DISTRIBUTIONS → its version (None: not installed)."""
    return {"python": platform.python_version(), **{d: version(d) for d in DISTRIBUTIONS}}


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: no flags, platform.processor() for the model
        return []


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return next((set(ln.split(":", 1)[1].split()) for ln in _cpuinfo() if ln.startswith("flags")), set())


def cpu_features() -> dict[str, bool]:
    """The features that decide int8 and float32 kernels: avx2, avx512f, avx512_vnni, avx_vnni, amx (amx_int8)."""
    flags = cpu_flags()
    return {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "amx": "amx_int8" in flags,
    }


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC …"), or platform.processor() where /proc/cpuinfo has none."""
    return next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), platform.processor())


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ort_import_error() -> str | None:
    """Why `import onnxruntime` fails here ("ImportError: …" or "OSError: …", one line), or None when it imports.
    An installed ONNX Runtime whose shared libraries fail to load raises OSError, not ImportError."""
    try:
        import onnxruntime  # noqa: F401  # deferred: onnxruntime is heavy and optional
    except (ImportError, OSError) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return None


def ort_providers() -> list[str] | None:
    """ONNX Runtime's available execution providers, or None when onnxruntime is not installed or fails to import
    (ort_import_error says why)."""
    try:
        import onnxruntime as ort  # deferred: onnxruntime is heavy and optional
    except (ImportError, OSError):
        return None
    return ort.get_available_providers()


def available_providers() -> dict[str, str | None]:
    """Each deployable provider of runtimes.RUNTIMES (torch, cpu, cuda, openvino, tract, c) → None when usable here,
    else the reason it is not (one line with the fix, e.g. "tract not installed (lstm-edge[tract])"). Imports no
    runtime but ONNX Runtime (to ask it for CUDA); raises nothing."""
    return {p: info.unavailable_reason() for p, info in RUNTIMES.items() if info.deployable}


def environment() -> dict:
    """The record verify and bench keep beside their figures: {"lstm_edge": version, "versions": versions(),
    "ort_providers": [...] ([] without onnxruntime), "cpu": {"model", "cores", **cpu_features()}, "platform"}."""
    return {
        "lstm_edge": __version__,
        "versions": versions(),
        "ort_providers": ort_providers() or [],
        "cpu": {"model": cpu_model(), "cores": cores(), **cpu_features()},
        "platform": platform.platform(),
    }

"""How to tell whether a runtime can run here, and why not: probed without opening a model, and without importing a
runtime nobody asked for. The registry's entries (runtimes.registry) point at these; environment and doctor read
the answers through the registry."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from lstm_edge.errors import LstmEdgeError, first_line

# The ONNX Runtime distributions that install the same `onnxruntime` module (two at once overwrite each other's files).
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")
C_COMPILERS = ("cc", "gcc", "clang")


def import_ort(extra: str = "cpu"):
    """The onnxruntime module.

    Raises:
        LstmEdgeError: naming `pip install 'lstm-edge[extra]'` when it is missing, a reinstall when it is
            installed but a shared library it needs fails to load (OSError on import), or the uninstall when two
            ONNX Runtime distributions are installed beside each other (the [cpu] and [cuda] extras together).
    """
    try:
        import onnxruntime as ort  # deferred: onnxruntime is heavy and optional
    except ImportError as e:
        raise LstmEdgeError("ONNX Runtime is not installed", f"pip install 'lstm-edge[{extra}]'") from e
    except OSError as e:  # installed, but a shared library it needs fails to load
        raise LstmEdgeError(
            f"ONNX Runtime is installed but cannot be imported (OSError: {first_line(e, 160)})",
            f"reinstall it: pip install --force-reinstall 'lstm-edge[{extra}]'",
        ) from e
    found = ort_distributions_beside(ort)
    if len(found) > 1:  # pip cannot keep [cpu] and [cuda] apart: whichever installed last owns the module's files
        raise LstmEdgeError(
            f"both {' and '.join(found)} are installed; they install the same onnxruntime module and overwrite "
            "each other's files",
            f"pip uninstall -y {' '.join(found)} && pip install 'lstm-edge[{extra}]' (never [cpu] and [cuda] together)",
        )
    return ort


def ort_distributions_beside(ort) -> list[str]:
    """The ONNX Runtime distributions (ORT_DISTRIBUTIONS) whose metadata sits in the folder the imported `ort`
    module was loaded from: one folder listing (~0.3 ms), where importlib.metadata costs ~10 ms of a cold start.
    Raises nothing."""
    site = Path(ort.__file__).parent.parent
    try:
        names = {re.sub(r"[-_.]+", "-", d.name.split("-")[0]).lower() for d in site.glob("onnxruntime*.dist-info")}
    except OSError:
        return []
    return [d for d in ORT_DISTRIBUTIONS if d in names]


def ort_packages() -> list[str]:
    """Which ONNX Runtime distributions are installed (two at once overwrite each other's files)."""
    import importlib.metadata as md  # deferred: ~10 ms (email, csv); opening a runner never asks this

    found = []
    for dist in ORT_DISTRIBUTIONS:
        try:
            md.version(dist)
            found.append(dist)
        except md.PackageNotFoundError:
            pass
    return found


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA provider cannot run here ("problem — fix", one line), or None when it is available. Imports
    onnxruntime when one is installed; raises nothing."""
    pkgs = ort_packages()
    if "onnxruntime" in pkgs and "onnxruntime-gpu" in pkgs:
        return (
            "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other's files — "
            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'lstm-edge[cuda]'"
        )
    try:
        ort = import_ort("cuda")
    except LstmEdgeError as e:
        return (
            str(e)
            if "cannot be imported" in e.problem
            else "ONNX Runtime is not installed — pip install 'lstm-edge[cuda]'"
        )
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            "this onnxruntime has no CUDA provider (the CPU package is installed) — "
            "pip uninstall -y onnxruntime && pip install 'lstm-edge[cuda]'"
        )
    return None


def module_missing(module: str, extra: str) -> str | None:
    """Why `module` cannot be imported here ("tract not installed (lstm-edge[tract])"), or None when it is found.
    Looks the module up without importing it; raises nothing."""
    return None if importlib.util.find_spec(module) else f"{module} not installed (lstm-edge[{extra}])"


def c_compiler_missing() -> str | None:
    """Why the c runtime cannot build here (no cc, gcc or clang on PATH), or None when one is found."""
    import shutil  # deferred: shutil pulls bz2, lzma, zlib (~2 ms); only doctor and the c runtime ask this

    return None if any(shutil.which(cc) for cc in C_COMPILERS) else "no C compiler (cc, gcc, clang)"

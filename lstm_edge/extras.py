"""Which pip extra installs each optional package lstm-edge imports, and the one line a user sees when one is missing.

`pip install 'lstm-edge[cpu]'` is the lean install (numpy, onnx, onnxruntime, click, tqdm): run, stream, verify,
score and doctor a bundle. Everything else comes with an extra; an import of a missing one becomes one line naming
the extra (exit 2 at the CLI) instead of a ModuleNotFoundError traceback.
"""

from __future__ import annotations

from lstm_edge.errors import LstmEdgeError

# top-level module → the extra that installs it (pyproject.toml's [project.optional-dependencies])
EXTRA_OF = {
    "torch": "torch",
    "onnxscript": "torch",
    "safetensors": "torch",
    "matplotlib": "plots",
    "pyarrow": "score",
    "onnxruntime": "cpu",
    "openvino": "openvino",
    "tract": "tract",
    "sklearn": "datasets",
    "ray": "ray",
    "mkdocs": "docs",
}


def missing_extra(e: ImportError) -> LstmEdgeError | None:
    """The one-line LstmEdgeError naming the extra that installs the module `e` failed to import, or None when that
    module is not an optional dependency of lstm-edge (a real bug: let it surface). Raises nothing."""
    name = (e.name or "").split(".")[0]
    extra = EXTRA_OF.get(name)
    if extra is None or not isinstance(e, ModuleNotFoundError):
        return None
    return LstmEdgeError(f"{name} is not installed (the [{extra}] extra)", f"pip install 'lstm-edge[{extra}]'")


def require(extra: str) -> None:
    """Refuse now, before any work, where a package the [extra] extra installs is missing (one line naming it).
    Looks the module up without importing it (importlib.util.find_spec).

    Raises:
        LstmEdgeError: a module EXTRA_OF maps to `extra` is not installed."""
    import importlib.util  # deferred: a lookup only the commands that need an extra make

    for module in (m for m, owner in EXTRA_OF.items() if owner == extra):
        if importlib.util.find_spec(module) is None:
            raise LstmEdgeError(f"{module} is not installed (the [{extra}] extra)", f"pip install 'lstm-edge[{extra}]'")

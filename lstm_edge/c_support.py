"""What the c runtime needs to open a cached build, without the generator: whether the C can express a model (its
form's refusals), the bundle's identity, and the generator's digest — no torch, no onnx.

lstm_edge.codegen (which writes the C) imports torch for the int8 simulation and the task metric; the c runner
opening a library it built before needs none of that, only the cache key (bundle × generator × compiler × flags
× machine) and the form check. Both live here; codegen.weights re-exports the form check for its callers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError
from lstm_edge.formats import MANIFEST
from lstm_edge.forms import refusals

SUPPORTED = (
    "the C takes unidirectional, batch-first LSTMs and GRUs with biases and a Linear head, on float inputs or token "
    "ids, of full length"
)
# The modules whose source shapes the generated C: the codegen package and the int8 scheme it follows.
GENERATOR_SOURCES = ("codegen", "c_int8_sim.py")


def refuse(problem: str) -> LstmEdgeError:
    """The one-line refusal of a model the C cannot express, naming `problem` and the fix. Raises nothing."""
    return LstmEdgeError(
        f"codegen (and the c runtime) cannot write this model as C: {problem}",
        f"run it on another runtime (--provider cpu) instead; {SUPPORTED}",
    )


def unsupported(config: ModelConfig) -> list[str]:
    """What in a model's form (its ModelSpec) the C cannot express, in the words a user knows; empty when codegen
    can write it. The C steps one unidirectional LSTM or GRU cell stack forward, one batch row and one float sample at a
    time, into a Linear head."""
    return refusals(config, "c")  # one reason per form, in lstm_edge.forms' words and order


def check_supported(config: ModelConfig) -> None:
    """Raise LstmEdgeError, one line naming every unsupported trait (unsupported()) and the fix, when the C cannot
    express this model; return None when it can."""
    why = unsupported(config)
    if why:
        raise refuse("; ".join(why))


def bundle_sha256(bundle) -> str:
    """The bundle's identity: sha256 of manifest.json, which itself records every artifact's sha256. Raises
    OSError where the manifest cannot be read."""
    return hashlib.sha256((bundle.root / MANIFEST).read_bytes()).hexdigest()


def generator_digest() -> str:
    """sha256 over the source of every module that shapes the generated C (the lstm_edge.codegen package's modules
    and lstm_edge.c_int8_sim), read from disk without importing them: it changes whenever the generator does, so a
    cached build never outlives the code that wrote it (the c runtime keys its library cache by it). Raises
    OSError where a source file cannot be read."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in [*sorted((here / GENERATOR_SOURCES[0]).glob("*.py")), here / GENERATOR_SOURCES[1]]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()

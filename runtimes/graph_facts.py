"""What opening a bundle needs to know about its .onnx — the declared inputs and the recurrent-node traits some
runtimes refuse — read once per file content and cached by the sha256 the manifest check has just verified.

A cold `lstm-edge run` spent ~70 ms importing onnx and parsing the graph a second time (the runtime parses it
again) to learn facts that are a pure function of the file's bytes. Keyed by (sha256, this reading code's digest),
a cached entry is as exact as reading the file: a changed file has another sha256, changed code another digest. A
model with external data is never cached (its containment check depends on the filesystem, not the bytes), and an
unverified file (--no-verify-hash) is always read.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lstm_edge import onnx_io

FACTS_DIR = "onnx-facts"


def cache_home() -> Path:
    """lstm-edge's cache folder: $LSTM_EDGE_CACHE, else $XDG_CACHE_HOME/lstm-edge, else ~/.cache/lstm-edge."""
    if os.environ.get("LSTM_EDGE_CACHE"):
        return Path(os.environ["LSTM_EDGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-edge"


@dataclass(frozen=True)
class GraphFacts:
    """inputs: {declared graph input name: dims (int, symbolic name or None each)}, initializers excluded;
    traits: {recurrent trait (onnx_io.RECURRENT_TRAITS): [node names]}."""

    inputs: dict[str, list]
    traits: dict[str, list[str]]


def _code_digest() -> str:
    h = hashlib.sha256()
    for path in (Path(onnx_io.__file__), Path(__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _entry(sha256: str) -> Path:
    return cache_home() / FACTS_DIR / f"{sha256}-{_code_digest()}.json"


def _read(entry: Path) -> GraphFacts | None:
    try:
        doc = json.loads(entry.read_bytes())
        inputs, traits = doc["inputs"], doc["traits"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(inputs, dict) and all(isinstance(d, list) for d in inputs.values())):
        return None
    if not (isinstance(traits, dict) and all(isinstance(n, list) for n in traits.values())):
        return None
    return GraphFacts(inputs, traits)


def _write(entry: Path, facts: GraphFacts) -> None:
    """Best effort: a cache that cannot be written costs the next open a parse, nothing else."""
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"inputs": facts.inputs, "traits": facts.traits}))
        os.replace(tmp, entry)
    except OSError:
        tmp.unlink(missing_ok=True)


def graph_facts(path: Path, sha256: str | None = None) -> GraphFacts:
    """The declared inputs and recurrent traits of the .onnx at `path`.

    Args:
        path: the .onnx file.
        sha256: its content's sha256, already verified against the bundle's manifest; None reads the file.

    Returns:
        GraphFacts, from the cache when this content was read before by this code, else from the file.

    Raises:
        LstmEdgeError: as onnx_io.load_onnx_checked and read_onnx_io (unreadable, oversized, external data
            outside the folder, a fixed dim over the limits) — on a cache hit these passed for the same bytes.
    """
    entry = _entry(sha256) if sha256 else None
    facts = _read(entry) if entry else None
    if facts is not None:
        return facts
    proto = onnx_io.load_onnx_checked(path)  # refuses external data that points outside the bundle
    facts = GraphFacts(dict(onnx_io.read_onnx_io(path, proto)[0]), onnx_io.recurrent_traits(proto))
    external = any(t.data_location == 1 for t in proto.graph.initializer)  # onnx.TensorProto.EXTERNAL
    if entry and not external:
        _write(entry, facts)
    return facts

"""The format tags lstm-edge writes into what it makes, and the file names that carry them.

A folder holding one of these tags is lstm-edge's to replace (atomic.is_ours); readers check them before trusting a
file (bundle.Bundle.open). Kept in this leaf module so that atomic (which checks tags) and bundle (which reads
bundles and imports atomic) need not import each other.
"""

MANIFEST = "manifest.json"
FORMAT = "lstm-edge/bundle"
FORMAT_VERSION = 1
# The embed targets' folders carry our tag too, so `--force` knows them as ours (atomic.is_ours): the python,
# node and web targets in manifest.json (FORMAT), a Triton model repository (which has no manifest.json) in
# lstm-edge.json.
TRITON_INFO = "lstm-edge.json"
TRITON_FORMAT = "lstm-edge/triton-repository"
# `score --engine ray` writes a folder of Parquet files; this marker (a leading "_" keeps Parquet readers off it)
# makes the folder lstm-edge's to replace on the next run.
SCORE_FORMAT = "lstm-edge/score-output"
SCORE_INFO = "_lstm-edge.json"
# `codegen`'s C folder: this marker makes it lstm-edge's to replace on the next `codegen --force` (without it a
# second `codegen --out c --force` refused its own output, found by benchmarks/pipeline.py).
CODEGEN_FORMAT = "lstm-edge/c-library"
CODEGEN_INFO = "lstm-edge-c.json"
# manifest "reference.kind" → what a bundle was validated against, in words: export's last line and the report's
# model card both read this one table. A rebuild from weights is said to be one: the user's forward was not run.
REFERENCE_WORDS = {
    "lstm-edge-checkpoint": "the lstm-edge checkpoint (model.pt) run by PyTorch",
    "user-forward": "your own forward",
    "rebuilt-from-state-dict": "the module rebuilt from your weights — your forward was not available",
    "onnx-float64": "the source ONNX evaluated in float64 by onnx.reference",
}
# What quantize measured each variant's scaled error (error_profile, parity_bound) against, as its report's
# measured_on records it: the float64 PyTorch rebuild over zero and random initial states, full and streamed, or —
# for a forward exported whole, which has no rebuild and no state I/O — the fp32 graph in float64 (onnx.reference,
# export/quant_graph.py) from zero state, whole sequences. quantize's printout and the report's page both read it.
FLOAT64_GRAPH = "the fp32 graph in float64"


def quantize_reference(measured_on: str, streams: bool = True) -> tuple[str, str]:
    """(what quantize's scaled errors were measured against, on which inputs) for a report's `measured_on`:
    ("PyTorch", "zero and random initial state, full and streamed") — "full" alone where the model does not stream
    (`streams` False) — or (FLOAT64_GRAPH, "zero state, whole sequences"), or for a graph with state I/O judged in
    float64 (measured_on says "streamed") its zero and random states, full and streamed. Raises nothing."""
    if "float64" in measured_on and "streamed" in measured_on:  # a graph with state I/O and no checkpoint
        return FLOAT64_GRAPH, "zero and random initial state, full and streamed"
    if "float64" in measured_on:
        return FLOAT64_GRAPH, "zero state, whole sequences"
    return "PyTorch", "zero and random initial state, full" + (" and streamed" if streams else "")

"""What every ONNX file in a bundle carries besides its graph: producer "lstm-edge" with its version, a doc string
on the graph and on each input and output saying what it is, and nodes in topological order — so the file reads on
its own in Netron or any runtime's tooling and passes onnx.checker's full check."""

from __future__ import annotations

import onnx

from lstm_edge import __version__
from lstm_edge.export.onnx_order import sort_topologically

OURS = "written by lstm-edge"
# What each value of lstm-edge's I/O contract is (shapes as the graph declares them; manifest.json has the layout).
VALUE_DOCS = {
    "x": "the input sequence, float32 (token ids, int64, for an embedding model); axes as declared: batch and "
    "time in the model's layout (manifest.json 'layout'), then features",
    "lengths": "int64 [batch]: the valid steps of each sequence (a variable-length model)",
    "h0": "initial hidden state [layers × directions, batch, hidden]: zeros to start, the previous call's hn to "
    "go on streaming",
    "c0": "initial cell state [layers × directions, batch, hidden]: zeros to start, the previous call's cn to go on "
    "streaming",
    "y": "the model's output in the task's units (normalization undone), float32",
    "hn": "final hidden state [layers × directions, batch, hidden]: feed it back as h0 to continue the sequence",
    "cn": "final cell state [layers × directions, batch, hidden]: feed it back as c0 to continue the sequence",
}


def stamp(model: onnx.ModelProto, name: str, variant: str) -> onnx.ModelProto:
    """Set producer, doc strings and topological order on `model` in place. The graph's doc string names the
    variant (a quantizer keeps the fp32 one: it is replaced), after which a foreign model's own words are kept; an
    input's or output's own doc string is kept. Returns the model. Raises ValueError on a cyclic graph."""
    sort_topologically(model.graph)
    model.producer_name, model.producer_version = "lstm-edge", __version__
    g = model.graph
    own = g.doc_string.partition(OURS)[2].partition("\n")[2] if OURS in g.doc_string else g.doc_string
    g.doc_string = (
        f"{name}: the {variant} variant of a recurrent model, {OURS} {__version__}; manifest.json beside it says how "
        "it was made and what it was validated against" + (f"\n{own}" if own.strip() else "")
    )
    for value in (*g.input, *g.output):
        if not value.doc_string:
            value.doc_string = VALUE_DOCS.get(value.name, f"{value.name}: see manifest.json beside this model")
    return model

"""The whole-graph route: a user's forward the weights' rebuild does not reproduce, exported itself by torch.onnx.

Not a ModelConfig field but an export route (the manifest's `streaming: false`), so `applies` never matches a
config: consumers that meet such a bundle read `streaming` from the manifest and cite this form's reasons."""

from lstm_edge.forms.form import ModelForm

STATIC_WHOLE_GRAPH = (
    "static int8 calibrates the seed's LSTM form only (x, h0, c0), not a whole graph exported from the model's own "
    "forward"
)

FALLBACK = ModelForm(
    name="fallback",
    summary="any recurrent forward the rebuild does not match: exported whole through torch.onnx; it streams where its "
    "LSTM/GRU nodes' states can be exposed (export/state_io.py), else stateless",
    applies=lambda c: False,
    recognized_from="export's route when the rebuild from weights differs from the user's forward",
    graph="the user's forward through torch.onnx — dynamo, or the TorchScript exporter (dynamo=False) where dynamo "
    "bakes a length; the graph that equals the forward at unseen B and T is kept (manifest reference.exporter): "
    "x → y, batch and seq symbolic; where every recurrent node is forward, zero state equals the stateless graph and "
    "chunks equal the whole sequence, the nodes' states are exposed as h0/c0 → hn/cn [nodes, batch, widest H]",
    builder="lstm_edge.export.torch_export.export_forward",
    streams=False,
    stream_note="this bundle is stateless (its state is not a graph input: an export of the model's own forward, "
    "or an import without state I/O), so it cannot stream",
    quantize={
        "dynamic": "quantize_dynamic of the whole graph: every LSTM with plain initializer weights → "
        "DynamicQuantizeLSTM, MatMul/Gemm → MatMulInteger, Conv → ConvInteger (GRU stays float: no ORT kernel); "
        "judged against the fp32 graph in float64 (export/quant_graph.py)",
        "fp16": "the whole graph in fp16, inputs and outputs float32; held to the fp16 bound against the fp32 graph "
        "in float64",
    },
    refused_by={
        "quantize:static": STATIC_WHOLE_GRAPH,
    },
)


def stateless_reason(manifest: dict) -> str:
    """Why a stateless bundle cannot stream: FALLBACK.stream_note, with the reason export recorded for not exposing
    the states (manifest reference.streaming, "not exposed: …") where it recorded one."""
    why = str((manifest.get("reference") or {}).get("streaming", ""))
    return FALLBACK.stream_note + (f": {why.removeprefix('not exposed: ')}" if why.startswith("not exposed") else "")

"""The whole-graph route: a user's forward the weights' rebuild does not reproduce, exported itself by torch.onnx.

Not a ModelConfig field but an export route (the manifest's `streaming: false`), so `applies` never matches a
config: consumers that meet such a bundle read `streaming` from the manifest and cite this form's reasons."""

from lstm_edge.forms.form import NOT_STREAMING, ModelForm

NO_CHECKPOINT = "the bundle was exported from the model's own forward and carries no PyTorch checkpoint"

FALLBACK = ModelForm(
    name="fallback",
    summary="any recurrent forward the rebuild does not match: exported whole through torch.onnx, stateless",
    applies=lambda c: False,
    recognized_from="export's route when the rebuild from weights differs from the user's forward",
    graph="the user's forward through torch.onnx — dynamo, or the TorchScript exporter (dynamo=False) where dynamo "
    "bakes a length; the graph that equals the forward at unseen B and T is kept (manifest reference.exporter): "
    "x → y, batch and seq symbolic, no state I/O",
    builder="lstm_edge.export.torch_export.export_forward",
    streams=False,
    stream_note="this bundle is stateless (its state is not a graph input: an export of the model's own forward, "
    "or an import without state I/O), so it cannot stream",
    quantize={},
    refused_by={
        "triton": NOT_STREAMING,
        "quantize:dynamic": NO_CHECKPOINT,
        "quantize:static": NO_CHECKPOINT,
        "quantize:fp16": NO_CHECKPOINT,
    },
)

"""batch_first=False: the model takes and gives [T, B, …], its own layout (recorded in the manifest's io.layout)."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm

TIME_MAJOR = ModelForm(
    name="time-major",
    summary="nn.LSTM(batch_first=False): x [T, B, F], y [T, B, …]",
    applies=lambda c: not c.batch_first,
    recognized_from="the module's `batch_first=False` (a state_dict cannot say; it is read batch-first)",
    graph="no Transpose: x and y stay [T, B, …] (manifest io.layout)",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="chunks are [K, B, F] in the model's own layout",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM (a GRU stays float32), head MatMul int8 "
        "(unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={"c": "it is time-major (batch_first=False)", "quantize:static": STATIC_SEED_ONLY},
)

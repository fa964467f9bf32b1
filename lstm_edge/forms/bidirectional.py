"""nn.LSTM / nn.GRU with bidirectional=True: one ONNX node per layer with direction="bidirectional"."""

from lstm_edge.forms.form import NOT_STREAMING, STATIC_SEED_ONLY, ModelForm

BIDIRECTIONAL = ModelForm(
    name="bidirectional",
    summary="nn.LSTM(bidirectional=True) (or nn.GRU)",
    applies=lambda c: c.bidirectional,
    recognized_from="`weight_*_l{k}_reverse` weights beside the forward ones",
    graph='one `LSTM`/`GRU` per layer, direction="bidirectional"; state [2·L, B, H] in PyTorch\'s order',
    builder="lstm_edge.export.graph.build_onnx",
    streams=False,
    stream_note="this model is bidirectional: its backward direction reads each sequence from the end, so it cannot "
    "stream one step at a time",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM, the head's MatMul → MatMulInteger (unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={
        "c": "it is bidirectional (its backward direction reads each sequence from the end)",
        "triton": NOT_STREAMING,
        "quantize:static": STATIC_SEED_ONLY,
    },
)

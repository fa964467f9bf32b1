"""nn.Embedding → recurrent layers on int64 token ids [B, T]."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm

TOKENS = ModelForm(
    name="tokens",
    summary="nn.Embedding → nn.LSTM on int64 token ids [B, T]",
    applies=lambda c: bool(c.vocab_size),
    recognized_from="a 2-D bias-free weight of width F before the recurrent weights (the embedding table)",
    graph="`Gather` on the embedding table; ids outside it are an input error (exit 2)",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="chunks of ids [B, K]",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM (a GRU stays float32), head MatMul int8 "
        "(unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={"quantize:static": STATIC_SEED_ONLY},
)

"""nn.GRU: ONNX `GRU` with linear_before_reset=1 (PyTorch's formula), state h only."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm

GRU = ModelForm(
    name="gru",
    summary="nn.GRU (state h0 → hn, no cell state)",
    applies=lambda c: c.family == "gru",
    recognized_from="`weight_hh_l0` rows = 3·H (three gate blocks)",
    graph="one `GRU` per layer, linear_before_reset=1, gate blocks z, r, h (reordered from PyTorch's r, z, n)",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="state (h,) carried between steps",
    quantize={
        "dynamic": "the GRU layers stay float32 (ONNX Runtime has no int8 GRU kernel), only the head's MatMul is int8 "
        "(unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={
        "triton": "it is a GRU (the Triton target writes LSTM h and c state)",
        "quantize:static": STATIC_SEED_ONLY,
    },
)

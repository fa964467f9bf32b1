"""Variable lengths (pack_padded_sequence): a `lengths` [B] input feeding the recurrent nodes' sequence_lens.

OpenVINO and tract refuse the fused form (measured: OpenVINO ignores sequence_lens, tract cannot translate it) but
run the projected (Scan) form, which masks its own steps — hence `refused_only_if`."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm


def _fused(c) -> bool:
    """for the fused `sequence_lens` graph, not the projected Scan that masks its own steps."""
    return not c.proj_size


LENGTHS = ModelForm(
    name="lengths",
    summary="forward(x, lengths) through pack_padded_sequence; state at each sequence's last step",
    applies=lambda c: c.lengths,
    recognized_from="a user's forward(x, lengths) whose weights the intake recognizes (export/lengths_forward.py), "
    "or an LSTMModel(ModelConfig(lengths=True)) from Python",
    graph="`lengths` [B] int64 → int32 `sequence_lens` of the fused nodes (the Scan form masks its steps)",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="whole steps: each chunk feeds lengths = its own length",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM (a GRU stays float32), head MatMul int8 "
        "(unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={
        "intake": "weights alone cannot say a model takes lengths: its forward(x, lengths) can (save the module)",
        "c": "it takes variable lengths (a per-sequence lengths input)",
        "triton": "it takes variable lengths, which Triton's sequence batcher does not pass per request",
        "openvino": "OpenVINO ignores sequence_lens (outputs past each length measured 0.40 off)",
        "tract": "tract cannot load a recurrent node with sequence_lens",
        "quantize:static": STATIC_SEED_ONLY,
    },
    refused_only_if={"openvino": _fused, "tract": _fused},
)

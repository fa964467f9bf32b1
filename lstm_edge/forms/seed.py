"""The seed's form: a unidirectional, batch-first nn.LSTM with biases on float input, full-length sequences."""

from lstm_edge.config import is_seed_form
from lstm_edge.forms.form import ModelForm

SEED = ModelForm(
    name="seed",
    summary="nn.LSTM(batch_first=True) on float features, every sequence full length, a Linear head",
    applies=is_seed_form,
    recognized_from="`weight_ih_l{k}`/`weight_hh_l{k}` with 4 gate blocks and `bias_*`, no `_reverse`, no `weight_hr`",
    graph="Transpose to time-major, one fused ONNX `LSTM` per layer (B = [Wb, Rb]), MatMul + Add head",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="state (h, c) carried between steps; the runners' (x, h0, c0) fast path",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM, the head's MatMul → integer ops, judged on the "
        "task metric",
        "static": "QDQ calibrated on task data: the LSTMs stay float (ORT has no static LSTM kernel), the head is int8",
        "fp16": "weights and arithmetic in fp16; inputs and outputs stay float32",
    },
)

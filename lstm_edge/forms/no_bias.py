"""bias=False: the recurrent node's optional B input is left out."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm

NO_BIAS = ModelForm(
    name="no-bias",
    summary="nn.LSTM(bias=False) (or nn.GRU)",
    applies=lambda c: not c.bias,
    recognized_from="no `bias_ih_l{k}`/`bias_hh_l{k}` among the recurrent weights",
    graph="`LSTM`/`GRU` with the optional B input left out",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="as its recurrent family",
    quantize={
        "dynamic": "each LSTM → com.microsoft::DynamicQuantizeLSTM (a GRU stays float32), head MatMul int8 "
        "(unverified)",
        "fp16": "float16 graph, inputs and outputs float32 (unverified)",
    },
    refused_by={"c": "it has no biases (bias=False)", "quantize:static": STATIC_SEED_ONLY},
)

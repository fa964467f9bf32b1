"""Head "none": the recurrent output itself (a bare nn.LSTM / nn.GRU / GateLSTM passed to export)."""

from lstm_edge.forms.form import ModelForm

NO_HEAD = ModelForm(
    name="head-none",
    summary='a bare recurrent module: y = the last layer\'s output at every step (head "none")',
    applies=lambda c: c.head == "none",
    recognized_from="a bare nn.LSTM/nn.GRU/GateLSTM given to export, or head none asked for",
    graph="y is the last layer's output sequence itself, no head MatMul",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="y at every step, as head sequence",
    quantize={
        "dynamic": "as its recurrent form (the seed's path or quant_forms.py), no head MatMul to make int8",
        "static": "as its recurrent form (calibrated only in the seed's)",
        "fp16": "as its recurrent form",
    },
    refused_by={"c": "it has no Linear head (head none)"},
)

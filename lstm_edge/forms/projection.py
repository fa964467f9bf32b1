"""nn.LSTM(proj_size=…): ONNX's LSTM has no projection, so each layer and direction is a Scan over the cell."""

from lstm_edge.forms.form import STATIC_SEED_ONLY, ModelForm

FP16_SCAN_REFUSED = (
    "fp16 of the projected (Scan) form: ONNX Runtime 1.32 crashes creating a session for a float16 Scan body "
    "(measured), so no fp16 variant is made"
)

PROJECTION = ModelForm(
    name="projection",
    summary="nn.LSTM(proj_size=P): h_t = W_hr·(o_t ⊙ tanh(C_t)), h [L·D, B, P], c [L·D, B, H]",
    applies=lambda c: bool(c.proj_size),
    recognized_from="`weight_hr_l{k}` (P, H) beside the recurrent weights",
    graph="a `Scan` per layer and direction: the cell plus h_t = W_hr·(o_t ⊙ tanh(C_t))",
    builder="lstm_edge.export.graph.build_onnx",
    streams=True,
    stream_note="state (h, c) of widths P and H carried between steps",
    quantize={
        "dynamic": "every MatMul int8, inside the Scan body too (EnableSubgraph); gate nonlinearities float "
        "(unverified)",
    },
    refused_by={
        "c": "it has a projection (proj_size {proj_size})",
        "quantize:static": STATIC_SEED_ONLY,
        "quantize:fp16": FP16_SCAN_REFUSED,
    },
)

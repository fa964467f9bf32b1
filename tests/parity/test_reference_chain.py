"""The reference chain, closed: GateLSTM (the documented equations) ↔ nn.LSTM ↔ ONNX in ORT ↔ onnx.reference."""

from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.data import probe_inputs
from lstm_edge.tolerances import FP32_ABS, scaled_error
from tests.conftest import SHIPPED


def test_chain_on_the_shipped_model():
    config = Bundle.open(SHIPPED).config
    x, h0, c0 = probe_inputs(config, 3, 60, True, seed=11)
    gates = lstm_edge.load(SHIPPED, provider="torch", gates=True).run(x, (h0, c0))
    fused = lstm_edge.load(SHIPPED, provider="torch").run(x, (h0, c0))
    ort = lstm_edge.load(SHIPPED, provider="cpu").run(x, (h0, c0))
    oracle_y, oracle_h, oracle_c = ReferenceEvaluator(onnx.load(str(SHIPPED / "model.onnx"))).run(
        None, {"x": x, "h0": h0, "c0": c0}
    )
    oracle = (oracle_y, (oracle_h, oracle_c))
    for a, b in ((gates, fused), (fused, ort), (ort, oracle), (oracle, gates)):
        for u, v in ((a[0], b[0]), (a[1][0], b[1][0]), (a[1][1], b[1][1])):
            assert scaled_error(u, v).max() <= FP32_ABS
    assert np.abs(oracle_c).max() > 1.0  # the chain is checked where the cell state is large

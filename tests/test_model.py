"""GateLSTM (the documented equations) against nn.LSTM, the mapping both ways, and one step by hand."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lstm_edge.model import GateLSTM, LSTMModel, ModelConfig
from lstm_edge.tolerances import FP32_ABS, MAPPING_F64


def _random_lstm(layers, hidden, inp, scale, seed, dtype):
    torch.manual_seed(seed)
    lstm = nn.LSTM(inp, hidden, layers, batch_first=True).to(dtype)
    with torch.no_grad():
        for p in lstm.parameters():
            p.uniform_(-scale, scale)
    return lstm.eval()


configs = st.fixed_dictionaries(
    {
        "layers": st.integers(1, 3),
        "hidden": st.integers(1, 64),
        "inp": st.integers(1, 40),
        "B": st.integers(1, 5),
        "T": st.integers(1, 50),
        "scale": st.floats(0.01, 0.5),
        "with_state": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


def _compare(c, dtype):
    lstm = _random_lstm(c["layers"], c["hidden"], c["inp"], c["scale"], c["seed"], dtype)
    gate = GateLSTM.from_torch(lstm).eval()
    g = torch.Generator().manual_seed(c["seed"])
    x = torch.randn(c["B"], c["T"], c["inp"], generator=g, dtype=dtype)
    state = None
    if c["with_state"]:
        shape = (c["layers"], c["B"], c["hidden"])
        state = (
            torch.rand(shape, generator=g, dtype=dtype) * 2 - 1,
            torch.randn(shape, generator=g, dtype=dtype),
        )
    with torch.no_grad():
        a, (ha, ca) = lstm(x, state)
        b, (hb, cb) = gate(x, state)
    return max(float((u - v).abs().max()) for u, v in ((a, b), (ha, hb), (ca, cb)))


@settings(max_examples=40, deadline=None)
@given(configs)
def test_gate_lstm_equals_nn_lstm_in_float64(c):
    assert _compare(c, torch.float64) <= MAPPING_F64


@settings(max_examples=25, deadline=None)
@given(configs)
def test_gate_lstm_equals_nn_lstm_in_float32(c):
    assert _compare(c, torch.float32) <= FP32_ABS


def test_mapping_round_trips_exactly():
    lstm = _random_lstm(2, 7, 5, 0.5, 1, torch.float32)
    gate = GateLSTM.from_torch(lstm)
    back = GateLSTM.from_torch(gate.to_torch())
    for a, b in zip(gate.parameters(), back.parameters(), strict=True):
        assert torch.equal(a, b)
    # nn.LSTM → GateLSTM → nn.LSTM: weights identical; the two biases merge into one (same function).
    again = gate.to_torch()
    for name in ("weight_ih_l0", "weight_hh_l1"):
        assert torch.equal(getattr(lstm, name), getattr(again, name))
    assert torch.equal(lstm.bias_ih_l0 + lstm.bias_hh_l0, again.bias_ih_l0 + again.bias_hh_l0)


def test_one_step_matches_hand_computation():
    """i,f,o = σ(W·[h,x]+b), C = f·C0 + i·tanh(W_c·[h,x]+b_c), h = o·tanh(C) — computed here in numpy."""
    gate = GateLSTM(input_size=2, hidden_size=3).double()
    rng = np.random.default_rng(0)
    x, h0, c0 = rng.normal(size=(1, 1, 2)), rng.normal(size=(1, 1, 3)), rng.normal(size=(1, 1, 3))
    W, b = gate.W[0].detach().numpy(), gate.b[0].detach().numpy()
    z = W @ np.concatenate([h0[0, 0], x[0, 0]]) + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, c_hat, o = sig(z[0:3]), sig(z[3:6]), np.tanh(z[6:9]), sig(z[9:12])
    C = f * c0[0, 0] + i * c_hat
    h = o * np.tanh(C)
    with torch.no_grad():
        _, (hn, cn) = gate(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    np.testing.assert_allclose(cn[0, 0].numpy(), C, atol=1e-14)
    np.testing.assert_allclose(hn[0, 0].numpy(), h, atol=1e-14)


def test_model_gate_form_and_heads():
    for head in ("last", "sequence"):
        cfg = ModelConfig(
            input_size=4,
            hidden_size=6,
            num_layers=2,
            output_size=3,
            head=head,
            x_mean=[1, 2, 3, 4],
            x_std=[2, 2, 2, 2],
            y_mean=[5, 5, 5],
            y_std=[3, 3, 3],
        )
        model = LSTMModel(cfg).double().eval()
        x = torch.randn(2, 9, 4, dtype=torch.float64)
        with torch.no_grad():
            y, (h, c) = model(x)
            yg, (hg, cg) = model.gate_form()(x)
        assert y.shape == ((2, 3) if head == "last" else (2, 9, 3))
        assert h.shape == (2, 2, 6)
        assert float((y - yg).abs().max()) <= MAPPING_F64


@settings(max_examples=15, deadline=None)
@given(
    layers=st.integers(1, 3),
    hidden=st.integers(1, 24),
    inp=st.integers(1, 12),
    T=st.integers(1, 20),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_gru_gate_equations_equal_nn_gru_in_float64(layers, hidden, inp, T, bias, seed):
    from lstm_edge.model import gru_gate_layers

    torch.manual_seed(seed)
    gru = nn.GRU(inp, hidden, layers, batch_first=True, bias=bias).double().eval()
    x = torch.randn(3, T, inp, dtype=torch.float64)
    h0 = torch.randn(layers, 3, hidden, dtype=torch.float64)
    with torch.no_grad():
        want, h_want = gru(x, h0)
        got, h_got = gru_gate_layers(x, h0, gru)
    assert float((got - want).abs().max()) <= MAPPING_F64 and float((h_got - h_want).abs().max()) <= MAPPING_F64

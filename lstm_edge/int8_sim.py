"""ONNX Runtime's dynamic int8 LSTM arithmetic, simulated in torch, for int8-aware fine-tuning.

What `lstm-edge quantize --mode dynamic` deploys (com.microsoft::DynamicQuantizeLSTM and MatMulInteger) rounds:
- W_x and W_h to int8, symmetric, one scale per gate row (per-channel, our default), in the reduced range
  [-64, 64] that quantize asks for (`reduce_range`, see WEIGHT_LEVELS);
- each layer's input sequence to uint8, one asymmetric scale over the whole tensor (all steps, all rows), its
  range stretched to include 0 — layer 0 sees the range-equalized input (model.equalize_input), as quantize builds it;
- h_{t-1} to uint8 again at every step, one scale across the batch;
- the head: uint8 features × int8 weights, one scale per output column.
Rounding is reproduced exactly (half to even, as ORT); gradients pass straight through the rounding (STE).
tests/test_int8_sim.py holds the simulation to ORT's own int8 outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstm_edge.model import LSTMModel, State, equalize_input, gate_layers

# Weights are rounded to ±64 levels, not ±127 (onnxruntime.quantization's reduce_range): ORT's u8×s8 kernel on x86
# CPUs without VNNI (AVX2, AVX-512F) sums pairs of products in int16 (VPMADDUBSW), and 255·127·2 = 64,770
# saturates at 32,767, while 255·64·2 = 32,640 does not. Measured on an AVX2-only AMD EPYC, shipped adding model,
# 1 thread: full-range int8 MSE 4.4e-4 (13× its fp32 3.3e-5; this simulation, which does not saturate, said 6.4e-5)
# against 7.23e-5 reduced-range (simulated 7.24e-5). The same variant then computes the same numbers on every CPU,
# at a cost of +12% MSE against full range on a VNNI CPU.
WEIGHT_LEVELS = 64


def _straight_through(a: Tensor, rounded: Tensor) -> Tensor:
    return a + (rounded - a).detach()


class OrtDynamicInt8:
    """The Int8Arithmetic of ORT's dynamic quantization (see the module docstring)."""

    def __init__(self, weight_levels: int = WEIGHT_LEVELS) -> None:
        self.levels = weight_levels  # 64: quantize's reduced range; 127: onnxruntime's full int8 range

    def weight(self, w: Tensor) -> Tensor:
        """int8 symmetric, one scale per row (output channel): w ≈ round(w / s)·s, s = max|row| / levels."""
        amax = w.detach().abs().amax(dim=1, keepdim=True)  # (rows, 1)
        scale = torch.where(amax > 0, amax / self.levels, torch.ones_like(amax))
        return _straight_through(w, torch.clamp(torch.round(w / scale), -self.levels, self.levels) * scale)

    def activation(self, a: Tensor) -> Tensor:
        """uint8 asymmetric, one scale for the whole tensor, range widened to include 0."""
        if a.numel() == 0:
            return a
        lo = torch.clamp(a.detach().min(), max=0.0)
        hi = torch.clamp(a.detach().max(), min=0.0)
        scale = torch.where(hi > lo, (hi - lo) / 255, torch.ones_like(hi))
        zero = torch.clamp(torch.round(-lo / scale), 0, 255)
        q = torch.clamp(torch.round(a / scale) + zero, 0, 255)
        return _straight_through(a, (q - zero) * scale)

    def forward(self, model: LSTMModel, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """`model` as the int8 variant computes it: range-equalized input, int8 LSTM layers, int8 head."""
        c = model.config
        layers = model.gate_weights()
        W_h, W_x, b = layers[0]
        if c.x_min and c.x_max:
            ranges = (torch.tensor(v, dtype=x.dtype) for v in (c.x_mean, c.x_std, c.x_min, c.x_max))
            W_x, b, center, half = equalize_input(W_x, b, *ranges)
        else:
            center, half = model.x_mean, model.x_std
        layers = [(W_h, W_x, b), *layers[1:]]
        out, (h_n, c_n) = gate_layers((x - center) / half, state, layers, 0.0, self)  # (B, T, H), (L, B, H) ×2
        feats = out if c.head == "sequence" else h_n[-1]  # (B, T, H) or (B, H); last = final for one direction
        y = self.activation(feats) @ self.weight(model.head.weight).T + model.head.bias  # (B, O) or (B, T, O)
        if c.kind == "regression":
            y = y * model.y_std + model.y_mean
        return y, (h_n, c_n)

"""The int8 scheme (lstm_edge.c_int8_sim) for the forms beyond the seed's LSTM: a GRU's constants and its bit-exact
simulation, and token ids through the embedding table — what `codegen --precision int8` writes for them.

GRU: c_int8_sim's choices unchanged (int8 weights with one scale per row, int16 activations and h at 1/32767, exact
integer products, float32 gate math from the tanh table); lstm_edge.codegen.gru writes the C, this computes its bits.
b[r], b[z] = b_ih + b_hh (summed in float64, rounded once), b[n] = b_in, BHN = b_hn inside the reset product.

Token ids: the table is stored as int16 at layer 0's input scale, EMB[v] = q16(E[v] · X_INV_SCALE), with X_INV_SCALE
from the table's own |max| (no input saturates). That is exactly the int16 a float32 table would be rounded to at
run time — no error beyond the fp32 table's — at half its flash; an int8 table with row scales would add a second
rounding for the ~4x of an fp32 table's flash it saves over this. The simulation feeds E[ids] through the normal
path with mean 0 and std 1, which computes the same q16(E · X_INV_SCALE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lstm_edge.c_int8_sim import Q16, Int16x8Layer, Int16x8Params, q16, quantize, quantize_weight, sigmoid_lut, tanh_lut
from lstm_edge.codegen.weights import ModelWeights


@dataclass
class GruInt8Layer(Int16x8Layer):
    """One GRU layer's int8 constants: Int16x8Layer's (gate blocks r, z, n; b = [b_ir + b_hr, b_iz + b_hz, b_in])
    and `bhn` (H,) float32, the recurrent bias of n."""

    bhn: Tensor | None = None


def _t(a: np.ndarray | None) -> Tensor | None:
    """A numpy array as a torch tensor of its own dtype (None stays None)."""
    return None if a is None else torch.from_numpy(np.array(a, dtype=a.dtype, copy=True))


def token_amax(weights: ModelWeights) -> float:
    """The int16 input scale's |max| for a token model: the embedding table's largest |value|."""
    return float(np.abs(weights.embedding.astype(np.float64)).max())


def int8_params(weights: ModelWeights, x_amax: float) -> Int16x8Params:
    """The int8 scheme's constants for weights read from a bundle (LSTM: c_int8_sim.quantize; GRU: its layers as
    GruInt8Layer), with the normalized input's |max| `x_amax`."""
    lstm = weights.family != "gru"
    layers = [(_t(w.W_h), _t(w.W_x), _t(w.b)) for w in weights.layers] if lstm else []
    p = quantize(layers, _t(weights.head_w), _t(weights.head_b), _t(weights.x_mean), _t(weights.x_std), x_amax,
                 _t(weights.y_mean), _t(weights.y_std), weights.head)  # fmt: skip
    if lstm:
        return p
    x_scale = p.x_amax / Q16  # float64, as c_int8_sim.quantize's
    H = weights.hidden_size
    for k, w in enumerate(weights.layers):
        wx, sx = quantize_weight(_t(w.W_x), x_scale if k == 0 else 1.0 / Q16)
        wh, sh = quantize_weight(_t(w.W_h), 1.0 / Q16)
        b = w.b.astype(np.float64)
        b[: 2 * H] += w.b_h[: 2 * H]  # r and z: b_ih + b_hh, rounded once
        p.layers.append(GruInt8Layer(wx, wh, sx, sh, torch.from_numpy(b.astype(np.float32)), _t(w.b_h[2 * H :])))
    return p


def embedding_q(params: Int16x8Params, weights: ModelWeights) -> np.ndarray:
    """(V, F) int16: the table as the int8 C stores it, q16(E · X_INV_SCALE) in float32, as layer 0 takes it."""
    with torch.no_grad():
        return q16(_t(weights.embedding) * params.x_inv_scale).numpy().astype(np.int16)


def _matmul(a: Tensor, w: Tensor) -> Tensor:
    """Σ int16 × int8 products, exact in float64, rounded once to float32 (the C's (float)acc)."""
    return (a.double() @ w.double().T).float()


def forward_gru(p: Int16x8Params, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """x (B, T, F) float32 raw inputs → y (B, O) or (B, T, O), h_n (L, B, H) float32, as the int8 GRU C computes.

    h_n is the int16 h read back (h_q / 32767)."""
    B, T, _ = x.shape
    L, H, table = len(p.layers), p.hidden_size, p.table
    h0 = x.new_zeros(L, B, H) if h0 is None else h0
    seq = q16((x - p.x_mean) / p.x_std * p.x_inv_scale)  # (B, T, F) int16-valued, as the LSTM's input
    h_n = []
    for k, lay in enumerate(p.layers):
        ax = _matmul(seq, lay.wx)  # (B, T, 3H)
        hq = q16(h0[k] * Q16)  # (B, H)
        outs = []
        for t in range(T):
            ah = _matmul(hq, lay.wh)  # (B, 3H)
            a, s = ax[:, t], lay.sx
            zr = a[:, :H] * s[:H] + ah[:, :H] * lay.sh[:H] + lay.b[:H]  # (B, H) float32, the C's order
            zz = a[:, H : 2 * H] * s[H : 2 * H] + ah[:, H : 2 * H] * lay.sh[H : 2 * H] + lay.b[H : 2 * H]
            xn = a[:, 2 * H :] * s[2 * H :] + lay.b[2 * H :]
            hn = ah[:, 2 * H :] * lay.sh[2 * H :] + lay.bhn
            r, z = sigmoid_lut(zr, table), sigmoid_lut(zz, table)
            n = tanh_lut(xn + r * hn, table)
            hq = q16(((1.0 - z) * n + z * (hq / Q16)) * Q16)  # (B, H) int16-valued
            outs.append(hq)
        seq = torch.stack(outs, dim=1)  # (B, T, H)
        h_n.append(hq / Q16)
    feats = seq[:, -1] if p.head == "last" else seq
    y = _matmul(feats, p.head_w) * p.head_s + p.head_b
    if p.y_std is not None:
        y = y * p.y_std + p.y_mean
    return y, torch.stack(h_n)

"""The `c` int8 scheme ("16x8"), simulated in torch: bit for bit what `lstm-edge codegen --precision int8` computes.

The scheme (TFLite Micro's 16x8 idea, with float cell and gate math for cores that have an FPU, e.g. Cortex-M4F):
- weights: int8, symmetric, one scale per output row, W_x and W_h (and the head) each with their own scales;
- activations entering a product: int16 — the normalized model input with one symmetric scale from its recorded
  range (so the adding task's rare 0/1 marker keeps 32,767 levels, where ORT's uint8 left it 40), and h at the fixed
  scale 1/32767 (h = o·tanh(C) lies in (-1, 1), so no calibration is needed);
- products accumulated in int32 (int64 where the row length could overflow int32, see `accumulator_bits`);
- pre-activations, the cell state C and the gates in float32, with sigmoid/tanh from one 513-entry tanh table
  linearly interpolated (no libm: the int8 C links nothing at all), sigmoid(z) = 0.5 + 0.5·tanh(z/2).
Rounding to int16 is half away from zero after clamping to ±32767. Every float operation is one IEEE float32 operation
in the order the C writes it (compiled with -ffp-contract=off), and the integer products are summed exactly (in float64,
exact below 2^53), so the simulation equals the C to the last bit (tests/test_codegen.py checks it on the host and on
an emulated Cortex-M4).

Why float C and a table: measured on the shipped adding model (`benchmarks/c_int8_scheme.py`), see README.
`exact=False` gives the same arithmetic with straight-through gradients, for int8-aware fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

Q16 = 32767.0  # int16 activations: round(a / scale), clamped to ±32767
W_LEVELS = 127.0  # int8 weights: round(w / scale), clamped to ±127
TANH_LIMIT = 8.0  # the table spans [0, 8] (tanh is odd); tanh(8) = 1 - 2.3e-7
TANH_PER_UNIT = 64  # 1/64 steps: linear interpolation error ≤ (1/64)²/8 · max|tanh''| ≈ 2.3e-5 (< 1 int16 step of h)
TANH_N = int(TANH_LIMIT * TANH_PER_UNIT)  # 512 intervals, 513 entries (2 KB of flash)


def tanh_table() -> np.ndarray:
    """(TANH_N + 1,) float32: tanh at 0, 1/64, …, 8, computed in float64 and rounded once."""
    return np.tanh(np.arange(TANH_N + 1) / TANH_PER_UNIT).astype(np.float32)


def accumulator_bits(k: int) -> int:
    """32 when a row of k int8×int16 products cannot overflow int32 (k·127·32767 < 2^31, i.e. k ≤ 516), else 64."""
    return 32 if k * 127 * 32767 < 2**31 else 64


def _ste(a: Tensor, rounded: Tensor) -> Tensor:
    return a + (rounded - a).detach()


def q16(v: Tensor, exact: bool = True) -> Tensor:
    """float32 → int16-valued float32: NaN → 0, clamp to ±32767, round half away from zero (the C's `q16`)."""
    c = torch.nan_to_num(v, nan=0.0).clamp(-Q16, Q16)
    r = torch.where(c >= 0, c + 0.5, c - 0.5).trunc()
    return r if exact else _ste(v, r)


def tanh_lut(z: Tensor, table: Tensor, exact: bool = True) -> Tensor:
    """tanh from the table at |z|, linearly interpolated, saturating beyond 8, sign restored (the C's `tanh_t`)."""
    t = z.abs() * float(TANH_PER_UNIT)  # float32, exact (a power of two)
    t = torch.where(t < TANH_N, t, torch.full_like(t, float(TANH_N)))  # NaN → the end, as the C
    i = t.floor().clamp(max=float(TANH_N - 1))
    k = i.long()
    lo = table[k]
    y = lo + (t - i) * (table[k + 1] - lo)
    y = torch.where(z < 0, -y, y)
    return y if exact else _ste(torch.tanh(z), y)


def sigmoid_lut(z: Tensor, table: Tensor, exact: bool = True) -> Tensor:
    """σ(z) = 0.5 + 0.5·tanh(z/2), from the tanh table (the C's `sigmoid_t`)."""
    y = 0.5 + 0.5 * tanh_lut(0.5 * z, table)
    return y if exact else _ste(torch.sigmoid(z), y)


@dataclass
class Int16x8Layer:
    """One layer's int8 weights and their scales, as the int8 C holds them (shapes in comments)."""

    wx: Tensor  # (4H, F_l) int8-valued, gate blocks i, f, c, o
    wh: Tensor  # (4H, H) int8-valued
    sx: Tensor  # (4H,) float32: weight scale × input activation scale
    sh: Tensor  # (4H,) float32: weight scale / 32767
    b: Tensor  # (4H,) float32


@dataclass
class Int16x8Params:
    """Everything the int8 C holds as constants (shapes in comments); built by `quantize`."""

    x_mean: Tensor  # (F,) float32
    x_std: Tensor  # (F,) float32
    x_inv_scale: Tensor  # () float32: int16 input = q16(x_normalized · x_inv_scale)
    x_amax: float  # the normalized input's |max| the scale covers (provenance)
    layers: list[Int16x8Layer]
    head_w: Tensor  # (O, H) int8-valued
    head_s: Tensor  # (O,) float32: weight scale / 32767
    head_b: Tensor  # (O,) float32
    y_mean: Tensor | None  # (O,) float32 for regression, None for classification
    y_std: Tensor | None
    head: str = "last"
    table: Tensor = field(default_factory=lambda: torch.from_numpy(tanh_table()))

    @property
    def hidden_size(self) -> int:
        """H: the hidden size (W_h's columns)."""
        return self.layers[0].wh.shape[1]


def quantize_weight(w: Tensor, act_scale: float, exact: bool = True) -> tuple[Tensor, Tensor]:
    """Rows of w (rows, K) → (int8-valued rows, float32 row scale × act_scale). Scales in float64, half-even rounding."""
    w64 = w.detach().double()
    amax = w64.abs().amax(dim=1)  # (rows,)
    scale = torch.where(amax > 0, amax / W_LEVELS, torch.ones_like(amax))  # (rows,) float64
    if exact:
        q = torch.clamp(torch.round(w64 / scale[:, None]), -W_LEVELS, W_LEVELS).float()
    else:  # straight-through: the forward value is the rounded weight, the gradient is w's
        ws = w / scale[:, None].to(w.dtype)
        q = _ste(ws, torch.clamp(torch.round(ws.detach()), -W_LEVELS, W_LEVELS))
    return q, (scale * act_scale).float()


def quantize(
    layers: list[tuple[Tensor, Tensor, Tensor]],
    head_w: Tensor,
    head_b: Tensor,
    x_mean: Tensor,
    x_std: Tensor,
    x_amax: float,
    y_mean: Tensor | None,
    y_std: Tensor | None,
    head: str,
    exact: bool = True,
) -> Int16x8Params:
    """The scheme's constants from float weights: layers of (W_h (4H, H), W_x (4H, F_l), b (4H,)) in gate order
    i, f, c, o (GateLSTM.gate_weights), head (O, H) + (O,), normalization, and the normalized input's |max|."""
    amax = float(x_amax) if x_amax > 0 else 1.0
    x_scale = amax / Q16  # float64
    out = []
    for k, (W_h, W_x, b) in enumerate(layers):
        wx, sx = quantize_weight(W_x, x_scale if k == 0 else 1.0 / Q16, exact)
        wh, sh = quantize_weight(W_h, 1.0 / Q16, exact)
        out.append(Int16x8Layer(wx, wh, sx, sh, b.float() if exact else b))
    hw, hs = quantize_weight(head_w, 1.0 / Q16, exact)
    f32 = lambda t: None if t is None else t.detach().float()  # noqa: E731
    return Int16x8Params(
        x_mean=f32(x_mean),
        x_std=f32(x_std),
        x_inv_scale=torch.tensor(1.0 / x_scale, dtype=torch.float32),
        x_amax=amax,
        layers=out,
        head_w=hw,
        head_s=hs,
        head_b=head_b.float() if exact else head_b,
        y_mean=f32(y_mean),
        y_std=f32(y_std),
        head=head,
    )


def _matmul(a: Tensor, w: Tensor, exact: bool) -> Tensor:
    """Σ int16 × int8 products: exact in float64 (|sum| < 2^53), then rounded once to float32 as C's (float)acc."""
    if exact:
        return (a.double() @ w.double().T).float()
    return a @ w.T


def forward(
    p: Int16x8Params,
    x: Tensor,
    state: tuple[Tensor, Tensor] | None = None,
    exact: bool = True,
    cell_scale: list[float] | None = None,
    exact_gates: bool = False,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """x (B, T, F) float32 raw inputs → y (B, O) or (B, T, O), (h_n, c_n) (L, B, H) float32, as the C computes.

    h_n is the int16 h read back (h_q / 32767). `cell_scale` (per layer) rounds C to an int16 grid of that step at
    every step — the fixed-point cell of TFLite Micro — and `exact_gates` uses torch's sigmoid/tanh instead of the
    table: both only measure what another choice would change (benchmarks/c_int8_scheme.py), neither is what the C does.
    """
    B, T, _ = x.shape
    L, H = len(p.layers), p.hidden_size
    if state is None:
        h0 = x.new_zeros(L, B, H)
        c0 = x.new_zeros(L, B, H)
    else:
        h0, c0 = state
    table = p.table
    sig = (lambda z, *_: torch.sigmoid(z)) if exact_gates else sigmoid_lut
    tanh = (lambda z, *_: torch.tanh(z)) if exact_gates else tanh_lut
    xn = (x - p.x_mean) / p.x_std  # (B, T, F) float32, as the graph normalizes
    seq = q16(xn * p.x_inv_scale, exact)  # (B, T, F) int16-valued
    h_n, c_n = [], []
    for k, lay in enumerate(p.layers):
        ax = _matmul(seq, lay.wx, exact)  # (B, T, 4H) Σ W_x·x_t, every t at once
        hq = q16(h0[k] * Q16, exact)  # (B, H)
        C = c0[k]  # (B, H) float32
        outs = []
        for t in range(T):
            ah = _matmul(hq, lay.wh, exact)  # (B, 4H)
            z = ax[:, t] * lay.sx + ah * lay.sh + lay.b  # (B, 4H) float32, the C's order
            z_i, z_f, z_c, z_o = z.chunk(4, dim=1)  # (B, H) each
            i_t = sig(z_i, table, exact)
            f_t = sig(z_f, table, exact)
            g_t = tanh(z_c, table, exact)
            o_t = sig(z_o, table, exact)
            C = f_t * C + i_t * g_t  # (B, H) float32
            if cell_scale is not None:
                C = q16(C / cell_scale[k], exact) * cell_scale[k]
            hq = q16(o_t * tanh(C, table, exact) * Q16, exact)  # (B, H) int16-valued
            outs.append(hq)
        seq = torch.stack(outs, dim=1) if outs else x.new_zeros(B, 0, H)  # (B, T, H) int16-valued
        h_n.append(hq / Q16)
        c_n.append(C)
    feats = seq[:, -1] if p.head == "last" else seq  # (B, H) or (B, T, H) int16-valued
    y = _matmul(feats, p.head_w, exact) * p.head_s + p.head_b  # (B, O) or (B, T, O)
    if p.y_std is not None:
        y = y * p.y_std + p.y_mean
    return y, (torch.stack(h_n), torch.stack(c_n))


class CInt16x8:
    """Int8-aware fine-tuning through this scheme: `forward(model, x)` like lstm_edge.int8_sim.OrtDynamicInt8."""

    def forward(self, model, x: Tensor, state=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """`model` (LSTMModel) as the int8 C computes it, with straight-through gradients through every rounding."""
        params = params_from_model(model, exact=not torch.is_grad_enabled())
        return forward(params, x, state, exact=not torch.is_grad_enabled())


def input_amax(x_mean, x_std, x_min, x_max) -> float:
    """The normalized input's |max| over the recorded per-feature range [x_min, x_max]."""
    m, s = np.asarray(x_mean, np.float64), np.asarray(x_std, np.float64)
    lo, hi = ((np.asarray(v, np.float64) - m) / s for v in (x_min, x_max))
    return float(max(np.abs(lo).max(), np.abs(hi).max()))


def params_from_model(model, x_amax: float | None = None, exact: bool = True) -> Int16x8Params:
    """The scheme's constants for an LSTMModel (input range from its config's x_min/x_max, or ±4 std)."""
    c = model.config
    if x_amax is None:
        x_amax = input_amax(c.x_mean, c.x_std, c.x_min, c.x_max) if c.x_min and c.x_max else 4.0
    regression = c.kind == "regression"
    return quantize(
        model.gate_weights(),
        model.head.weight,
        model.head.bias,
        model.x_mean,
        model.x_std,
        x_amax,
        model.y_mean if regression else None,
        model.y_std if regression else None,
        c.head,
        exact,
    )

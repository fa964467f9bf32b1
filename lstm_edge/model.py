"""GateLSTM (the documented gate equations), the full model with normalization and head, and its config.

Shapes: B batch, T time, F input features, H hidden, L layers, O outputs.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_edge.config import C0, H0, LENGTHS, ModelConfig, X, is_seed_form
from lstm_edge.errors import LstmEdgeError

State = tuple[Tensor, Tensor]  # (h, c), each (L, B, H)


class Int8Arithmetic(Protocol):
    """How a runtime rounds weights and activations (lstm_edge.int8_sim simulates ONNX Runtime's int8 LSTM)."""

    def weight(self, w: Tensor) -> Tensor:
        """`w` as the runtime sees it: rounded to its int8 grid and back to float (same shape)."""
        ...

    def activation(self, a: Tensor) -> Tensor:
        """`a` (an activation entering a matmul) as the runtime rounds it, back in float (same shape)."""
        ...


def gate_layers(
    x: Tensor,
    state: State | None,
    layers: list[tuple[Tensor, Tensor, Tensor]],
    dropout: float = 0.0,
    int8: Int8Arithmetic | None = None,
) -> tuple[Tensor, State]:
    """The gate equations over layers of (W_h (4H, H), W_x (4H, F_l), b (4H,)), gate blocks i, f, c, o.

    W·[h_{t-1}, x_t] is computed as W_x·x_t (every step at once) + W_h·h_{t-1} (step by step), as fused kernels
    do; with `int8`, weights and the activations entering each product are rounded the way that runtime does.
    """
    B, T, _ = x.shape
    L, H = len(layers), layers[0][0].shape[1]
    if state is None:
        zeros = x.new_zeros(L, B, H)
        state = (zeros, zeros)
    h0, c0 = state
    as_int8 = int8 or _Exact()
    h_n, c_n = [], []
    seq = x  # (B, T, F)
    for layer, (W_h, W_x, b) in enumerate(layers):
        W_h, W_x = as_int8.weight(W_h), as_int8.weight(W_x)
        zx = as_int8.activation(seq) @ W_x.T + b  # (B, T, 4H) = W_x·x_t + b for every t
        h, C = h0[layer], c0[layer]  # (B, H)
        outs = []
        for t in range(T):
            z = zx[:, t] + as_int8.activation(h) @ W_h.T  # (B, 4H) = W·[h_{t-1}, x_t] + b
            z_i, z_f, z_c, z_o = z.chunk(4, dim=1)  # (B, H) each
            i_t = torch.sigmoid(z_i)
            f_t = torch.sigmoid(z_f)
            o_t = torch.sigmoid(z_o)
            C = f_t * C + i_t * torch.tanh(z_c)  # (B, H)
            h = o_t * torch.tanh(C)  # (B, H)
            outs.append(h)
        seq = torch.stack(outs, dim=1) if outs else x.new_zeros(B, 0, H)  # (B, T, H)
        if dropout and layer < L - 1:
            seq = nn.functional.dropout(seq, dropout, training=True)
        h_n.append(h)
        c_n.append(C)
    return seq, (torch.stack(h_n), torch.stack(c_n))  # (B, T, H), ((L, B, H), (L, B, H))


def gru_gate_layers(x: Tensor, h0: Tensor | None, gru: nn.GRU) -> tuple[Tensor, Tensor]:
    """The GRU equations as PyTorch documents them, over the layers of a unidirectional, batch-first nn.GRU:

        r_t = σ(W_ir·x_t + b_ir + W_hr·h_{t-1} + b_hr)      z_t = σ(W_iz·x_t + b_iz + W_hz·h_{t-1} + b_hz)
        n_t = tanh(W_in·x_t + b_in + r_t ⊙ (W_hn·h_{t-1} + b_hn))      h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Rows of weight_ih/weight_hh are the blocks r, z, n. The reset gate multiplies W_hn·h + b_hn after the product:
    ONNX GRU's linear_before_reset=1, which export/graph.py writes. Returns (out (B, T, H), h_n (L, B, H)).
    """
    B, T, _ = x.shape
    L, H = gru.num_layers, gru.hidden_size
    h0 = x.new_zeros(L, B, H) if h0 is None else h0
    seq, h_n = x, []  # (B, T, F)
    for layer in range(L):
        W_i, W_h = getattr(gru, f"weight_ih_l{layer}"), getattr(gru, f"weight_hh_l{layer}")  # (3H, F_l), (3H, H)
        b_i, b_h = (getattr(gru, f"{n}_l{layer}", None) if gru.bias else None for n in ("bias_ih", "bias_hh"))
        zx = seq @ W_i.T + (b_i if b_i is not None else 0)  # (B, T, 3H): W_i·x_t + b_i for every t
        h, outs = h0[layer], []  # (B, H)
        for t in range(T):
            zh = h @ W_h.T + (b_h if b_h is not None else 0)  # (B, 3H)
            x_r, x_z, x_n = zx[:, t].chunk(3, dim=1)
            h_r, h_z, h_n_ = zh.chunk(3, dim=1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n_)  # (B, H)
            h = (1 - z) * n + z * h
            outs.append(h)
        seq = torch.stack(outs, dim=1)  # (B, T, H)
        h_n.append(h)
    return seq, torch.stack(h_n)


class _Exact:
    def weight(self, w: Tensor) -> Tensor:
        return w

    def activation(self, a: Tensor) -> Tensor:
        return a


class GateLSTM(nn.Module):
    """A multi-layer, batch-first LSTM written as the documented equations on [h_{t-1}, x_t].

    Layer l holds W (4H, H+F_l), rows in gate blocks i, f, c, o, and one bias b (4H):
        i_t = σ(W_i·[h_{t-1},x_t]+b_i)   f_t = σ(W_f·[…]+b_f)   o_t = σ(W_o·[…]+b_o)
        C_t = f_t·C_{t-1} + i_t·tanh(W_c·[…]+b_c)   h_t = o_t·tanh(C_t)
    Same contract as nn.LSTM(batch_first=True): forward(x, state) -> (out, (h_n, c_n)).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers, self.dropout = (
            input_size,
            hidden_size,
            num_layers,
            dropout,
        )
        bound = 1.0 / math.sqrt(hidden_size)
        self.W = nn.ParameterList()
        self.b = nn.ParameterList()
        for layer in range(num_layers):
            f_in = input_size if layer == 0 else hidden_size
            self.W.append(nn.Parameter(torch.empty(4 * hidden_size, hidden_size + f_in).uniform_(-bound, bound)))
            self.b.append(nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound)))

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """x (B, T, F), state (h, c) each (L, B, H) or None for zeros → (out (B, T, H), (h_n, c_n))."""
        return gate_layers(x, state, self.gate_weights(), self.dropout if self.training else 0.0)

    def gate_weights(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per layer (W_h (4H, H), W_x (4H, F_l), b (4H,)): views of W, since W·[h, x] = W_h·h + W_x·x."""
        H = self.hidden_size
        return [(W[:, :H], W[:, H:], b) for W, b in zip(self.W, self.b, strict=True)]

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> GateLSTM:
        """Exact mapping: PyTorch packs gates i,f,g,o — the same blocks as our i,f,c,o — with two biases.

        Raises ValueError for an nn.LSTM that is not batch_first, unidirectional, biased and unprojected."""
        if not lstm.batch_first or lstm.bidirectional or lstm.proj_size or not lstm.bias:
            raise ValueError("GateLSTM maps a batch_first, unidirectional nn.LSTM with biases and no projection")
        gate = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.dropout)
        gate = gate.to(dtype=lstm.weight_ih_l0.dtype)
        with torch.no_grad():
            for layer in range(lstm.num_layers):
                w_ih = getattr(lstm, f"weight_ih_l{layer}")  # (4H, F_l)
                w_hh = getattr(lstm, f"weight_hh_l{layer}")  # (4H, H)
                gate.W[layer].copy_(torch.cat([w_hh, w_ih], dim=1))
                gate.b[layer].copy_(getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"))
        return gate

    def to_torch(self) -> nn.LSTM:
        """The nn.LSTM computing the same function (the whole bias goes to bias_ih; bias_hh is zero)."""
        H = self.hidden_size
        lstm = nn.LSTM(self.input_size, H, self.num_layers, batch_first=True, dropout=self.dropout)
        lstm = lstm.to(dtype=self.W[0].dtype)
        with torch.no_grad():
            for layer in range(self.num_layers):
                getattr(lstm, f"weight_hh_l{layer}").copy_(self.W[layer][:, :H])
                getattr(lstm, f"weight_ih_l{layer}").copy_(self.W[layer][:, H:])
                getattr(lstm, f"bias_ih_l{layer}").copy_(self.b[layer])
                getattr(lstm, f"bias_hh_l{layer}").zero_()
        return lstm


class LSTMModel(nn.Module):
    """[Embedding or normalization] → LSTM/GRU → head → de-normalization: the PyTorch rebuild of every ModelSpec.

    Submodules carry PyTorch's own names, so a user's state_dict maps onto them (SEAMS item 3): `embedding`
    (nn.Embedding, when vocab_size > 0), `lstm` (nn.LSTM or nn.GRU with the config's bidirectional, proj_size, bias,
    batch_first; or GateLSTM, the documented equations, for the seed's form), `head` (nn.Linear; absent for head
    "none"), and buffers x_mean/x_std/y_mean/y_std. `gate_form()` gives the same model on GateLSTM.
    """

    def __init__(self, config: ModelConfig, recurrent: Literal["torch", "gates"] = "torch") -> None:
        super().__init__()
        self.config = config
        c = config
        if c.head == "none" and c.output_size != c.recurrent_width:
            raise ValueError(f"head 'none' outputs the recurrent width {c.recurrent_width}, not {c.output_size}")
        if c.vocab_size:
            self.embedding = nn.Embedding(c.vocab_size, c.input_size)
        if recurrent == "gates":
            if not is_seed_form(c):
                raise ValueError("GateLSTM is the unidirectional, batch-first LSTM with biases and no projection")
            self.lstm: nn.Module = GateLSTM(c.input_size, c.hidden_size, c.num_layers, c.dropout)
        else:
            rnn = nn.LSTM if c.family == "lstm" else nn.GRU
            extra = {"proj_size": c.proj_size} if c.proj_size else {}
            self.lstm = rnn(
                c.input_size,
                c.hidden_size,
                c.num_layers,
                bias=c.bias,
                batch_first=c.batch_first,
                dropout=c.dropout,
                bidirectional=c.bidirectional,
                **extra,
            )
        if c.head != "none":
            self.head = nn.Linear(c.recurrent_width, c.output_size)
        self.register_buffer("x_mean", torch.tensor(c.x_mean, dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(c.x_std, dtype=torch.float32))
        regression = c.kind == "regression"
        self.register_buffer("y_mean", torch.tensor(c.y_mean if regression else [], dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(c.y_std if regression else [], dtype=torch.float32))

    def forward(
        self, x: Tensor, state: tuple[Tensor, ...] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """x [B, T, F] float (or [T, B, F] when time-major; int64 ids [B, T] / [T, B] with an embedding);
        state (h, c) for LSTM or (h,) for GRU, each [L·D, B, width]; lengths [B] int64 in 1..T (packed-sequence
        semantics: outputs past a sequence's length are zero and its final state is the one at its last valid
        step). Returns (y, state) with y [B, O] (heads last/final) or [B, T, O] / [T, B, O] (sequence/none)."""
        c = self.config
        if c.vocab_size:
            x = self.embedding(x)  # (B, T, E): ids → rows of the table
        else:
            x = (x - self.x_mean) / self.x_std  # (B, T, F)
        hx = None if state is None else (tuple(state) if c.has_cell_state else state[0])  # nn.GRU takes h alone
        if lengths is None:
            out, hx = self.lstm(x, hx)  # (B, T, D·H_out)
        else:
            T = x.shape[1 if c.batch_first else 0]
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=c.batch_first, enforce_sorted=False)
            out, hx = self.lstm(packed, hx)
            out, _ = pad_packed_sequence(out, batch_first=c.batch_first, total_length=T)  # zeros past each length
        state = tuple(hx) if c.has_cell_state else (hx,)
        if c.head == "none":
            y = out
        elif c.head == "sequence":
            y = self.head(out)  # (B, T, O)
        else:
            y = self.head(self._features(out, state[0], lengths))  # (B, O)
        if c.kind == "regression" and self.y_std.numel():
            y = y * self.y_std + self.y_mean
        return y, state

    def _features(self, out: Tensor, h_n: Tensor, lengths: Tensor | None) -> Tensor:
        """What heads "last" and "final" read, (B, D·H_out)."""
        c = self.config
        seq = out if c.batch_first else out.transpose(0, 1)  # (B, T, D·H_out)
        B = seq.shape[0]
        if c.head == "final":  # the last layer's final state, forward then backward: cat(h_n[-2], h_n[-1])
            return h_n[-c.num_directions :].transpose(0, 1).reshape(B, -1)
        if lengths is None:
            return seq[:, -1]  # out[:, -1]
        return seq[torch.arange(B), lengths.to(seq.device) - 1]  # each sequence's own last valid step

    def gate_form(self) -> LSTMModel:
        """This model with its nn.LSTM replaced by the equivalent GateLSTM (same dtype, eval mode).

        Raises LstmEdgeError for any other form (GateLSTM documents the seed's unidirectional LSTM)."""
        if isinstance(self.lstm, GateLSTM):
            return self
        if not is_seed_form(self.config):
            raise LstmEdgeError(
                f"the documented-equations GateLSTM covers the seed's form only, not {self.config.describe()}",
                "run the nn.LSTM/nn.GRU reference (drop gates)",
            )
        twin = LSTMModel(self.config, recurrent="gates").to(dtype=self.x_mean.dtype)
        twin.lstm = GateLSTM.from_torch(self.lstm)
        if hasattr(self, "head"):
            twin.head.load_state_dict(self.head.state_dict())
        for name in ("x_mean", "x_std", "y_mean", "y_std"):
            getattr(twin, name).copy_(getattr(self, name))
        return twin.eval()

    def recurrent_weights(self) -> list[list[dict[str, Tensor | None]]]:
        """[layer][direction] → PyTorch-packed weights, detached: w_ih (G·H, F_l), w_hh (G·H, H_out), b_ih and
        b_hh (G·H,) or None without bias, w_hr (H_out, H) or None without projection. G = 4 gate blocks i,f,g,o
        (LSTM) or 3 blocks r,z,n (GRU); F_l = D·H_out above layer 0."""
        rnn = self.lstm if isinstance(self.lstm, (nn.LSTM, nn.GRU)) else self.lstm.to_torch()
        layers = []
        for k in range(self.config.num_layers):
            dirs = []
            for suffix in ("", "_reverse")[: self.config.num_directions]:
                get = lambda name, k=k, suffix=suffix: (  # noqa: E731
                    t.detach() if (t := getattr(rnn, f"{name}_l{k}{suffix}", None)) is not None else None
                )
                dirs.append(
                    {n: get(a) for n, a in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"))}
                    | {"b_hh": get("bias_hh"), "w_hr": get("weight_hr")}
                )
            layers.append(dirs)
        return layers

    def gate_weights(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per layer (W_h (4H, H), W_x (4H, F_l), b (4H,)), gate blocks i, f, c, o; differentiable views."""
        if isinstance(self.lstm, GateLSTM):
            return self.lstm.gate_weights()
        return [
            (
                getattr(self.lstm, f"weight_hh_l{k}"),
                getattr(self.lstm, f"weight_ih_l{k}"),
                getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}"),
            )
            for k in range(self.config.num_layers)
        ]

    def input_equalized(self, x_min: list[float], x_max: list[float]) -> LSTMModel:
        """The same function with its inputs scaled by range instead of standardized (see `equalize_input`)."""
        c = self.config
        W_h, W_x, b = (t.detach().double() for t in self.gate_weights()[0])
        W_x, b, center, half = equalize_input(
            W_x, b, *(torch.tensor(v, dtype=torch.float64) for v in (c.x_mean, c.x_std, x_min, x_max))
        )
        twin = LSTMModel(ModelConfig.from_dict(c.to_dict() | {"x_mean": center.tolist(), "x_std": half.tolist()}))
        names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
        with torch.no_grad():
            for k, weights in enumerate(self.lstm_weights()):
                for key, t in weights.items():
                    getattr(twin.lstm, f"{names[key]}_l{k}").copy_(t)
            twin.head.load_state_dict(self.head.state_dict())
            twin.lstm.weight_ih_l0.copy_(W_x)
            twin.lstm.bias_ih_l0.copy_(b - twin.lstm.bias_hh_l0.double())
        return twin.eval()

    def lstm_weights(self) -> list[dict[str, Tensor]]:
        """Per layer, the PyTorch-packed weights (gate blocks i,f,g,o): w_ih, w_hh, b_ih, b_hh."""
        lstm = self.lstm if isinstance(self.lstm, nn.LSTM) else self.lstm.to_torch()
        return [
            {
                "w_ih": getattr(lstm, f"weight_ih_l{layer}").detach(),
                "w_hh": getattr(lstm, f"weight_hh_l{layer}").detach(),
                "b_ih": getattr(lstm, f"bias_ih_l{layer}").detach(),
                "b_hh": getattr(lstm, f"bias_hh_l{layer}").detach(),
            }
            for layer in range(lstm.num_layers)
        ]


def equalize_input(
    W_x: Tensor, b: Tensor, x_mean: Tensor, x_std: Tensor, x_min: Tensor, x_max: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Layer 0 re-expressed for inputs (x - center) / half, which maps each feature's [min, max] onto [-1, 1],
    instead of (x - mean) / std: W_x·(x - mean)/std + b = W_x'·(x - center)/half + b'. Same function, but one
    per-tensor int8 scale then fits every feature; standardized, the adding task's rare 0/1 marker spans
    [-0.1, 7.0] and leaves its [0, 1] value 40 of the 256 levels (measured: +37% MSE from that alone)."""
    center = (x_max + x_min) / 2  # (F,)
    half = torch.where(x_max > x_min, (x_max - x_min) / 2, torch.ones_like(x_max))  # (F,)
    return W_x * (half / x_std), b + W_x @ ((center - x_mean) / x_std), center, half


def run_numpy(module: nn.Module, x, h0, c0):
    """Call a model with the lstm-edge contract on numpy arrays: (x, h0, c0) -> (y, hn, cn) as float32 numpy."""
    with torch.no_grad():
        y, (h, c) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    return y.numpy(), h.numpy(), c.numpy()


def forward_numpy(model: LSTMModel, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """An LSTMModel on numpy arrays given in `config.input_names` order (x[, lengths], h0[, c0]); returns the
    outputs in `config.output_names` order (y, hn[, cn]), in the model's own dtype."""
    c = model.config
    names = c.input_names
    feeds = dict(zip(names, (torch.from_numpy(np.ascontiguousarray(a)) for a in inputs), strict=True))
    state = tuple(feeds[n] for n in names if n in (H0, C0))
    with torch.no_grad():
        y, state = model(feeds[X], state or None, feeds.get(LENGTHS))
    return (y.numpy(), *(s.numpy() for s in state))

"""The model's configuration — the ModelSpec of docs/design.md: family, sizes, layout, head, task and normalization.

Torch-free, so runtimes, codegen and the intake can read it. Every stage downstream of the intake (graph builder,
quantize, runners, codegen, verify) reads structure from here instead of re-deriving it. Fields added after format 1
have defaults that describe the one form older checkpoints held (unidirectional, batch-first LSTM with biases, float
input, head on the last step), so old checkpoints and bundles keep loading.

Shapes: B batch, T time, F input features, L layers, D directions (1 or 2), H hidden, H_out = proj_size or H.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from lstm_edge.limits import MAX_MODEL_DIM, short_repr

# The I/O contract of every graph lstm-edge writes (one definition; runtimes, export, embed and tests read these).
X, LENGTHS, H0, C0 = "x", "lengths", "h0", "c0"
Y, HN, CN = "y", "hn", "cn"
INPUT_NAMES = (X, H0, C0)  # an LSTM bundle's inputs; GRU has no c0, and `lengths` follows x when the model takes it
OUTPUT_NAMES = (Y, HN, CN)

FAMILIES = ("lstm", "gru")
# What the head reads: "last" y = head(out[:, -1]) (with lengths: each sequence's own last valid step);
# "final" y = head(final hidden states of the last layer, both directions concatenated); "sequence" y = head(out) at
# every step; "none" y = out itself (a bare recurrent module, no head).
HEADS = ("last", "final", "sequence", "none")


@dataclass
class ModelConfig:
    """One recurrent model's structure, task and normalization: what every stage after the intake reads (fields
    below, each with its symbol in the shape notation of this module's docstring)."""

    input_size: int  # F: features per step (with an embedding: the embedding width)
    hidden_size: int = 64  # H
    num_layers: int = 2  # L
    output_size: int = 1  # O (the head's width; D·H_out for head "none")
    head: Literal["last", "final", "sequence", "none"] = "last"
    dropout: float = 0.0
    task: str = "custom"
    kind: Literal["regression", "classification"] = "regression"
    # Normalization is part of the model: raw inputs in, outputs in the task's own units.
    x_mean: list[float] = field(default_factory=list)
    x_std: list[float] = field(default_factory=list)
    y_mean: list[float] = field(default_factory=list)
    y_std: list[float] = field(default_factory=list)
    # Per-feature range of the training inputs (empty: unknown). int8 quantization scales inputs by range.
    x_min: list[float] = field(default_factory=list)
    x_max: list[float] = field(default_factory=list)
    # Structure (the ModelSpec fields); the defaults are the seed's form.
    family: Literal["lstm", "gru"] = "lstm"
    bidirectional: bool = False
    proj_size: int = 0  # LSTM projection (nn.LSTM proj_size): h_t = W_hr·(o_t ⊙ tanh(C_t)), width H_out
    bias: bool = True
    batch_first: bool = True  # False: x [T, B, F] and y [T, B, …] — the model's own layout, recorded in the manifest
    vocab_size: int = 0  # > 0: x is int64 token ids [B, T] looked up in an embedding table (vocab_size, input_size)
    lengths: bool = False  # the graph takes `lengths` [B] (int64): PyTorch packed-sequence semantics

    def __post_init__(self) -> None:
        if not self.x_mean and not self.vocab_size:
            self.x_mean = [0.0] * self.input_size
        if not self.x_std and not self.vocab_size:
            self.x_std = [1.0] * self.input_size
        n_y = self.output_size if self.kind == "regression" else 0
        if not self.y_mean and n_y:
            self.y_mean = [0.0] * n_y
        if not self.y_std and n_y:
            self.y_std = [1.0] * n_y
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, not {self.head!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {self.family!r}")
        if self.proj_size and (self.family != "lstm" or not 0 < self.proj_size < self.hidden_size):
            raise ValueError(f"proj_size {self.proj_size} needs an LSTM and 0 < proj_size < hidden_size")

    # ---- derived structure -------------------------------------------------------------------------------
    @property
    def num_directions(self) -> int:  # D
        """D: 2 for a bidirectional model, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:  # H_out: the width of h (c stays H wide)
        """H_out: proj_size where the LSTM projects h, else hidden_size."""
        return self.proj_size or self.hidden_size

    @property
    def recurrent_width(self) -> int:  # D·H_out: the features of `out` at each step
        """D·H_out: the features of the recurrent output at each step."""
        return self.num_directions * self.state_size

    @property
    def has_cell_state(self) -> bool:
        """True for an LSTM (h and c), False for a GRU (h only)."""
        return self.family == "lstm"

    @property
    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """{name: (L·D, width)} of each state tensor; the full shape is (L·D, B, width)."""
        shapes = {H0: (self.num_layers * self.num_directions, self.state_size)}
        if self.has_cell_state:
            shapes[C0] = (self.num_layers * self.num_directions, self.hidden_size)
        return shapes

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph's inputs in order: x, lengths (when the model takes them), h0, and c0 for an LSTM."""
        return (X, *((LENGTHS,) if self.lengths else ()), H0, *((C0,) if self.has_cell_state else ()))

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph's outputs in order: y, hn, and cn for an LSTM."""
        return (Y, HN, *((CN,) if self.has_cell_state else ()))

    @property
    def streamable(self) -> bool:
        """One step at a time with state carried: every unidirectional model (the backward pass needs the future)."""
        return not self.bidirectional

    def describe(self) -> str:
        """One short line a user can check, e.g. 'LSTM 100→256 ×2 layers, bidirectional; head last 512→10'."""
        parts = [f"{self.family.upper()} {self.input_size}→{self.hidden_size} ×{self.num_layers} layers"]
        parts += [p for p, on in (("bidirectional", self.bidirectional), ("time-major", not self.batch_first)) if on]
        if self.proj_size:
            parts.append(f"projection {self.proj_size}")
        if not self.bias:
            parts.append("no bias")
        if self.vocab_size:
            parts.append(f"embedding {self.vocab_size}×{self.input_size} on token ids")
        if self.lengths:
            parts.append("variable lengths")
        head = "no head" if self.head == "none" else f"head {self.head} {self.recurrent_width}→{self.output_size}"
        return ", ".join(parts) + "; " + head

    def to_dict(self) -> dict:
        """Every field as a plain dict (what manifests and checkpoints store; from_dict reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """A config from a manifest's or checkpoint's dict (unknown keys ignored, missing ones defaulted).

        Raises ValueError for a size that is not an integer in 1..MAX_MODEL_DIM, before anything is sized by it
        (`hidden_size = 2**40` would otherwise allocate), and TypeError for a field of the wrong kind."""
        for k in ("input_size", "hidden_size", "num_layers", "output_size"):
            v = d.get(k, 1)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_MODEL_DIM:
                raise ValueError(f"{k} is {short_repr(v)}, not an integer in 1..{MAX_MODEL_DIM}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def is_seed_form(c: ModelConfig) -> bool:
    """The one form GateLSTM, the int8 simulation and the runners' (x, h0, c0) fast path cover: a unidirectional,
    batch-first LSTM with biases, no projection, float input and no lengths."""
    return (
        c.family == "lstm"
        and not c.bidirectional
        and not c.proj_size
        and c.bias
        and c.batch_first
        and not c.vocab_size
        and not c.lengths
    )

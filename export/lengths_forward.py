"""A user's forward(x, lengths) — an nn.LSTM/nn.GRU over pack_padded_sequence — exported through the lengths form.

The weights say which recurrent stack and head; the forward's signature says it takes lengths. The rebuild is then an
LSTMModel(ModelConfig(lengths=True)), whose graph takes `lengths` [B] int64 into the recurrent nodes' sequence_lens
(packed-sequence semantics: outputs past a sequence's length are zero, its final state the one at its last valid
step), and it is validated against the user's forward on padded batches of mixed lengths (user_model.forward_rows:
the first sequence full, the last of one step). torch.onnx cannot export pack_padded_sequence itself (the issue's
row: "cannot export it at all"), so a forward that does more than the rebuild is refused, not exported whole.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from lstm_edge.errors import LstmEdgeError
from lstm_edge.intake import Recognized
from lstm_edge.model import ModelConfig

LENGTHS_NOTE = (
    "forward(x, {0}): {0} → the graph's int64 input `lengths` [B] (sequence_lens), validated on padded batches of "
    "mixed lengths"
)


def required_parameters(forward: Callable[..., Any]) -> list[str] | None:
    """The required positional parameters of a forward (an nn.Module's own forward), or None where it has no Python
    signature (a TorchScript or builtin forward: call it and see)."""
    try:
        # an nn.Module's __call__ takes (*args, **kwargs): its forward's signature says what it needs
        params = inspect.signature(getattr(forward, "forward", forward)).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in positional and p.default is inspect.Parameter.empty]


def lengths_parameter(forward: Callable[..., Any] | None) -> str | None:
    """The name of a forward's second required positional parameter (its lengths), or None where it takes x alone,
    more than two, or has no Python signature."""
    required = required_parameters(forward) if forward is not None else None
    return required[1] if required and len(required) == 2 else None


class WithLengths:
    """The user's forward(x, lengths) callable as forward(x) (every sequence full length) or forward(x, lengths).

    lengths: int64 [B] in 1..T, on the CPU (pack_padded_sequence's requirement)."""

    def __init__(self, forward: Callable[..., Any], batch_first: bool) -> None:
        self.inner, self.batch_first = forward, batch_first

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        if lengths is None:
            B, T = x.shape[:2] if self.batch_first else (x.shape[1], x.shape[0])
            lengths = torch.full((B,), T, dtype=torch.int64)
        return self.inner(x, lengths)


def mixed_lengths(B: int, T: int, seed: int) -> np.ndarray:
    """[B] int64 lengths in 1..T: the first sequence full, the last (B > 1) of one step, the rest drawn — the mix
    model_inputs gives golden cases."""
    lengths = np.random.default_rng(seed).integers(1, T + 1, B, dtype=np.int64)
    lengths[0] = T
    if B > 1:
        lengths[-1] = 1
    return lengths


def with_lengths(rec: Recognized) -> Recognized:
    """The recognized structure taking lengths (ModelConfig.lengths)."""
    return replace(rec, config=ModelConfig.from_dict(rec.config.to_dict() | {"lengths": True}))


def lengths_refusal(origin: str, name: str, why_not: str) -> LstmEdgeError:
    """forward(x, lengths) whose weights the rebuild cannot reproduce: torch.onnx cannot export the packing itself."""
    return LstmEdgeError(
        f"{origin}: forward(x, {name}) takes lengths, and {why_not or 'its weights were not recognized'}; "
        "torch.onnx cannot export pack_padded_sequence, so lstm-edge does not export such a forward whole",
        "keep the recurrent stack and one Linear head in the module (as nn.LSTM/nn.GRU + nn.Linear), or build "
        "lstm_edge.model.LSTMModel(ModelConfig(lengths=True, …)) with your weights in Python",
    )

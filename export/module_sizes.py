"""Sizes for a bundle's manifest when the weights were not recognized: read from the module itself (its first
recurrent layer, and the width of x its forward takes)."""

from __future__ import annotations

import torch
from torch import nn

from lstm_edge.errors import LstmEdgeError
from lstm_edge.model import ModelConfig


def config_from_module(module: nn.Module, example_input: torch.Tensor | None) -> ModelConfig:
    """Sizes for the manifest when the weights were not recognized: the module's first recurrent layer (its x width
    from the example, else the first width its forward takes). Raises LstmEdgeError where it has no nn.LSTM or nn.GRU."""
    rnn = next((m for m in module.modules() if isinstance(m, nn.RNNBase)), None)
    if rnn is None:
        raise LstmEdgeError(
            f"{type(module).__name__} has no nn.LSTM or nn.GRU", "lstm-edge exports recurrent models only"
        )
    emb = next((m for m in module.modules() if isinstance(m, nn.Embedding)), None)
    ids = example_input is not None and not example_input.is_floating_point()
    return ModelConfig(
        input_size=input_width(module, rnn, example_input),
        hidden_size=rnn.hidden_size,
        num_layers=rnn.num_layers,
        family="gru" if isinstance(rnn, nn.GRU) else "lstm",
        bidirectional=rnn.bidirectional,
        proj_size=getattr(rnn, "proj_size", 0),
        bias=rnn.bias,
        batch_first=rnn.batch_first,
        vocab_size=emb.num_embeddings if emb is not None and (ids or example_input is None) else 0,
        head="sequence",
    )


def input_width(module: nn.Module, rnn: nn.RNNBase, example_input: torch.Tensor | None) -> int:
    """The width of x the model itself takes (not its LSTM's, which a front-end may change): the example's last axis,
    else the first of (the first layer holding weights — a Conv1d's in_channels, a Linear's in_features —, the
    recurrent layer's input_size) that the forward accepts."""
    if example_input is not None:
        return int(example_input.shape[-1]) if example_input.is_floating_point() else rnn.input_size
    first = next((m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Linear, nn.Embedding, nn.RNNBase))), rnn)
    if isinstance(first, nn.Embedding):
        return rnn.input_size
    width = {nn.Conv1d: "in_channels", nn.Linear: "in_features"}.get(type(first), "input_size")
    for candidate in dict.fromkeys((getattr(first, width, rnn.input_size), rnn.input_size)):
        x = torch.zeros((2, 3, candidate) if rnn.batch_first else (3, 2, candidate))
        try:
            with torch.no_grad():
                module(x)
        except Exception:  # the user's forward raises anything on a width it does not take: try the next
            continue
        return candidate
    return rnn.input_size

"""nn.LSTMCell / nn.GRUCell weights read as one recurrent layer (issue 26 item 3).

A cell stepped in a Python loop over time is, when the loop is the plain recurrence, exactly a one-layer nn.LSTM
(nn.GRU) with the same four (three) gate blocks: the cell's `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` are that
layer's `*_l0` tensors. The intake recognizes them under those names; whether the loop really is the plain recurrence
is for the user's forward to show (validated at several T), and from weights alone it is assumed and said so.
"""

from __future__ import annotations

import re

from torch import Tensor

from lstm_edge.errors import LstmEdgeError

_CELL = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)$")
_FAMILY = {4: "LSTMCell", 3: "GRUCell"}


def cells_as_layers(state_dict: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """`state_dict` with each recurrent cell's tensors renamed to a one-layer module's (`cell.weight_ih` →
    `cell.weight_ih_l0`), and a description of each cell found, e.g. "nn.LSTMCell at `cell.`" (empty: none; the
    state_dict is returned as it is). A cell whose rows are not 4 or 3 gate blocks (nn.RNNCell) is left alone."""
    found: dict[str, str] = {}
    for key in state_dict:
        m = _CELL.match(key)
        w_hh = state_dict.get(f"{m['prefix']}weight_hh") if m else None
        if m and w_hh is not None and w_hh.ndim == 2 and w_hh.shape[1] and w_hh.shape[0] % w_hh.shape[1] == 0:
            family = _FAMILY.get(w_hh.shape[0] // w_hh.shape[1])
            if family:
                found[m["prefix"]] = family
    if not found:
        return state_dict, []
    renamed = {}
    for key, t in state_dict.items():
        m = _CELL.match(key)
        renamed[f"{key}_l0" if m and m["prefix"] in found else key] = t
    return renamed, [f"nn.{family} at `{prefix}`" for prefix, family in found.items()]


def cell_note(cells: list[str], validated: bool) -> str:
    """The recognized block's line for a cell loop: validated against the user's loop, or assumed (weights only)."""
    what = ", ".join(cells)
    if validated:
        return f"{what} stepped in the forward's loop: the rebuilt layer was validated against that loop"
    return (
        f"{what}: assuming the loop over time is the plain recurrence "
        "(weights cannot show the loop; pass the module to check it)"
    )


def cell_loop_refusal(cells: list[str], why: str) -> LstmEdgeError:
    """One line for a cell loop that is more than the plain recurrence (attention, teacher forcing, …): exporting it
    whole would unroll the loop at the example's length, wrong at any other."""
    return LstmEdgeError(
        f"{', '.join(cells)} stepped in a Python loop that is not the plain recurrence ({why})",
        "lstm-edge exports a cell loop only as one recurrent layer (h, c = cell(x[:, t], (h, c)) for every t); "
        "unrolled by torch.onnx it would hold only at the example's length. Use nn.LSTM/nn.GRU in the model",
    )


__all__ = ["cell_loop_refusal", "cell_note", "cells_as_layers"]

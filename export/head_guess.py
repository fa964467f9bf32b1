"""What the weights cannot say about a Linear head, said as such: from a state_dict (no forward to run) the head
mode is the user's --head, printed with the readings not taken; where those readings give different outputs for the
recognized structure, export refuses to guess without --head."""

from __future__ import annotations

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError
from lstm_edge.intake import Recognized

READINGS = {
    "last": "fc(out[:, -1]), y [B, O]",
    "final": "the final hidden state{both}, y [B, O]",
    "sequence": "fc at every step, y [B, T, O]",
    "none": "no head, y = the recurrent output at every step",
}


def _reading(mode: str, config: ModelConfig) -> str:
    words = READINGS[mode].format(both=", both directions" if config.bidirectional else "")
    if mode == "final" and not config.bidirectional:
        words += ", the same as last here"
    return f"--head {mode} ({words})"


def refuse_head_guess(rec: Recognized, origin: str) -> None:
    """Raises LstmEdgeError when `rec` has a Linear head: from weights alone its mode is a guess, and the modes give
    different outputs (every step vs last always; last vs final where bidirectional). A structure without a head
    has nothing to guess and passes."""
    if rec.head_at is None:
        return
    differs = "bidirectional: last and final differ, " if rec.config.bidirectional else ""
    raise LstmEdgeError(
        f"{origin}: the weights cannot say what the Linear head at `{rec.head_at}` reads, and the readings give "
        f"different outputs here ({differs}every step vs last): "
        + "; ".join(_reading(m, rec.config) for m in READINGS),
        "pass the --head your forward uses, or "
        + (
            "--trust-pickle to run the file's own forward (code from the file)"
            if origin.startswith(("TorchScript", "torch.export"))
            else "--trust-pickle --code MODEL.py (its class)"
        )
        + " so lstm-edge runs your forward and picks the head that matches",
    )


def head_note(rec: Recognized, head: str) -> str:
    """One line for the printed recognition: the head mode taken from --head, unchecked, and the readings not
    taken with the flag for each ("" where the structure has no Linear head)."""
    if rec.head_at is None and rec.unused_head_at is None:
        return ""
    others = "; ".join(_reading(m, rec.config) for m in READINGS if m != head)
    return f"head {head}: from --head, not checked (your forward was not available); not taken: {others}"

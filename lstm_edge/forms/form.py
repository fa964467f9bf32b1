"""What one model form is, as data: the `ModelForm` every file in lstm_edge/forms/ declares once.

Torch-free and onnx-free (it imports only lstm_edge.config), so every layer — intake, export, quantize, runtimes,
codegen, targets, docs — can read a form's facts without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lstm_edge.config import ModelConfig

# quantize's modes (lstm_edge.bundle.VARIANT_TABLE): each form says what it makes of each, or refuses it.
QUANTIZE_MODES = ("dynamic", "static", "fp16")

# Shared reasons, word for word what users see today (one place each, several forms cite them).
STATIC_SEED_ONLY = "static int8 calibrates the seed's LSTM form only (x, h0, c0); use dynamic int8 for this model"
NOT_STREAMING = "it cannot stream (bidirectional, or exported without state I/O), so there is no state to carry"


@dataclass(frozen=True)
class ModelForm:
    """One recurrent form users ship, declared once: how it is recognized, built, streamed, quantized, and who refuses
    it with what reason.

    `refused_by` keys name where a refusal is raised: a runtime provider ("c" is codegen and the c runtime, which
    share one check; "openvino", "tract"), a bundle target ("triton"), or a quantize mode ("quantize:fp16"). Each
    value is the exact reason text that place prints; `{field}` in it is filled from the ModelConfig (e.g.
    "{proj_size}"). `refused_only_if` narrows a refusal to part of the form (the fused `sequence_lens` graph, not the
    Scan that masks its own steps)."""

    name: str  # short id, as in tests and docs ("bidirectional", "time-major")
    summary: str  # one line: the PyTorch a user wrote
    applies: Callable[[ModelConfig], bool]  # recognized from a ModelConfig (the ModelSpec the intake produced)
    recognized_from: str  # what the intake reads it from, one line
    graph: str  # the ONNX graph it becomes, one line
    builder: str  # dotted path of the function that builds that graph
    streams: bool  # one step at a time with state carried
    stream_note: str  # why (or why not): when streams is False, the exact reason a runner's stream() refuses with
    quantize: Mapping[str, str]  # quantize mode → what is made (modes it refuses are in refused_by "quantize:MODE")
    refused_by: Mapping[str, str] = field(default_factory=dict)  # where → the exact reason (see the class docstring)
    refused_only_if: Mapping[str, Callable[[ModelConfig], bool]] = field(default_factory=dict)

    def refusal(self, config: ModelConfig, where: str) -> str | None:
        """The reason `where` refuses this form in `config` (filled from its fields), or None when it takes it.
        Assumes self.applies(config)."""
        reason = self.refused_by.get(where)
        if reason is None or not self.refused_only_if.get(where, _always)(config):
            return None
        return reason.format_map(vars(config))


def _always(config: ModelConfig) -> bool:
    return True

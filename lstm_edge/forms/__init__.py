"""The model forms users ship, one file each, in one table: `FORMS`.

Each file in this folder declares one `ModelForm` (form.py): what it is recognized from (read off a ModelConfig),
the graph it becomes and the function that builds it, whether it streams, what quantize makes of it, and who refuses
it with what reason. Codegen and the c runtime (`"c"`), the Triton target, the OpenVINO and tract runtimes (through
onnx_io's sequence-lens limit), the runners' stream() and quantize read their refusals here; docs/forms.md is
`markdown_table()`. Adding a form = one file here + one entry in FORMS + its tests (docs/forms.md says which).

Light on purpose: imports only lstm_edge.config, so every layer can read it without a cycle.

>>> from lstm_edge.config import ModelConfig
>>> c = ModelConfig(4, family="gru", bidirectional=True)
>>> [f.name for f in forms_of(c)]
['gru', 'bidirectional']
>>> refusal(c, "c")
'it is bidirectional (its backward direction reads each sequence from the end)'
>>> refusal(ModelConfig(4, hidden_size=6, proj_size=2, lengths=True), "openvino") is None  # the Scan masks itself
True
"""

from __future__ import annotations

from lstm_edge.config import ModelConfig
from lstm_edge.forms.bidirectional import BIDIRECTIONAL
from lstm_edge.forms.fallback import FALLBACK
from lstm_edge.forms.form import NOT_STREAMING, QUANTIZE_MODES, STATIC_SEED_ONLY, ModelForm
from lstm_edge.forms.gru import GRU
from lstm_edge.forms.lengths import LENGTHS
from lstm_edge.forms.no_bias import NO_BIAS
from lstm_edge.forms.no_head import NO_HEAD
from lstm_edge.forms.projection import PROJECTION
from lstm_edge.forms.seed import SEED
from lstm_edge.forms.time_major import TIME_MAJOR
from lstm_edge.forms.tokens import TOKENS

__all__ = [
    "FORMS",
    "NOT_STREAMING",
    "QUANTIZE_MODES",
    "STATIC_SEED_ONLY",
    "ModelForm",
    "forms_of",
    "markdown_table",
    "quantize_refusals",
    "refusal",
    "refusals",
    "stream_refusal",
]

# The one table, name → form. Its order is the order combined reasons are given in (codegen's since issue 15).
FORMS: dict[str, ModelForm] = {
    f.name: f for f in (SEED, GRU, BIDIRECTIONAL, LENGTHS, PROJECTION, TOKENS, TIME_MAJOR, NO_BIAS, NO_HEAD, FALLBACK)
}


def forms_of(config: ModelConfig) -> list[ModelForm]:
    """The forms `config` is in, in FORMS order (a bidirectional GRU on token ids is three). The seed's form only
    when nothing else in the recurrent part applies; the fallback route is a manifest fact, never matched here."""
    return [f for f in FORMS.values() if f.applies(config)]


def refusals(config: ModelConfig, where: str) -> list[str]:
    """Every reason `where` (a provider like "c" or "openvino", a target like "triton", or "quantize:MODE") refuses
    `config` with, in FORMS order, each once; empty when it takes the model."""
    out: list[str] = []
    for f in forms_of(config):
        reason = f.refusal(config, where)
        if reason is not None and reason not in out:
            out.append(reason)
    return out


def refusal(config: ModelConfig, where: str) -> str | None:
    """The combined one-line reason `where` refuses `config` with (refusals joined by "; "), or None."""
    return "; ".join(refusals(config, where)) or None


def stream_refusal(config: ModelConfig) -> str | None:
    """Why a model in `config`'s form cannot stream one step at a time (the first form that does not), or None."""
    return next((f.stream_note for f in forms_of(config) if not f.streams), None)


def quantize_refusals(config: ModelConfig) -> dict[str, str]:
    """{quantize mode: why it is not made} for `config`'s form, in QUANTIZE_MODES order (empty: every mode)."""
    return {m: why for m in QUANTIZE_MODES if (why := refusal(config, f"quantize:{m}"))}


def markdown_table() -> str:
    """docs/forms.md's table: one row per form — recognized from, graph and builder, streams, quantize, refused by."""
    rows = [
        "| form | recognized from | graph (builder) | streams | quantize | refused by |",
        "|---|---|---|---|---|---|",
    ]
    for f in FORMS.values():
        made = [f"{m}: {f.quantize[m]}" for m in QUANTIZE_MODES if m in f.quantize]
        refused = {k: v for k, v in f.refused_by.items() if not k.startswith("quantize:")}
        made += [f"{k.split(':')[1]}: refused ({v})" for k, v in f.refused_by.items() if k.startswith("quantize:")]
        who = "<br>".join(f"**{k}**{_only(f, k)}: {v}" for k, v in refused.items())
        cells = [
            f"**{f.name}**: {f.summary}",
            f.recognized_from,
            f"{f.graph} (`{f.builder}`)",
            f"{'yes' if f.streams else 'no'}: {f.stream_note}",
            "<br>".join(made) or "—",
            who or "—",
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _only(form: ModelForm, where: str) -> str:
    """' (only …)' from the docstring of the condition narrowing a refusal, or ''."""
    narrow = form.refused_only_if.get(where)
    return f" (only {(narrow.__doc__ or '').strip().rstrip('.')})" if narrow else ""

"""Recognizing a model's structure from its weight names and shapes alone — never from the disk, never from guesses
about names like "fc".

PyTorch's recurrent parameters are regular: `weight_ih_l{k}[_reverse]` (G·H, F_k), `weight_hh_l{k}[_reverse]`
(G·H, H_out), `bias_ih_l{k}`/`bias_hh_l{k}` (G·H,), and with a projection `weight_hr_l{k}` (H_out, H). The gate count
G = weight_hh rows ÷ H tells the family (4 LSTM, 3 GRU); H is weight_hh's width, or weight_hr's with a projection.
A head is a single Linear whose input width equals the recurrent output width D·H_out; an input Embedding is a 2-D
weight (no bias) whose width equals the recurrent input size F. Where one 2-D bias-free weight could be either
(F = D·H_out), the file's own order decides: before the recurrent weights it is read as the embedding, after them
as the head — and the printed description says which, so the user can check. Anything more is refused.

What the weights cannot say is a parameter: the head mode (last step, final state, every step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError

_PARAM = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)(?P<rev>_reverse)?$"
)
GATES = {4: "lstm", 3: "gru"}
HEAD_WORDS = {
    "last": "on the last step",
    "final": "on the final hidden state",
    "sequence": "at every step",
}
MORE_FIX = (
    "lstm-edge cannot know such a forward from weights; pass the module itself: "
    "lstm_edge.export.export_bundle(model, OUT, example_input=x) in Python, or torch.save(model) and "
    "`lstm-edge export FILE --trust-pickle --code MODEL.py`"
)


@dataclass
class Recognized:
    """A recognized structure: the ModelSpec, the weights under LSTMModel's own keys (`lstm.*` with PyTorch's
    parameter names, `head.weight`/`head.bias`, `embedding.weight`, and the normalization buffers), and where in the
    user's state_dict each part was found."""

    config: ModelConfig
    state_dict: dict[str, Tensor]
    recurrent_at: str
    head_at: str | None
    embedding_at: str | None
    unused_head_at: str | None = None  # a Linear left out because head "none" was asked for

    def describe(self, cell_loop: bool = False) -> str:
        """One line a user can check, e.g. "nn.LSTM at `lstm.` 100→256 ×2 layers; Linear head at `fc.` 256→10 on
        the last step". `cell_loop`: the weights are an nn.LSTMCell/nn.GRUCell's (export/cells.py), named as that
        cell's loop rebuilt as one layer rather than as an nn.LSTM the model does not hold."""
        c = self.config
        family = c.family.upper()
        layers = f"×{c.num_layers} layer" + ("s" if c.num_layers > 1 else "")
        rec = f"nn.{family} at `{self.recurrent_at}` {c.input_size}→{c.hidden_size} {layers}"
        if cell_loop:
            rec = f"nn.{family}Cell loop at `{self.recurrent_at}` {c.input_size}→{c.hidden_size}, rebuilt as one nn.{family} layer"
        extras = [
            ("bidirectional", c.bidirectional),
            (f"projection {c.proj_size}", c.proj_size),
            ("no bias", not c.bias),
        ]
        rec += "".join(f", {word}" for word, on in extras if on)
        parts = [rec]
        if self.embedding_at is not None:
            parts.insert(0, f"Embedding at `{self.embedding_at}` {c.vocab_size}×{c.input_size} on token ids")
        if self.head_at is not None:
            parts.append(f"Linear head at `{self.head_at}` {c.recurrent_width}→{c.output_size} {HEAD_WORDS[c.head]}")
        else:
            parts.append("no head: y is the last layer's output at every step")
        if self.unused_head_at is not None:
            parts.append(f"the Linear at `{self.unused_head_at}` is not applied (head none)")
        return "; ".join(parts)


def recognize(state_dict: dict[str, Tensor], head: str = "last") -> Recognized:
    """The structure of `state_dict` (names → tensors) as a ModelConfig plus LSTMModel's canonical state_dict.

    head: what the Linear head reads — "last" (fc(out[:, -1]), the textbook form), "final" (the final hidden states,
    both directions concatenated) or "sequence" (every step); ignored when there is no head; "none": a Linear the
    weights hold is left out (y is the recurrent output at every step).
    Raises LstmEdgeError naming the tensors it cannot place (an MLP head, attention, a second recurrent stack) or
    the shape that does not fit PyTorch's recurrent layout.
    """
    if head not in (*HEAD_WORDS, "none"):
        raise LstmEdgeError(f"--head {head!r}", f"choose {', '.join(HEAD_WORDS)} or none")
    prefix, config_kw, rec_sd = _recurrent_stack(state_dict)
    rest, head_at, embedding_at = _head_and_embedding(state_dict, prefix, config_kw)
    unused = head_at if head == "none" else None  # head none: the Linear is not part of the forward
    head_at = None if head == "none" else head_at
    sd = {f"lstm.{k}": v for k, v in rec_sd.items()}
    output_size = config_kw.pop("recurrent_width")
    if head_at is not None:
        W = rest[head_at]["weight"]
        output_size = W.shape[0]
        sd["head.weight"] = W
        sd["head.bias"] = rest[head_at].get("bias", torch.zeros(W.shape[0], dtype=W.dtype))  # no bias = zero bias
    vocab = 0
    if embedding_at is not None:
        sd["embedding.weight"] = rest[embedding_at]["weight"]
        vocab = sd["embedding.weight"].shape[0]
    try:
        config = ModelConfig(
            **config_kw,
            output_size=output_size,
            head=head if head_at is not None else "none",
            vocab_size=vocab,
            kind="regression",
        )
    except ValueError as e:
        raise LstmEdgeError(f"the recognized structure is not one lstm-edge can hold ({e})") from e
    for name in ("x_mean", "x_std", "y_mean", "y_std"):  # identity normalization: the user's forward has none
        sd[name] = torch.tensor(getattr(config, name), dtype=torch.float32)
    sd = {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()}
    return Recognized(config, sd, prefix, _at(head_at), _at(embedding_at), _at(unused))


def _recurrent_stack(state_dict: dict[str, Tensor]) -> tuple[str, dict, dict[str, Tensor]]:
    """The one recurrent stack of `state_dict`: its key prefix, its ModelConfig fields (plus `recurrent_width`) and
    its tensors under PyTorch's names. Raises LstmEdgeError where there is none or more than one."""
    keys = list(state_dict)
    stacks: dict[str, dict[tuple[str, int, bool], Tensor]] = {}
    for k in keys:
        m = _PARAM.match(k)
        if m:
            stacks.setdefault(m["prefix"], {})[(m["kind"], int(m["layer"]), bool(m["rev"]))] = state_dict[k]
    if not stacks:
        shown = ", ".join(f"{k} {_shape(state_dict[k])}" for k in keys[:4]) + (", …" if len(keys) > 4 else "")
        raise LstmEdgeError(
            f"no recurrent weights (weight_ih_l0, weight_hh_l0 of an nn.LSTM or nn.GRU) among {len(keys)} tensors: "
            f"{shown}",
            "lstm-edge exports LSTM/GRU models; pass the state_dict of one",
        )
    prefix = next(iter(stacks))
    if len(stacks) > 1:
        # the prefixes alike (`enc.`, `dec.`: each holds weight_ih_l0 …); a top-level nn.LSTM's is empty
        named = ", ".join(f"`{p}`" if p else "the top level" for p in stacks)
        raise LstmEdgeError(f"the state_dict holds {len(stacks)} recurrent stacks (at {named}) — {MORE_FIX}")
    config_kw, rec_sd = _recurrent(prefix, stacks[prefix])
    return prefix, config_kw, rec_sd


def _head_and_embedding(
    state_dict: dict[str, Tensor], prefix: str, config_kw: dict
) -> tuple[dict[str, dict[str, Tensor]], str | None, str | None]:
    """Every tensor outside the recurrent stack grouped by module (the key up to its last dot), and which module is
    the Linear head and which the input Embedding (None: not there). Raises LstmEdgeError for anything else."""
    keys = list(state_dict)
    first_rec = min(i for i, k in enumerate(keys) if k.startswith(prefix) and _PARAM.match(k))
    rest: dict[str, dict[str, Tensor]] = {}
    order: dict[str, int] = {}
    for i, k in enumerate(keys):
        if _PARAM.match(k) and k.startswith(prefix):
            continue
        mod, _, leaf = k.rpartition(".")
        rest.setdefault(mod, {})[leaf] = state_dict[k]
        order.setdefault(mod, i)
    width = config_kw["recurrent_width"]
    F = config_kw["input_size"]
    heads, embeddings = [], []
    for mod, leaves in rest.items():
        w, b = leaves.get("weight"), leaves.get("bias")
        if set(leaves) - {"weight", "bias"} or w is None or w.ndim != 2:
            continue
        linear_fits = w.shape[1] == width and (b is None or tuple(b.shape) == (w.shape[0],))
        embedding_fits = b is None and w.shape[1] == F
        if linear_fits and embedding_fits:
            (embeddings if order[mod] < first_rec else heads).append(mod)
        elif linear_fits:
            heads.append(mod)
        elif embedding_fits:
            embeddings.append(mod)
    head_at = heads[0] if len(heads) == 1 else None
    embedding_at = embeddings[0] if len(embeddings) == 1 else None
    extra = [
        f"{mod + '.' if mod else ''}{leaf} {_shape(t)}"
        for mod, leaves in rest.items()
        if mod not in (head_at, embedding_at)
        for leaf, t in leaves.items()
    ]
    if extra:
        shown = ", ".join(extra[:4]) + (f", … ({len(extra)} in all)" if len(extra) > 4 else "")
        raise LstmEdgeError(
            f"the state_dict holds more than {'an LSTM' if config_kw['family'] == 'lstm' else 'a GRU'} with one Linear head "
            f"(and an input Embedding): {shown} — {MORE_FIX}"
        )
    return rest, head_at, embedding_at


def _recurrent(prefix: str, params: dict[tuple[str, int, bool], Tensor]) -> tuple[dict, dict[str, Tensor]]:
    """The ModelConfig fields of one recurrent stack and its tensors under PyTorch's own names; checks every shape."""
    layers = sorted({layer for _, layer, _ in params})
    L = len(layers)
    if layers != list(range(L)):
        raise LstmEdgeError(f"recurrent weights at `{prefix}` have layers {layers}, not 0…{L - 1}", "save them all")
    D = 2 if any(rev for _, _, rev in params) else 1
    has_bias = any(kind.startswith("bias") for kind, _, _ in params)
    proj = ("weight_hr", 0, False) in params
    kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else []) + (["weight_hr"] if proj else [])
    for layer in range(L):
        for rev in (False, True)[:D]:
            for kind in kinds:
                if (kind, layer, rev) not in params:
                    raise LstmEdgeError(
                        f"`{prefix}{kind}_l{layer}{'_reverse' if rev else ''}` is missing", "save the whole state_dict"
                    )
    for (kind, layer, rev), t in params.items():
        if t.ndim != (1 if kind.startswith("bias") else 2) or 0 in t.shape:
            raise LstmEdgeError(
                f"`{prefix}{kind}_l{layer}{'_reverse' if rev else ''}` has shape {_shape(t)}, not a recurrent "
                f"{'bias' if kind.startswith('bias') else 'weight matrix'}",
                "the weights do not form one PyTorch recurrent module; check the file",
            )
    w_hh = params[("weight_hh", 0, False)]
    H = params[("weight_hr", 0, False)].shape[1] if proj else w_hh.shape[1]
    H_out = w_hh.shape[1]
    if w_hh.shape[0] % H or w_hh.shape[0] // H not in GATES:
        raise LstmEdgeError(
            f"`{prefix}weight_hh_l0` has shape {_shape(w_hh)}: its rows are not 4 (LSTM) or 3 (GRU) gate blocks of "
            f"hidden size {H}",
            "lstm-edge exports nn.LSTM and nn.GRU",
        )
    G = w_hh.shape[0] // H
    family = GATES[G]
    if proj and family != "lstm":
        raise LstmEdgeError(f"`{prefix}` has weight_hr (a projection) but {G} gate blocks", "only nn.LSTM projects")
    F = params[("weight_ih", 0, False)].shape[1]
    out: dict[str, Tensor] = {}
    for (kind, layer, rev), t in params.items():
        f_in = F if layer == 0 else D * H_out
        want = {
            "weight_ih": (G * H, f_in),
            "weight_hh": (G * H, H_out),
            "bias_ih": (G * H,),
            "bias_hh": (G * H,),
            "weight_hr": (H_out, H),
        }[kind]
        name = f"{kind}_l{layer}{'_reverse' if rev else ''}"
        if tuple(t.shape) != want or not t.is_floating_point():
            raise LstmEdgeError(
                f"`{prefix}{name}` has shape {_shape(t)} ({t.dtype}), expected {want} for an nn.{family.upper()} "
                f"{F}→{H} ×{L}",
                "the weights do not form one PyTorch recurrent module; check the file",
            )
        out[name] = t
    fields = {
        "family": family,
        "input_size": F,
        "hidden_size": H,
        "num_layers": L,
        "bidirectional": D == 2,
        "proj_size": H_out if proj else 0,
        "bias": has_bias,
        "recurrent_width": D * H_out,
    }
    return fields, out


def _shape(t: Tensor) -> str:
    return "×".join(str(d) for d in t.shape) if t.ndim else "scalar"


def _at(module: str | None) -> str | None:
    return None if module is None else (module + "." if module else "")

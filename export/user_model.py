"""Exporting a user's model: recognized structure → fused graph, checked against the user's own forward; where the
structure does not reproduce that forward, the forward itself through torch.onnx (a stateless bundle).

The reference a bundle is judged against is recorded in its manifest (`reference.kind`):
- "rebuilt-from-state-dict": only weights were given; the rebuilt LSTMModel is the reference.
- "user-forward": the user's forward (a module, pickled module, TorchScript or .pt2) was run at B ∈ {1, 3},
  T ∈ {1, 17, 300} — shapes no trace saw — and the ONNX graph matched it within the float32 tolerance.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError, ParityError, first_line
from lstm_edge.export.cells import cell_loop_refusal, cell_note, cells_as_layers
from lstm_edge.export.head_guess import head_note, refuse_head_guess
from lstm_edge.export.lengths_forward import (
    LENGTHS_NOTE,
    WithLengths,
    lengths_parameter,
    lengths_refusal,
    mixed_lengths,
    required_parameters,
    with_lengths,
)
from lstm_edge.export.lint import lint
from lstm_edge.export.module_sizes import config_from_module
from lstm_edge.export.plan import HEAD_CHOICES, ExportConfig, Plan, plan_own_model
from lstm_edge.export.state_io import streaming_plan
from lstm_edge.export.torch_export import EXPORTERS, export_forward
from lstm_edge.export.validate import format_rows, ort_cpu_session, run_quiet
from lstm_edge.forms import refusal
from lstm_edge.intake import ModelFile, Recognized, recognize
from lstm_edge.model import LSTMModel
from lstm_edge.tolerances import FP32_ABS, scaled_error

# B ∈ {1, 3} × T ∈ {1, 17, 300}: none of them a trace shape (traces use B, T ≥ 2 and T ≠ 17, 300).
FORWARD_SHAPES = ((1, 1), (1, 17), (1, 300), (3, 1), (3, 17), (3, 300))
HEAD_PROBE = (3, 17)  # one shape is enough to tell the head modes apart: they differ in shape or in value
STATELESS_OK = {"missing-state-input", "missing-state-output"}  # a stateless export has no state by design
STATELESS_LAYOUT = "the user's own forward exported by torch.onnx ({}); gate layout as torch.onnx writes it"


def builder_limit(config: ModelConfig) -> str | None:
    """What the intake cannot export through the weight-level graph builder in `config` (None: it can). The builder
    writes every ModelSpec form (export/graph.py); what remains is a variable-length model, whose user forward takes
    a `lengths` argument the intake cannot know how to pass (export it from Python with an LSTMModel instead)."""
    return refusal(config, "intake")  # lstm_edge.forms: the lengths form's reason


def plan_file(mf: ModelFile, cfg: ExportConfig, example_input: torch.Tensor | None) -> Plan:
    """A user's file, read by the intake → a validated Plan (see module docstring)."""
    where = f" {mf.where}" if mf.where else ""
    stripped = f", prefix `{mf.stripped}` stripped" if mf.stripped else ""
    origin = f"{mf.format}{where}{stripped}"
    plan = _plan(mf.state_dict, mf.forward, mf.module, mf.static_shape, origin, cfg, example_input)
    return _said(plan, mf.format, mf.notes)


def plan_module(module: nn.Module, cfg: ExportConfig, example_input: torch.Tensor | None) -> Plan:
    """An nn.Module passed to the Python API → a validated Plan; its forward is the reference."""
    module = module.eval()
    sd = {k: v.detach() for k, v in module.state_dict().items()}
    plan = _plan(sd, module, module, None, f"nn.Module {type(module).__name__}", cfg, example_input)
    return _said(plan, f"Python API, nn.Module {type(module).__name__}", [])


def _said(plan: Plan, forward: str, notes: list[str]) -> Plan:
    """The plan with whose forward it was judged against (reference.forward) and the reader's notes printed."""
    if plan.reference.get("kind") == "user-forward":
        plan.reference["forward"] = forward
    plan.recognized = "\n".join([plan.recognized, *notes])
    return plan


def _plan(
    state_dict: dict[str, torch.Tensor],
    forward: Callable[..., Any] | None,
    module: nn.Module | None,
    static_shape: tuple[int, ...] | None,
    origin: str,
    cfg: ExportConfig,
    example_input: torch.Tensor | None,
) -> Plan:
    state_dict, cells = cells_as_layers(state_dict)  # an LSTMCell/GRUCell loop: one recurrent layer (export/cells.py)
    rec, not_recognized = _recognized(state_dict, cfg, module)
    takes = lengths_parameter(forward)  # forward(x, lengths): the lengths form (export/lengths_forward.py)
    if takes:
        forward, rec = WithLengths(forward, rec.config.batch_first if rec else True), rec and with_lengths(rec)
    limit = builder_limit(rec.config) if rec and not takes else None
    if forward is None:
        assert rec is not None
        if limit:
            raise LstmEdgeError(
                f"recognized {rec.describe(cell_loop=bool(cells))}; {limit}",
                "save the whole module (torch.save(model)) and pass --trust-pickle --code MODEL.py, or call "
                "lstm_edge.export.export_bundle(model, OUT) in Python, so lstm-edge can export its own forward",
            )
        if cfg.head is None:
            refuse_head_guess(rec, origin)
        plan = plan_own_model(_rebuild(rec), cfg, "")
        plan.reference = {
            "kind": "rebuilt-from-state-dict",
            "detail": f"{origin}: {rec.describe(cell_loop=bool(cells))}; validated against the rebuilt LSTMModel (no forward was given)",
        }
        notes = (
            origin,
            rec.describe(cell_loop=bool(cells)),
            cell_note(cells, validated=False) if cells else "",
            head_note(rec, cfg.head or "none"),
        )
        plan.recognized = "\n".join(filter(None, notes))
        return plan

    shapes = (static_shape[:2],) if static_shape else FORWARD_SHAPES
    why_not = not_recognized or limit or ""
    if rec is not None and not limit:
        rec = _choose_head(rec, state_dict, forward, cfg, static_shape or (*HEAD_PROBE,))
        plan = plan_own_model(_rebuild(rec), cfg, "")
        rows = forward_rows(plan.proto, forward, rec.config, shapes)
        if all(r["ok"] for r in rows):
            plan.rows += rows
            at = (
                f"at its exported shape {tuple(static_shape)} (torch.export specializes nn.LSTM's time axis) and "
                "against the rebuilt LSTMModel elsewhere"
                if static_shape
                else "at B ∈ {1, 3}, T ∈ {1, 17, 300}"
            )
            plan.reference = {
                "kind": "user-forward",
                "detail": f"{origin}: {rec.describe(cell_loop=bool(cells))}; validated {at}",
            }
            plan.recognized = f"{origin}\n{rec.describe(cell_loop=bool(cells))}" + (
                f"\n{cell_note(cells, validated=True)}" if cells else ""
            )
            plan.recognized += f"\n{LENGTHS_NOTE.format(takes)}" if takes else ""
            return plan
        worst = max(r["max_scaled_error"] for r in rows)
        shaped = next((r for r in rows if "shapes" in r), None)  # a head on every step where the forward has one
        why_not = (f"the recognized structure gives y {shaped['shapes'][0]} where its forward gives {shaped['shapes'][1]}"
                   if shaped else f"the recognized structure differs from its forward by {worst:.2e} (scaled)")  # fmt: skip
    if takes:
        raise lengths_refusal(origin, takes, why_not)
    if cells:  # torch.onnx would unroll the loop at the example's length
        raise cell_loop_refusal(cells, why_not)
    if module is None:
        raise LstmEdgeError(
            f"{origin}: {why_not}; lstm-edge exports a forward it cannot rebuild only from Python code, which a "
            f"{origin.split(' ')[0]} file does not carry",
            "export from Python where the class is defined: lstm_edge.export.export_bundle(model, OUT, example_input=x)",
        )
    return _fallback(module, rec, origin, why_not, cfg, example_input)


def _recognized(state_dict, cfg: ExportConfig, module: nn.Module | None) -> tuple[Recognized | None, str]:
    """(the structure recognized from the weights in the module's layout, or None with why not where a module's
    forward can be exported instead). Raises LstmEdgeError from recognize() where there is no module."""
    try:
        return _with_module_layout(recognize(state_dict, cfg.head or "last"), module), ""
    except LstmEdgeError as e:
        if module is None:  # weights only, or a forward lstm-edge cannot export itself
            raise
        return None, _reason(e)


def _reason(e: Exception, limit: int = 200) -> str:
    """Why the weights were not recognized, for the recognized block: the problem without its fix, shortened at a word
    boundary (never mid-identifier)."""
    problem = getattr(e, "problem", None) or first_line(e, 10_000)
    return textwrap.shorten(problem.split(" — ")[0], limit, placeholder=" …")


def _with_module_layout(rec: Recognized | None, module: nn.Module | None) -> Recognized | None:
    """The recognized structure in the module's own layout: weights cannot say batch_first, the module can
    (a time-major nn.LSTM takes and gives [T, B, …])."""
    rnn = next((m for m in module.modules() if isinstance(m, nn.RNNBase)), None) if module is not None else None
    return rec if rec is None or rnn is None else _in_layout(rec, rnn.batch_first)


def _in_layout(rec: Recognized, batch_first: bool) -> Recognized:
    if rec.config.batch_first == batch_first:
        return rec
    config = ModelConfig.from_dict(rec.config.to_dict() | {"batch_first": batch_first})
    return Recognized(config, rec.state_dict, rec.recurrent_at, rec.head_at, rec.embedding_at)


def _rebuild(rec: Recognized) -> LSTMModel:
    model = LSTMModel(rec.config)
    try:
        model.load_state_dict(rec.state_dict)
    except RuntimeError as e:  # a mismatch here is ours: recognize() checked every shape
        raise LstmEdgeError(f"rebuilding {rec.describe()} failed ({first_line(e, 160)})") from e
    return model.eval()


def _choose_head(
    rec: Recognized,
    state_dict: dict[str, torch.Tensor],
    forward: Callable[..., Any],
    cfg: ExportConfig,
    shape: tuple[int, ...],
) -> Recognized:
    """With no --head given, the head mode whose rebuild reproduces the forward (the weights cannot say; the forward
    can). Falls back to "last" when none does — the comparison afterwards then decides."""
    if cfg.head is not None or rec.head_at is None:
        return rec
    x = _inputs(rec.config, *shape[:2], seed=0)
    want = _call(forward, x)
    for mode in HEAD_CHOICES:
        candidate = rec if mode == rec.config.head else _in_layout(recognize(state_dict, mode), rec.config.batch_first)
        candidate = with_lengths(candidate) if rec.config.lengths else candidate
        with torch.no_grad():
            got = _rebuild(candidate)(x)[0].numpy()
        if got.shape == want.shape and scaled_error(got, want).max() <= FP32_ABS:
            return candidate
    return rec


def _inputs(config: ModelConfig, B: int, T: int, seed: int) -> torch.Tensor:
    """x for B sequences of T steps in the model's layout: [B, T, F] ([T, B, F] time-major), token ids [B, T]."""
    g = torch.Generator().manual_seed(seed)
    bt = (B, T) if config.batch_first else (T, B)
    if config.vocab_size:
        return torch.randint(0, config.vocab_size, bt, generator=g)
    return torch.randn(*bt, config.input_size, generator=g)


def _call(forward: Callable[..., Any], x: torch.Tensor, lengths: torch.Tensor | None = None) -> np.ndarray:
    """The user's forward on x (and lengths, for a WithLengths forward; zero initial state, as their forward runs it):
    y, the first output.

    Raises:
        LstmEdgeError: a forward that needs more than x (forward(x, lengths)), that fails on x, or returns no tensor.
    """
    _check_takes_x_alone(forward)
    try:
        with torch.no_grad():
            y = forward(x) if lengths is None else forward(x, lengths)
    except Exception as e:  # the user's code may raise anything
        raise LstmEdgeError(
            f"calling the model's forward(x) with x of shape {tuple(x.shape)} failed ({type(e).__name__}: "
            f"{first_line(e, 160)})",
            "lstm-edge calls forward(x) with x [B, T, F] batch-first (token ids [B, T]); check the model takes that",
        ) from e
    if isinstance(y, (tuple, list)):
        y = y[0]
    if not isinstance(y, torch.Tensor):
        raise LstmEdgeError(f"the model's forward returned a {type(y).__name__}", "return y, or (y, state)")
    return y.detach().float().numpy()


def _check_takes_x_alone(forward: Callable[..., Any]) -> None:
    """Refuse, naming the parameters, a forward needing more than x (or x, lengths: WithLengths wraps that one),
    instead of the TypeError its call would raise."""
    required = required_parameters(forward) or []
    if len(required) > 1:
        raise LstmEdgeError(
            f"the model's forward takes ({', '.join(required)}); lstm-edge calls forward(x), or forward(x, lengths)",
            "export a wrapper whose forward(x) (or forward(x, lengths)) calls yours with the rest fixed",
        )


def forward_rows(proto, forward: Callable[..., Any], config: ModelConfig, shapes) -> list[dict]:
    """The ONNX graph (zero initial state) against the user's forward at `shapes`: rows like validate()'s, with
    "against": "user-forward". Does not raise: the caller decides between this graph and the fallback."""
    session = ort_cpu_session(proto)
    names = {i.name for i in session.get_inputs()}
    rows = []
    for B, T in shapes:
        x = _inputs(config, B, T, seed=B * 1000 + T)
        lengths = mixed_lengths(B, T, seed=T) if config.lengths else None  # padded batches of mixed lengths
        want = _call(forward, x, None if lengths is None else torch.from_numpy(lengths))
        feeds = {"x": x.numpy() if config.vocab_size else x.numpy().astype(np.float32)}
        feeds |= {} if lengths is None else {"lengths": lengths}
        for name, (LD, width) in config.state_shapes.items():
            if name in names:
                feeds[name] = np.zeros((LD, B, width), np.float32)
        try:
            got = run_quiet(session, ["y"], feeds)[0]
        except Exception as e:  # noqa: BLE001 - ORT's node errors (InvalidArgument, Fail, …): the graph cannot run here
            rows.append({"batch": B, "seq": T, "state": "zero", "output": "y", "max_scaled_error": float("inf"),
                         "ok": False, "against": "user-forward", "error": first_line(e, 160)})  # fmt: skip
            continue
        err = float(scaled_error(got, want).max()) if got.shape == want.shape and got.size else float("inf")
        shapes = {} if got.shape == want.shape else {"shapes": [list(got.shape), list(want.shape)]}
        if got.shape == want.shape and not got.size:
            err = 0.0
        rows.append(
            {
                "batch": B,
                "seq": T,
                "state": "zero",
                "output": "y",
                "max_scaled_error": err,
                "ok": err <= FP32_ABS,
                "against": "user-forward",
            }
            | shapes
        )
    return rows


def _fallback(
    module: nn.Module,
    rec: Recognized | None,
    origin: str,
    why: str,
    cfg: ExportConfig,
    example_input: torch.Tensor | None,
) -> Plan:
    """The user's forward itself through torch.onnx: x → y, batch and seq symbolic, no state (streaming false)."""
    config = rec.config if rec is not None else config_from_module(module, example_input)
    x = example_input if example_input is not None else _inputs(config, 2, 7, seed=1)  # B, T ≥ 2 (1 freezes)
    config = _with_output(config, module, x)
    proto, rows, findings, exporter = _export_validated(module, x, config, cfg)
    golden = {}
    for k, (B, T) in enumerate(((1, 1), (2, 16), (3, 50), (1, 100))):
        xg = _inputs(config, B, T, seed=7 + k)
        golden[f"b{B}_t{T}/x"] = xg.numpy()
        golden[f"b{B}_t{T}/y"] = _call(module, xg)
    described = rec.describe() if rec is not None else "structure not recognized from the weights"
    io = {
        "inputs": [
            {
                "name": "x",
                # the user's own layout: a time-major forward reads x [seq, batch, …]
                "shape": (["batch", "seq"] if config.batch_first else ["seq", "batch"])
                + ([] if config.vocab_size else [config.input_size]),
                "dtype": "int64" if config.vocab_size else "float32",
            }
        ],
        "outputs": [{"name": "y", "shape": _declared(proto, "y"), "dtype": "float32"}],
    }
    plan = Plan(
        config,
        proto,
        rows,
        golden,
        findings,
        model=None,
        reference={
            "kind": "user-forward",
            "detail": f"{origin}: exported from its own forward ({why}) by {EXPORTERS[exporter]}; validated at "
            "B ∈ {1, 3}, T ∈ {1, 17, 300}; for later checks use the bundle's ONNX in float64 (onnx-float64)",
            "exporter": EXPORTERS[exporter],
        },
        streaming=False,
        recognized=f"{origin}\n{described}\n{why}: exported its forward itself through {EXPORTERS[exporter]} — "
        "stateless, whole sequences only (streaming: false)",
        io=io,
        gate_layout=STATELESS_LAYOUT.format(EXPORTERS[exporter]),
    )
    return streaming_plan(plan, lambda x: _call(module, torch.from_numpy(x)))


def _export_validated(module: nn.Module, x: torch.Tensor, config: ModelConfig, cfg: ExportConfig):
    """The forward through each exporter of EXPORTERS in turn (dynamo first; TorchScript where dynamo fails or bakes
    a length): the first graph that passes lint and equals the forward at FORWARD_SHAPES, as (proto, rows, findings,
    exporter). Raises ParityError (with the table) where a graph ran but differed, else LstmEdgeError naming why
    each exporter failed."""
    failures, differs, baked = [], None, []
    for exporter in EXPORTERS:
        try:
            proto = export_forward(module, x, cfg.opset, exporter, time_major=not config.batch_first)
        except LstmEdgeError as e:
            failures.append(f"{exporter}: {first_line(e.problem, 160)}")
            continue
        findings = [f for f in lint(proto) if f.code not in STATELESS_OK]
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            failures.append(f"{exporter}: its graph fails lint ({errors[0].message})")
            continue
        rows = forward_rows(proto, module, config, FORWARD_SHAPES)
        if all(r["ok"] for r in rows):
            return proto, rows, findings, exporter
        broken = next((r for r in rows if "error" in r), None)
        if broken is not None:  # a shape the trace did not see makes the graph fail: an index or length baked in
            baked.append(broken)
            failures.append(
                f"{exporter}: its graph fails in ONNX Runtime at B={broken['batch']}, T={broken['seq']} "
                f"({broken['error']}) — an index or length the trace baked in"
            )
            continue
        differs = differs or rows
        failures.append(f"{exporter}: its graph differs from the forward")
    if differs is not None:
        raise ParityError(
            f"the exported forward differs from the model beyond the float32 tolerance ({'; '.join(failures)})",
            "nothing was written; report this with the table above",
            report=format_rows(differs, FP32_ABS),
        )
    detail = RuntimeError("; ".join(failures))  # ONNX Runtime's own words: the cause --debug prints
    if len(baked) == len(failures):  # every graph broke at a shape the trace did not see: one readable line
        raise LstmEdgeError(
            f"torch.onnx could not export {type(module).__name__}'s forward: its graph fails in ONNX Runtime at "
            f"B={baked[0]['batch']}, T={baked[0]['seq']}: an index or length the trace baked in",
            "index with tensors, not Python ints (out[:, -1], not out[:, int(T) // 2]); --debug shows ONNX Runtime's "
            "message",
        ) from detail
    raise LstmEdgeError(
        f"torch.onnx could not export {type(module).__name__}'s forward ({'; '.join(failures)})",
        "simplify the forward (no data-dependent Python control flow), or report it with --debug",
    ) from detail


def _declared(proto, name: str) -> list:
    vi = next(o for o in proto.graph.output if o.name == name)
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def _with_output(config: ModelConfig, module: nn.Module, x: torch.Tensor) -> ModelConfig:
    """The config with the head mode and output width the forward actually gives (y [B, O] or [B, T, O])."""
    y = _call(module, x)
    head = config.head if config.head != "none" else "sequence"
    head = "sequence" if y.ndim == 3 else ("last" if head == "sequence" else head)
    d = config.to_dict() | {"output_size": int(y.shape[-1]), "head": head}
    if config.kind == "regression":
        d |= {"y_mean": [], "y_std": []}
    return ModelConfig.from_dict(d)

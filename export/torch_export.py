"""The torch.onnx (dynamo) path, for modules the weight-level builder cannot read.

Two entry points: `dynamo_export` for modules following the stateful contract forward(x, (h0, c0)) -> (y, (hn, cn)),
and `export_forward` for a user's own forward(x) -> y (the intake's fallback when the recognized structure does not
reproduce it), which gives a stateless graph x → y.

Known traps handled here (each measured with torch 2.13): batch or seq of 1 in the example freezes that axis; named
`Dim`s make torch.export specialize nn.LSTM's time axis, so a *second* export in one process came out with seq fixed
at the example's T (the first one survives only through the exporter's own fallback) — `Dim.AUTO` keeps both
dynamic; the outputs' declared time axis stays at the example's T even though the graph computes any T, so it is
re-declared from two probe runs; GateLSTM's Python loop would be unrolled over time (swapped for the equivalent
nn.LSTM first); the weights' gate reordering stays as Slice/Concat unless constants are folded; dynamo writes
external data unless told not to; value_info goes stale.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from lstm_edge.config import C0, H0, INPUT_NAMES, OUTPUT_NAMES, X, Y
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.export.validate import ort_cpu_session, run_quiet
from lstm_edge.model import GateLSTM

CONTRACT = (
    "export_onnx exports modules with forward(x, (h0, c0)) -> (y, (hn, cn)) around an nn.LSTM, x [B, T, F] batch-first"
)
# Probe shapes (B, T) for re-declaring output axes: distinct from each other and from the example's.
PROBES = ((2, 5), (3, 8))


def _swap_gate_lstms(module: nn.Module) -> nn.Module:
    module = copy.deepcopy(module)
    for name, child in list(module.named_children()):
        if isinstance(child, GateLSTM):
            setattr(module, name, child.to_torch())
        else:
            setattr(module, name, _swap_gate_lstms(child))
    return module


def _check_example(example_input: torch.Tensor, rank: int = 3) -> tuple[int, int]:
    if example_input.ndim != rank:
        want = "[B, T, F]" if rank == 3 else "[B, T] token ids"
        raise LstmEdgeError(f"example input has shape {tuple(example_input.shape)}", f"give x as {want}")
    B, T = example_input.shape[:2]
    if B < 2 or T < 2:
        raise LstmEdgeError(
            f"example input has batch {B} and seq {T}: an axis traced at 1 is frozen by the exporter",
            "trace with B ≥ 2 and T ≥ 2",
        )
    return B, T


def dynamo_export(module: nn.Module, example_input: torch.Tensor, opset: int) -> tuple[onnx.ModelProto, dict]:
    """A stateful-contract module → ONNX with inputs x, h0, c0 and outputs y, hn, cn, batch and seq symbolic.

    Raises LstmEdgeError stating the contract when the module does not follow it (checked by calling it first, so
    no torch.onnx traceback reaches the user), or when the exporter fails.
    """
    _check_example(example_input)
    B, T, F = example_input.shape
    module = _swap_gate_lstms(module).eval()
    lstm = next((m for m in module.modules() if isinstance(m, nn.LSTM)), None)
    if lstm is None:
        raise LstmEdgeError(f"the module has no nn.LSTM or GateLSTM — {CONTRACT}", "pass a module that has one")
    if lstm.proj_size or not lstm.batch_first:
        raise LstmEdgeError(
            f"{CONTRACT}; this nn.LSTM is {'projected (proj_size)' if lstm.proj_size else 'time-major'}",
            "export it through lstm_edge.export.export_bundle(module, OUT, example_input=x)",
        )
    D = 2 if lstm.bidirectional else 1
    L, H = lstm.num_layers, lstm.hidden_size
    h0, c0 = torch.zeros(L * D, B, H), torch.zeros(L * D, B, H)
    x = example_input.float()
    try:
        with torch.no_grad():
            out = module(x, (h0, c0))
        y, (hn, cn) = out
        assert all(isinstance(t, torch.Tensor) for t in (y, hn, cn))
    except Exception as e:  # the user's forward may raise anything: this is a check of the contract
        raise LstmEdgeError(
            f"{CONTRACT}; calling {type(module).__name__}(x, (h0, c0)) gave {type(e).__name__}: {first_line(e, 120)}",
            "for a forward(x) -> y, use lstm_edge.export.export_bundle(module, OUT, example_input=x)",
        ) from e
    auto = torch.export.Dim.AUTO
    proto = _torch_onnx(
        module,
        (x, (h0, c0)),
        opset,
        list(INPUT_NAMES),
        list(OUTPUT_NAMES),
        ({0: auto, 1: auto}, ({1: auto}, {1: auto})),
    )
    declare_io(proto, {X: ["batch", "seq", F], H0: [L * D, "batch", H], C0: [L * D, "batch", H]})
    _declare_outputs(proto, lambda b, t: _feeds_stateful(b, t, F, L * D, H))
    return proto, {"input_size": F, "num_layers": L * D, "hidden_size": H}


EXPORTERS = {"dynamo": "torch.onnx dynamo", "torchscript": "torch.onnx TorchScript (dynamo=False)"}


def export_forward(
    module: nn.Module, example_input: torch.Tensor, opset: int, exporter: str = "dynamo", time_major: bool = False
) -> onnx.ModelProto:
    """A user's own forward(x) -> y (or (y, …)) → a stateless ONNX graph x → y, batch and seq symbolic.

    x is float [B, T, F] ([T, B, F] when time_major) or int64 token ids [B, T]. exporter: a key of EXPORTERS —
    "dynamo" (torch.export) or "torchscript" (the tracing exporter, dynamo=False, which keeps lengths symbolic where
    torch.export bakes one into a Reshape). Raises LstmEdgeError when torch.onnx cannot export it or the graph it
    writes only runs at the example's length.
    """
    ids = not example_input.is_floating_point()
    _check_example(example_input.transpose(0, 1) if time_major else example_input, rank=2 if ids else 3)
    module = _swap_gate_lstms(module).eval()
    wrapped = _FirstOutput(module)
    x = example_input if ids else example_input.float()
    axes = ["seq", "batch"] if time_major else ["batch", "seq"]
    if exporter == "torchscript":
        proto = _torchscript_onnx(wrapped, x, opset, {X: dict(enumerate(axes))})
    else:
        auto = torch.export.Dim.AUTO
        proto = _torch_onnx(wrapped, (x,), opset, [X], [Y], ({0: auto, 1: auto},))
    declare_io(proto, {X: [*axes, *x.shape[2:]]})
    _declare_outputs(proto, lambda b, t: {X: _probe_x(example_input, b, t, time_major)})
    return proto


def _torchscript_onnx(module: nn.Module, x: torch.Tensor, opset: int, dynamic_axes: dict) -> onnx.ModelProto:
    """The TorchScript-based exporter (dynamo=False): traces the forward once, axes in `dynamic_axes` symbolic."""
    buf = io.BytesIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), _quiet():
            torch.onnx.export(
                module,
                (x,),
                buf,
                dynamo=False,
                opset_version=opset,
                input_names=[X],
                output_names=[Y],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    except Exception as e:  # the tracer raises its own error types
        raise LstmEdgeError(
            f"torch.onnx ({EXPORTERS['torchscript']}) could not export {type(module.inner).__name__}: "
            f"{first_line(e, 200)}",
            "simplify the forward (no data-dependent Python control flow), or report it with --debug",
        ) from e
    proto = onnx.load_from_string(buf.getvalue())
    del proto.graph.value_info[:]
    return proto


class _FirstOutput(nn.Module):
    """forward(x) → y: the first output where the user's forward returns (y, state) or a list."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        return y[0] if isinstance(y, (tuple, list)) else y


def _torch_onnx(module, args, opset, input_names, output_names, dynamic_shapes) -> onnx.ModelProto:
    try:
        # torch.onnx prints progress and warnings on stdout/stderr: one clear line is ours to print.
        with contextlib.redirect_stdout(io.StringIO()), _quiet():
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                optimize=True,
                verbose=False,
            )
    except Exception as e:  # torch.onnx raises its own error types with multi-page traces
        raise LstmEdgeError(
            f"torch.onnx could not export {type(module).__name__}: {first_line(e, 200)}",
            "simplify the forward (no data-dependent Python control flow), or report it with --debug",
        ) from e
    proto = program.model_proto
    import onnxscript.optimizer  # deferred: onnxscript is heavy and only this path needs it

    # Constant folding takes the gate shuffles off the weights; the default size limits (8K elements) would
    # leave any real LSTM's weights unfolded.
    proto = onnxscript.optimizer.optimize(proto, input_size_limit=1 << 30, output_size_limit=1 << 30)
    del proto.graph.value_info[:]
    return proto


@contextlib.contextmanager
def _quiet():
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)  # torch.export logs its failures at ERROR ("E… _trace.py …"): the raise says it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def declare_io(proto: onnx.ModelProto, shapes: dict[str, list]) -> None:
    """Set the declared shape of graph inputs/outputs named in `shapes` (ints fixed, strings symbolic)."""
    for vi in [*proto.graph.input, *proto.graph.output]:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dim = dims.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = int(d)


def _declare_outputs(proto: onnx.ModelProto, feeds) -> None:
    """Re-declare each output's axes from two probe runs in ONNX Runtime: an axis equal to B in both is "batch", to
    T in both "seq", the same number in both fixed, anything else symbolic. torch.onnx declares the example's T."""
    session = ort_cpu_session(proto)
    names = [o.name for o in proto.graph.output]
    try:
        runs = [(b, t, run_quiet(session, names, feeds(b, t))) for b, t in PROBES]
    except Exception as e:  # ORT raises its own types; a graph baked at one length fails here
        raise LstmEdgeError(
            f"the exported graph does not run at other lengths ({first_line(e, 160)})",
            "the forward fixes its length somewhere (a reshape by a constant?); make it length-independent",
        ) from e
    shapes = {}
    for k, name in enumerate(names):
        (b1, t1, o1), (b2, t2, o2) = runs
        s1, s2 = o1[k].shape, o2[k].shape
        if len(s1) != len(s2):
            raise LstmEdgeError(f"output {name} changes rank with the input's shape", "return a fixed-rank output")
        dims: list = []
        for a, b in zip(s1, s2, strict=True):
            dims.append(
                "batch" if (a, b) == (b1, b2) else "seq" if (a, b) == (t1, t2) else a if a == b else f"{name}_d"
            )
        shapes[name] = dims
    declare_io(proto, shapes)


def _feeds_stateful(b: int, t: int, F: int, LD: int, H: int) -> dict:
    return {
        X: np.zeros((b, t, F), np.float32),
        H0: np.zeros((LD, b, H), np.float32),
        C0: np.zeros((LD, b, H), np.float32),
    }


def _probe_x(example: torch.Tensor, b: int, t: int, time_major: bool = False) -> np.ndarray:
    bt = (t, b) if time_major else (b, t)
    if not example.is_floating_point():
        return np.zeros(bt, np.int64)
    return np.zeros((*bt, *example.shape[2:]), np.float32)


__all__ = ["CONTRACT", "EXPORTERS", "declare_io", "dynamo_export", "export_forward"]

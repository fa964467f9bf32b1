"""The input checks every runner shares, one clear line each: a model input (check_x), a bundle's named feeds in
any ModelSpec form (check_feeds), a state tensor (check_state), and the dtype/finiteness helpers under them."""

from __future__ import annotations

import math

import numpy as np

from lstm_edge.config import LENGTHS as LENGTHS_NAME
from lstm_edge.config import ModelConfig
from lstm_edge.config import X as X_NAME
from lstm_edge.errors import LstmEdgeError

# A step's input checks cost ~0.3 µs this way against ~2 µs for np.isfinite(a).all() on a [1, 1, 2] sample
# (measured here, timeit; the ORT step is ~32 µs). Summing float32 values as Python floats cannot overflow, and
# NaN or ±Inf anywhere makes the sum non-finite, so the test is exact. The two cross near 64 values (1.4 µs vs
# 1.9 µs; at 200 values, run()'s x [1, 100, 2], the sum took 4.3 µs against numpy's 1.9), so larger arrays go
# through numpy. (np.dot(a, a) took 0.9 µs there, but warns where a finite array's squares overflow.)
SMALL_SAMPLE = 64


def _all_finite(a: np.ndarray) -> bool:
    if a.size <= SMALL_SAMPLE:
        return math.isfinite(sum(a.ravel().tolist()))
    return bool(np.isfinite(a).all())


def _as_float32(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.float32:  # the streaming path: np.errstate alone costs ~3 µs, a tenth of an ORT step
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)
    if a.dtype.kind != "f":
        raise LstmEdgeError(f"{name} has dtype {a.dtype}", "give float32 values (float64 is converted)")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, which the finite check names
        return np.ascontiguousarray(a, dtype=np.float32)


def _check_finite(name: str, a: np.ndarray) -> None:
    if _all_finite(a):
        return
    bad = np.argwhere(~np.isfinite(a))
    if not len(bad):  # float64 values near 1e308 can overflow the sum; each one is finite
        return
    pos = tuple(int(i) for i in bad[0])
    raise LstmEdgeError(f"{name} holds {a[pos]} at index {pos}", "clean the input, or pass --allow-nonfinite")


def check_x(x, input_size: int | None, finite: bool = True, batch: int | None = None, name: str = "x") -> np.ndarray:
    """The one check of a model input, shared by `Runner.run` and `Stream.step`.

    Args:
        x: [B, T, F] values of a float dtype (float64 is converted to float32).
        input_size: F the model takes, or None when a bare .onnx leaves it dynamic.
        finite: refuse NaN/±Inf (False = RunnerOptions.allow_nonfinite).
        batch: the B a stream was opened for, or None for any.
        name: what the error message calls the array ("x", or "x_t" from a stream).

    Returns:
        x as a C-contiguous float32 array (the same object when it already is one).

    Raises:
        LstmEdgeError: a non-float dtype, rank ≠ 3, an empty batch or sequence, a batch other than `batch`,
            F ≠ input_size, or a non-finite value (named with its index).
    """
    x = _as_float32(name, x)
    if x.ndim != 3:
        raise LstmEdgeError(f"{name} has rank {x.ndim} (shape {x.shape})", "give x as [batch, seq, features]")
    B, T, F = x.shape
    if B == 0 or T == 0:
        raise LstmEdgeError(f"{name} has batch {B} and seq {T}", "give at least one sequence of at least one step")
    if batch is not None and B != batch:
        raise LstmEdgeError(f"{name} has batch {B}, the stream has {batch}", "use stream(batch=…)")
    if input_size and F != input_size:
        raise LstmEdgeError(f"{name} has {F} features but the model takes {input_size}", "check the input's last axis")
    if finite:
        _check_finite(name, x)
    return x


def check_feeds(
    config: ModelConfig, x, state=None, lengths=None, finite: bool = True, state_dtype=np.float32, batch=None
) -> dict[str, np.ndarray]:
    """Runner.check_feeds for a given ModelConfig (the stream reuses it with its batch): {input name: checked array}
    in `config.input_names` order, with zeros for a missing state and the full T for missing lengths.

    Raises:
        LstmEdgeError: x's dtype, rank, feature count or a NaN/Inf; a token id outside the embedding table; lengths
            given to a model without them, or outside 1..T; a state of the wrong count, shape or values.
    """
    c = config
    names = c.input_names
    axes = "[batch, seq]" if c.batch_first else "[seq, batch]"
    if c.vocab_size:
        x = np.asarray(x)
        if x.dtype.kind not in "iu":
            raise LstmEdgeError(f"x has dtype {x.dtype}, but this model reads token ids", f"give int64 ids {axes}")
        if x.ndim != 2:
            raise LstmEdgeError(f"x has rank {x.ndim} (shape {x.shape})", f"give token ids as {axes}")
        if x.size and (x.min() < 0 or x.max() >= c.vocab_size):
            bad = np.argwhere((x < 0) | (x >= c.vocab_size))[0]
            pos = tuple(int(i) for i in bad)
            raise LstmEdgeError(
                f"x holds token id {x[pos]} at index {pos}; the embedding table has ids 0..{c.vocab_size - 1}",
                "map unknown tokens to a valid id before running",
            )
        x = np.ascontiguousarray(x, dtype=np.int64)
    else:
        x = _as_float32("x", x)
        if x.ndim != 3:
            raise LstmEdgeError(f"x has rank {x.ndim} (shape {x.shape})", f"give x as {axes[:-1]}, features]")
        if x.shape[-1] != c.input_size:
            raise LstmEdgeError(
                f"x has {x.shape[-1]} features but the model takes {c.input_size}", "check the input's last axis"
            )
        if finite:
            _check_finite("x", x)
    B, T = (x.shape[0], x.shape[1]) if c.batch_first else (x.shape[1], x.shape[0])
    if B == 0 or T == 0:
        raise LstmEdgeError(f"x has batch {B} and seq {T}", "give at least one sequence of at least one step")
    if batch is not None and B != batch:
        raise LstmEdgeError(f"x_t has batch {B}, the stream has {batch}", "use stream(batch=…)")
    feeds = {X_NAME: x}
    if lengths is not None and not c.lengths:
        raise LstmEdgeError("this model takes no lengths", "drop lengths, or export the model with lengths")
    if c.lengths:
        lengths = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths)
        if lengths.dtype.kind not in "iu" or lengths.shape != (B,):
            raise LstmEdgeError(f"lengths has dtype {lengths.dtype} and shape {lengths.shape}", f"give {B} integers")
        if lengths.min() < 1 or lengths.max() > T:
            raise LstmEdgeError(f"lengths holds {int(lengths.min())}..{int(lengths.max())}", f"give lengths in 1..{T}")
        feeds[LENGTHS_NAME] = np.ascontiguousarray(lengths, dtype=np.int64)
    shapes = [(rows, B, width) for rows, width in c.state_shapes.values()]
    state_names = list(c.state_shapes)
    if state is None:
        state = [np.zeros(shape, state_dtype) for shape in shapes]
    elif not isinstance(state, tuple | list) or len(state) != len(shapes):
        raise LstmEdgeError(
            f"this {c.family.upper()} takes {len(shapes)} state array(s) ({', '.join(state_names)})",
            "give state=(h0, c0) for an LSTM, (h0,) for a GRU",
        )
    for name, a, shape in zip(state_names, state, shapes, strict=True):
        feeds[name] = check_state(name, a, shape, finite, state_dtype)
    return {n: feeds[n] for n in names}


def check_state(name: str, a, want: tuple[int | None, ...], finite: bool = True, dtype=np.float32) -> np.ndarray:
    """The one check of a state tensor, shared by `Runner.run` and the `Stream.state` setter.

    Args:
        name: "h0" / "c0" / "h" / "c", for the message.
        a: [L, B, H] values of a float dtype.
        want: (L, B, H), None where a bare .onnx leaves an axis open.
        finite: refuse NaN/±Inf.
        dtype: what to return (a float64 torch stream keeps float64).

    Returns:
        a as a C-contiguous array of `dtype`.

    Raises:
        LstmEdgeError: a non-float dtype, a shape other than `want`, or a non-finite value.
    """
    a = _as_float32(name, a) if dtype == np.float32 else _as_float(name, a, dtype)
    if a.ndim != 3 or any(w is not None and w != g for w, g in zip(want, a.shape, strict=False)):
        raise LstmEdgeError(f"{name} has shape {a.shape}, expected {want}", "state is [num_layers, batch, hidden]")
    if finite:
        _check_finite(name, a)
    return a


def _as_float(name: str, a, dtype) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise LstmEdgeError(f"{name} has dtype {a.dtype}", "give float32 values (float64 is converted)")
    return np.ascontiguousarray(a, dtype=dtype)

"""The input checks every runner shares, one clear line each: a model input (check_x), a bundle's named feeds in
any ModelSpec form (check_feeds), a state tensor (check_state), an output's time axis against x's (check_steps), the
count of inputs a statically quantized variant clips (InputRange), and the dtype/finiteness helpers under them."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def check_steps(name: str, y: np.ndarray, t_axis: int, steps: int, x_name: str = "x") -> None:
    """An output's time axis against x's: one check of a few integer compares, shared by `Runner.run`, the streams
    and a bare .onnx's outputs (Signature.check_outputs), so no path returns fewer (or more) steps than it was given.

    Args:
        name: the output's name, for the message ("y").
        y: the output; only one of rank ≥ 3 has a time axis (a last-step head's [B, O] has none).
        t_axis: y's time axis (1 batch-first, 0 time-major; an ONNX LSTM's own Y [T, D, B, H] has it at 0).
        steps: T, the steps x had.
        x_name: what the message calls x.

    Raises:
        LstmEdgeError: y's time axis is not `steps` long — a model traced or unrolled at a fixed length.
    """
    if y.ndim >= 3 and y.shape[t_axis] != steps:
        got = y.shape[t_axis]
        raise LstmEdgeError(
            f"{name} has {got} steps where {x_name} has {steps}: the model's time axis is fixed at {got} (it was "
            "traced, or unrolled, at that length)",
            f"run it at T={got}, or re-export it with a dynamic time axis (lstm-edge lint names it)",
        )


@dataclass(frozen=True)
class InputRange:
    """A variant whose arithmetic clips its input to a range recorded when it was built (the int8 C: int16 input =
    q16((x - mean) / std · inv_scale), clamped to ±limit): what it covers, and how many values of an x fall outside.

    mean, std: [F] float32, the bundle's normalization; inv_scale: float32, the input quantization's 1/scale;
    limit: the integer bound (32767 for int16); source: where the range was recorded ("the training data's range")."""

    mean: np.ndarray
    std: np.ndarray
    inv_scale: np.float32
    limit: float
    source: str

    def __post_init__(self) -> None:
        # (x - mean) / std · inv_scale is monotone in x in float32 (each rounded operation is), so per feature one
        # float32 threshold on each side says exactly which raw values the C clamps: a step's count is then two
        # comparisons a value (~1 µs for a sample in Python, against ~5 µs for the arithmetic in numpy).
        edges = [_float32_edges(m, s, self.inv_scale, self.limit) for m, s in zip(self.mean, self.std, strict=True)]
        object.__setattr__(self, "lo", np.array([e[0] for e in edges], np.float32))
        object.__setattr__(self, "hi", np.array([e[1] for e in edges], np.float32))
        object.__setattr__(self, "_edges", [(float(a), float(b)) for a, b in edges])

    def clipped(self, x: np.ndarray) -> int:
        """How many values of x [..., F] (float32, checked) the variant clips — exactly those whose float32
        (x - mean) / std · inv_scale exceeds ±limit (NaN counts as none: the C makes it 0)."""
        if x.size <= 16:  # a streamed sample: Python comparisons beat numpy's per-call overhead up to ~16 values
            edges = self._edges * (x.size // len(self._edges))
            return sum(not (lo <= v <= hi) and v == v for v, (lo, hi) in zip(x.ravel().tolist(), edges, strict=True))
        return int(np.count_nonzero((x < self.lo) | (x > self.hi)))

    def describe(self) -> str:
        """Per feature, the raw values the variant represents: 'x[0] in [-0.62, 1.62], x[1] in …' (rounded)."""
        half = self.limit / float(self.inv_scale) * self.std.astype(np.float64)
        lo, hi = self.mean - half, self.mean + half
        return ", ".join(f"x[{k}] in [{a:.3g}, {b:.3g}]" for k, (a, b) in enumerate(zip(lo, hi, strict=True)))

    def problem(self, clipped: int, total: int | None, variant: str) -> str:
        """The one line naming `clipped` (of `total`, where known) values clipped, the range and its source."""
        return (
            f"{clipped}{f' of {total}' if total else ''} input values lie outside the {variant} variant's input range ({self.describe()}; "
            f"from {self.source}) and were clipped, so y may be off"
        )


# What a clipped input's warning (run, score) and --strict-range's error say to do.
CLIPPED_FIX = (
    "run --variant fp32 (or --provider cpu --variant int8, whose input scale is set per call), or re-export with "
    "data covering these inputs"
)


def _float32_edges(mean, std, inv_scale, limit: float) -> tuple[np.float32, np.float32]:
    """(lowest, highest) float32 x whose float32 (x - mean) / std · inv_scale lies within ±limit: bisection over the
    float32 values in order (their bit patterns, sign-folded), 32 steps a side."""
    m, s, inv = np.float32(mean), np.float32(std), np.float32(inv_scale)

    def inside(k: int, upper: bool) -> bool:
        x = _from_key(k)
        with np.errstate(all="ignore"):
            v = (x - m) / s * inv
        return bool(v <= limit) if upper else bool(v >= -limit)

    def search(upper: bool) -> np.float32:
        lo, hi = _key(np.float32(-np.finfo(np.float32).max)), _key(np.float32(np.finfo(np.float32).max))
        if upper:  # the last key inside: inside(lo) holds for any sane range, inside(hi) may not
            if inside(hi, True):
                return _from_key(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if inside(mid, True) else (lo, mid)
            return _from_key(lo)
        if inside(lo, False):
            return _from_key(lo)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if inside(mid, False) else (mid, hi)
        return _from_key(hi)

    return search(False), search(True)


def _key(x: np.float32) -> int:
    """float32 → an int that orders as the floats do (negative floats' bits reversed)."""
    b = int(np.float32(x).view(np.int32))
    return b if b >= 0 else -(b & 0x7FFFFFFF)


def _from_key(k: int) -> np.float32:
    return np.int32(k if k >= 0 else (-k) | -0x80000000).view(np.float32)


def stateless_feeds(config: ModelConfig, feeds: dict[str, np.ndarray], state) -> dict[str, np.ndarray]:
    """`feeds` without the state inputs, for a bundle whose graph takes none (the user's forward exported whole, or
    a stateless import): it always starts from zero state. A time-major forward of that kind was fed h0/c0 and
    ONNX Runtime refused them ("Invalid input name: h0").

    Raises:
        LstmEdgeError: a non-zero state was given, which such a graph cannot take (zeros are what it starts from).
    """
    if state is not None and any(np.any(np.asarray(s)) for s in state):
        raise LstmEdgeError(
            "this bundle's graph takes no state (the model's forward exported whole): it runs from zero state",
            "drop the state argument",
        )
    return {k: v for k, v in feeds.items() if k not in config.state_shapes}

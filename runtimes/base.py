"""The one runner interface: run(x, state) -> (y, (h, c)) on numpy arrays, stream() for one step at a time."""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_edge.bundle import MANIFEST, Bundle
from lstm_edge.config import INPUT_NAMES, OUTPUT_NAMES, ModelConfig
from lstm_edge.errors import LstmEdgeError
from lstm_edge.limits import check_run_memory

Arrays = tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]


@dataclass
class RunnerOptions:
    """Everything a runner may be asked for, in one place."""

    variant: str = "fp32"
    threads: int | None = None  # None: the runtime's default (all cores)
    verify_hash: bool = True
    allow_fallback: bool = False  # cuda: accept nodes placed on CPU
    precision_hint: str = "f32"  # openvino: f32 (parity) or bf16
    graph_optimization: str = "all"  # ort: disable | basic | extended | all
    gates: bool = False  # torch: run the documented-equations GateLSTM instead of nn.LSTM
    spin: bool = True  # ort: let idle intra-op threads spin (lower latency; bench turns it off when interleaving)
    float64: bool = False  # torch: compute in float64 — the exact reference parity checks measure against
    allow_nonfinite: bool = False


@dataclass
class Source:
    """What a runner opens: a bundle's artifact, or a bare .onnx file with its declared names."""

    path: Path  # the .onnx (or, for torch, the checkpoint)
    bundle: Bundle | None
    variant: str
    precision: str
    input_names: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    output_names: list[str] = field(default_factory=lambda: list(OUTPUT_NAMES))
    input_size: int | None = None
    num_layers: int | None = None
    hidden_size: int | None = None

    @property
    def config(self) -> ModelConfig | None:
        """The bundle's ModelConfig, or None for a bare .onnx."""
        return self.bundle.config if self.bundle else None

    @property
    def has_state(self) -> bool:
        """Whether the graph takes and returns (h, c), i.e. can stream."""
        return len(self.input_names) >= 3 and len(self.output_names) >= 3


def resolve(path: str | Path, variant: str = "fp32", verify_hash: bool = True) -> Source:
    """What a runner opens: a bundle folder (choosing a variant; "checkpoint" for the torch runner) or a bare .onnx.

    Args:
        path: a bundle folder, its manifest.json, or a .onnx file.
        variant: fp32 | int8 | int8-static | fp16 (bundle.VARIANT_TABLE); a bare .onnx is fp32 only.
        verify_hash: check the artifact's sha256 against the manifest before anything reads it.

    Returns:
        A Source: the file, its declared I/O names, and F / L / H where known.

    Raises:
        LstmEdgeError: nothing at path, not a bundle or .onnx, an unknown or missing variant, a hash mismatch,
            or external data that points outside the bundle.
    """
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST:
        bundle = Bundle.open(path)
        onnx_path = bundle.artifact(variant, verify_hash) if variant != "checkpoint" else bundle.checkpoint(verify_hash)
        c = bundle.config
        if onnx_path.suffix == ".onnx":
            from lstm_edge.onnx_io import load_onnx_checked, read_onnx_io

            proto = load_onnx_checked(onnx_path)  # refuses external data that points outside the bundle
            _check_declared(onnx_path, dict(read_onnx_io(onnx_path, proto)[0]), c)
        precision = bundle.entry(variant).get("precision", variant)
        return Source(
            onnx_path,
            bundle,
            variant,
            precision,
            input_size=c.input_size,
            num_layers=c.num_layers,
            hidden_size=c.hidden_size,
        )
    if not path.exists():
        raise LstmEdgeError(f"model not found: {path}", "pass a bundle folder or a .onnx file")
    if path.suffix != ".onnx":
        raise LstmEdgeError(f"{path} is neither a bundle folder nor a .onnx file", "export it first: lstm-edge export")
    if variant != "fp32":
        raise LstmEdgeError(f"--variant {variant} needs a bundle; a bare .onnx is run as it is", "drop --variant")
    return _bare_onnx(path)


def _check_declared(path: Path, inputs: dict[str, list], c: ModelConfig) -> None:
    """The manifest's config must describe the graph it ships: F on x's last axis, (L·D, width) on each state
    input. A mismatch made ORT fail mid-run with a traceback; here it is one line before any run."""
    want = {"x": {-1: c.input_size}, **{n: {0: s[0], 2: s[1]} for n, s in c.state_shapes.items()}}
    for name, axes in want.items():
        dims = inputs.get(name)
        for axis, size in axes.items():
            got = dims[axis] if dims and len(dims) > max(axis, -axis - 1) else None
            if isinstance(got, int) and got != size:
                raise LstmEdgeError(
                    f"the manifest's config disagrees with {path.name}: it implies {name} axis {axis % 3} = {size}, "
                    f"the graph declares {got} (input_size {c.input_size}, hidden_size {c.hidden_size}, "
                    f"num_layers {c.num_layers})",
                    "re-export the bundle",
                )


def _bare_onnx(path: Path) -> Source:
    from lstm_edge.onnx_io import read_onnx_io

    inputs, outputs = read_onnx_io(path)
    x = inputs[0]
    state = [i for i in inputs[1:] if len(i[1]) == 3]
    dims = lambda d: d if isinstance(d, int) and d > 0 else None  # noqa: E731
    return Source(
        path,
        None,
        "fp32",
        "fp32",
        input_names=[i[0] for i in inputs],
        output_names=[o[0] for o in outputs],
        input_size=dims(x[1][-1]) if x[1] else None,
        num_layers=dims(state[0][1][0]) if state else None,
        hidden_size=dims(state[0][1][2]) if state else None,
    )


class Runner(ABC):
    """Base of every runtime adapter (Polygraphy's BaseRunner, without the activation ceremony).

    Subclasses implement `_run` and `version`; they may override `_step` (a chunk with state carried) and
    `_bind_step` (fixed buffers for the one-step streaming path). Every public method checks its inputs here, once,
    so an adapter never sees a wrong dtype, shape or a NaN unless `RunnerOptions.allow_nonfinite` lets it through.
    """

    runtime: str = "?"
    state_dtype = np.float32  # what a stream keeps h and c in between steps

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        self.source = source
        self.options = options
        self._lock = threading.Lock()  # runtimes are thread-safe for run; our buffers (streaming) are not

    # ---- the public contract -------------------------------------------------------------------------
    def run(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None) -> Arrays:
        """Run whole sequences from an initial state.

        Args:
            x: [B, T, F] float32 (float64 is converted; integers are refused): B sequences of T steps with F
                features each, in the units the model was trained on (the bundle's normalization is inside it).
            state: (h0, c0), each [L, B, H] float32 (L layers, H hidden units); None starts from zeros.

        Returns:
            (y, (h, c)): y is the head's output, [B, O] for a last-step head or [B, T, O] for a sequence head;
            h and c are the final states, [L, B, H] float32 (float64 for the torch runner with float64=True).

        Raises:
            LstmEdgeError: x or the state has the wrong rank, shape, feature count or dtype, is empty, or holds
                NaN/Inf (unless `allow_nonfinite`); or the runtime itself fails (tract names its error).
        """
        x, h0, c0 = self.check_inputs(x, state)
        y, h, c = self._run(x, h0, c0)
        return y, (h, c)

    def stream(self, batch: int = 1) -> Stream:
        """A stateful stream over this runner for `batch` parallel sequences, starting from zero state.

        Returns:
            A Stream: `step(x_t)` one step (or a chunk) at a time, `feed(x, chunk)`, `state`, `reset()`,
            `freeze()`/`unfreeze()`. Streams share the runner's session but not their buffers: one per thread.

        Raises:
            LstmEdgeError: the model has no state inputs/outputs, or batch < 1.
        """
        if not self.source.has_state:
            raise LstmEdgeError(
                "this model has no state inputs/outputs, so it cannot stream", "export it with lstm-edge"
            )
        if batch < 1:
            raise LstmEdgeError(f"stream batch {batch}", "use batch ≥ 1")
        return Stream(self, batch)

    def describe(self) -> dict:
        """What is running, for reports: runtime, version, device ("cpu", "cuda:0"), precision (fp32/int8/fp16),
        variant, threads ("default" = the runtime's own choice) and the model path; adapters add their own keys
        (ORT: providers, graph_optimization; OpenVINO: inference_precision; torch: recurrent)."""
        return {
            "runtime": self.runtime,
            "version": self.version(),
            "device": self.device(),
            "precision": self.source.precision,
            "variant": self.source.variant,
            "threads": self.options.threads or "default",
            "model": str(self.source.path),
        }

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources (a runner is also a context manager)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- for subclasses -------------------------------------------------------------------------------
    @abstractmethod
    def _run(self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    @abstractmethod
    def version(self) -> str:
        """The runtime's own version string."""

    def device(self) -> str:
        """Where the runtime computes: "cpu" unless an adapter says otherwise."""
        return "cpu"

    def _step(self, x_t: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk [B, K, F] with state carried, inputs already checked by the stream."""
        return self._run(x_t, h, c)

    def _bind_step(self, x: np.ndarray, states: tuple[tuple[np.ndarray, ...], ...]) -> Binding | None:
        """The streaming hook: bind one step to fixed buffers, or None to stream through `_step`.

        x is the stream's [B, 1, F] float32 input buffer (the stream copies each checked x_t into it); states are
        two (h, c) pairs of [L, B, H] host buffers. The binding's `step(k)` reads pair k, writes pair 1 - k, and
        returns a fresh y. Alternating two pairs is what lets a runtime read and write state without a copy.
        """
        return None

    # ---- input checks (one clear line each) -----------------------------------------------------------
    def check_inputs(self, x, state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, h0, c0) as checked float32 arrays (zeros for a missing state): what `run` hands to `_run`.

        Raises:
            LstmEdgeError: as `run` describes.
        """
        s, finite = self.source, not self.options.allow_nonfinite
        x = check_x(x, s.input_size, finite)
        B = x.shape[0]
        L, H = s.num_layers, s.hidden_size
        check_run_memory(x.shape, L, H)
        if state is None:
            if L is None or H is None:
                raise LstmEdgeError("the model's state size is not declared", "pass state=(h0, c0) explicitly")
            h0 = np.zeros((L, B, H), np.float32)
            return x, h0, np.zeros_like(h0)
        h0, c0 = (check_state(n, a, (L, B, H), finite) for n, a in zip(("h0", "c0"), state, strict=True))
        return x, h0, c0


# A step's input checks cost ~0.5 µs this way against ~2-3 µs for np.isfinite(a).all() on a [1, 1, 2] sample
# (measured here, timeit; the ORT step is ~32 µs). Summing float32 values as Python floats cannot overflow, and
# NaN or ±Inf anywhere makes the sum non-finite, so the test is exact; large arrays go through numpy.
_SMALL = 256


def _all_finite(a: np.ndarray) -> bool:
    if a.size <= _SMALL:
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


@dataclass
class Binding:
    """What `Runner._bind_step` returns: one step over fixed buffers.

    step(k): run the stream's x buffer from state pair k into pair 1 - k; return that step's y (a fresh array).
    pull(k) / push(k): for state kept on a device, copy pair k device → host / host → device; None when the
    host buffers are the state (ORT CPU and OpenVINO bind them directly).
    """

    step: Callable[[int], np.ndarray]
    pull: Callable[[int], None] | None = None
    push: Callable[[int], None] | None = None


class Stream:
    """Stateful one-step-at-a-time runner: step(x_t) → that step's y; state can be read, set, frozen, restored.

    The state lives in two (h, c) pairs of [L, B, H] buffers; pair `_cur` is current. Where the runner binds a
    step (`Runner._bind_step`), a one-step call is one copy of x_t in, the bound run, and a flip of `_cur`;
    otherwise, and for chunks of K > 1 steps, the runner's `_step` runs from the current pair. Every input goes
    through the same checks as `Runner.run` (check_x / check_state) first.
    """

    def __init__(self, runner: Runner, batch: int = 1) -> None:
        self.runner = runner
        self.batch = batch
        s = runner.source
        self._shape = (s.num_layers, batch, s.hidden_size)
        self._F = s.input_size
        self._finite = not runner.options.allow_nonfinite
        dt = runner.state_dtype
        self._pairs = tuple((np.zeros(self._shape, dt), np.zeros(self._shape, dt)) for _ in range(2))
        self._cur = 0
        self._x = np.zeros((batch, 1, s.input_size or 0), np.float32)
        self._bound = runner._bind_step(self._x, self._pairs) if s.input_size else None
        # The hot path's test: a float32 sample already shaped [B, F] (or [F] for batch 1) needs no conversion.
        # Above _SMALL values the checks are small against the step itself, and check_x's numpy path is faster.
        small = self._x.size <= _SMALL
        self._sample_shapes = {(batch, s.input_size), *([(s.input_size,)] if batch == 1 else [])} if small else set()
        self._x2d = self._x.reshape(batch, -1)  # views of the bound input buffer
        self._x1d = self._x.reshape(-1)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """Advance by one step (or a chunk) and return its output.

        Args:
            x_t: one step's features, [F] (batch 1) or [B, F]; or a chunk of K steps, [B, K, F]. A float dtype,
                converted to float32, in the units `run` takes.

        Returns:
            y for that step, [B, O] (last-step head) or [B, 1, O] (sequence head); for a chunk, y after its last
            step ([B, O]) or for every step ([B, K, O]).

        Raises:
            LstmEdgeError: as `Runner.run` for x (dtype, feature count, NaN/Inf), or a batch other than the
                stream's; the state is unchanged then.
        """
        x = np.asarray(x_t)
        if self._bound is not None and x.dtype == np.float32 and x.shape in self._sample_shapes:
            # The streaming hot path, same rules as check_x with fewer calls: measured here, check_x on the
            # reshaped sample added ~5 µs to a ~30 µs ORT step, this ~1 µs. Anything else takes the general path.
            np.copyto(self._x2d, x)
            if self._finite and not math.isfinite(sum(self._x1d.tolist())):  # as _all_finite, one call fewer
                check_x(self._x.copy(), self._F, True, self.batch, "x_t")  # raises, naming the index
            y = self._bound.step(self._cur)
            self._cur ^= 1
            return y
        if x.ndim == 1:
            x = x[None, None, :]
        elif x.ndim == 2:
            x = x[:, None, :]
        elif x.ndim != 3:
            raise LstmEdgeError(
                f"x_t has rank {x.ndim} (shape {x.shape})",
                "give one step as [features] or [batch, features], or a chunk as [batch, steps, features]",
            )
        x = check_x(x, self._F, self._finite, self.batch, "x_t")
        if self._bound is not None and x.shape[1] == 1:
            np.copyto(self._x, x)
            y = self._bound.step(self._cur)
            self._cur ^= 1
            return y
        return self._advance(x)

    def feed(self, x: np.ndarray, chunk: int = 1) -> np.ndarray:
        """Stream x [B, T, F] through `step` in chunks of `chunk` steps, as a device would, from the current state.

        Returns:
            [B, T, O] (every step's y, concatenated) for a sequence head, else the y after the last step, [B, O] —
            what `run` returns for the same x and starting state. The stream's state is then the final state.

        Raises:
            LstmEdgeError: chunk < 1, or as `step` (x is checked whole, before any step runs).
        """
        if chunk < 1:
            raise LstmEdgeError(f"chunk {chunk}", "use a chunk of at least 1 step")
        x = check_x(x, self._F, self._finite, self.batch)
        ys = [self.step(x[:, t : t + chunk]) for t in range(0, x.shape[1], chunk)]
        return np.concatenate(ys, axis=1) if ys[0].ndim == 3 else ys[-1]

    def reset(self) -> None:
        """Back to zero state (the start of a new sequence)."""
        for a in self._pairs[self._cur]:
            a.fill(0.0)
        if self._bound is not None and self._bound.push:
            self._bound.push(self._cur)

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(h, c), each [L, B, H], copies that later steps do not change. Setting it takes the same shapes, with
        `Runner.run`'s checks on dtype, shape and finiteness (LstmEdgeError)."""
        if self._bound is not None and self._bound.pull:
            self._bound.pull(self._cur)
        h, c = self._pairs[self._cur]
        return h.copy(), c.copy()

    @state.setter
    def state(self, value: tuple[np.ndarray, np.ndarray]) -> None:
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise LstmEdgeError("state must be a pair (h, c)", "use a state read from a stream, or give both arrays")
        dt = self.runner.state_dtype
        h, c = (check_state(n, a, self._shape, self._finite, dt) for n, a in zip(("h", "c"), value, strict=True))
        pair = self._pairs[self._cur]
        np.copyto(pair[0], h)
        np.copyto(pair[1], c)
        if self._bound is not None and self._bound.push:
            self._bound.push(self._cur)

    def freeze(self) -> tuple[np.ndarray, np.ndarray]:
        """A snapshot of (h, c) that later steps do not change (tract's State.freeze)."""
        return self.state

    def unfreeze(self, snapshot: tuple[np.ndarray, np.ndarray]) -> None:
        """Restore a snapshot from `freeze` (checked like the `state` setter; raises LstmEdgeError)."""
        self.state = snapshot

    def _advance(self, x: np.ndarray) -> np.ndarray:
        """Run a checked x [B, K, F] through the runner's `_step` from the current pair, leaving the state there."""
        b, cur = self._bound, self._cur
        if b is not None and b.pull:
            b.pull(cur)
        h, c = self._pairs[cur]
        y, h_new, c_new = self.runner._step(x, h, c)
        np.copyto(h, h_new)
        np.copyto(c, c_new)
        if b is not None and b.push:
            b.push(cur)
        return y

"""`c`: the bundle as generated C (lstm_edge.codegen), built with the system compiler into a shared library cached
by the bundle's sha256, and called through ctypes. Streaming state lives in the C state struct, one per batch row.

variant fp32: float32 C (its own exp/tanh, no libm); variant int8: the int8-weight / int16-activation scheme of
lstm_edge.c_int8_sim (built from the bundle's fp32 model.onnx — ORT's model.int8.onnx is not used).

A GRU or token-id bundle (a ModelSpec form: Runner.infer's named feeds) runs every call, streamed chunks included,
through one NAME_run_batch over state structs set from the feeds' h0 (and c0) and read back after.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from lstm_edge.c_support import (  # the compiler and its flags live there: quantize compiles the int8 C with them too
    DEFAULT_CFLAGS,
    PRECISION_FLAGS,
    bundle_sha256,
    check_supported,
    compile_library,
    compiler,
    generator_digest,
)
from lstm_edge.environment import cpu_model
from lstm_edge.errors import LstmEdgeError
from lstm_edge.extras import missing_extra
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.checks import InputRange
from lstm_edge.runtimes.registry import RUNTIMES
from lstm_edge.runtimes.self_check import cache_home
from lstm_edge.runtimes.source import Source
from lstm_edge.runtimes.stream import Stream

PREFIX = "lem"  # the C prefix of runner-built libraries (lem_step, lem_run, …)
VARIANTS = ("fp32", "int8")


def cache_root() -> Path:
    """Where libraries are cached: c/ in the user cache of lstm-edge (runtimes.self_check.cache_home)."""
    return cache_home() / "c"


def library_path(bundle, precision: str, cflags: tuple[str, ...] = DEFAULT_CFLAGS, sha256: str | None = None) -> Path:
    """Where the library for this bundle, precision and flags is cached (it may not exist yet): keyed by the
    bundle's identity (`sha256`, c_support.bundle_sha256 — computed here when not given), the generator's digest,
    the compiler, the flags and the CPU model. Raises LstmEdgeError where no C compiler is found."""
    sha256 = sha256 or bundle_sha256(bundle)
    flags = (*PRECISION_FLAGS[precision], *cflags)
    key = "\0".join([sha256, precision, compiler(), *flags, generator_digest(), cpu_model()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_root() / f"{sha256[:16]}-{precision}-{digest}" / f"lib{PREFIX}.so"


def build_library(
    bundle,
    precision: str,
    cflags: tuple[str, ...] = DEFAULT_CFLAGS,
    verify_hash: bool = True,
    sha256: str | None = None,
) -> tuple[Path, bool]:
    """The cached shared library for the bundle (generated and compiled when missing). Returns (path, built now).
    A cached library is opened without the generator: torch and onnx are imported only to build one.

    Raises:
        LstmEdgeError: no C compiler, a compile over 30 minutes, or a compiler error on the generated code.
    """
    path = library_path(bundle, precision, cflags, sha256)
    if path.is_file():
        return path, False
    try:
        from lstm_edge.codegen import CodegenConfig, prepare, render  # deferred: lstm_edge.codegen imports torch
    except ImportError as e:  # the generator needs the [torch] extra; a cached build did not
        err = missing_extra(e)
        if err is None:
            raise
        raise LstmEdgeError(
            f"building the C library for this bundle needs the generator: {err.problem}", err.fix
        ) from e

    prep = prepare(bundle.root, CodegenConfig(precision=precision, prefix=PREFIX, verify_hash=verify_hash))
    files = render(prep, precision)
    compile_library({n: files[n] for n in (f"{PREFIX}.c", f"{PREFIX}.h")}, path, precision, cflags)
    return path, True


def int8_input_range(bundle) -> InputRange:
    """The int8 C's input clipping: the bundle's normalization and the input scale lstm_edge.codegen builds the C
    with, from the same recorded range (codegen.input_range), so InputRange.clipped counts what the C clamps."""
    from lstm_edge import c_int8_sim  # deferred: c_int8_sim imports torch
    from lstm_edge.codegen import input_range  # torch, as above

    c = bundle.config
    lo, hi, note = input_range(bundle)
    amax = c_int8_sim.input_amax(c.x_mean, c.x_std, lo, hi)
    inv = np.float32(1.0 / ((amax if amax > 0 else 1.0) / c_int8_sim.Q16))  # c_int8_sim.quantize's x_inv_scale
    return InputRange(np.asarray(c.x_mean, np.float32), np.asarray(c.x_std, np.float32), inv, c_int8_sim.Q16, note)


class CRunner(Runner):
    """The generated C as a runner: run() gives each batch row its own state struct and runs them all in one
    NAME_run_batch call (or NAME_run per row with `batched` False); stream() keeps them.

    Raises LstmEdgeError for a variant other than fp32/int8, a bare .onnx, a model form the C cannot express
    (bidirectional, variable lengths, projection, …: codegen.weights.unsupported), no C compiler, a compile failure, or a
    cached library whose embedded sha256 is not this bundle's.
    """

    runtime = "c"

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        variant = options.variant
        if variant not in VARIANTS:
            raise LstmEdgeError(
                f"{RUNTIMES['c'].refusals['variants other than fp32 and int8']}, not {variant!r}",
                "use --variant fp32 or --variant int8",
            )
        if source.bundle is None:
            raise LstmEdgeError(
                RUNTIMES["c"].refusals["bare .onnx"],
                "pass the bundle folder, not a bare .onnx",
            )
        check_supported(source.bundle.config)  # bidirectional, lengths, projection, …: one line, before any compiling
        super().__init__(dataclasses.replace(source, variant=variant, precision=variant), options)
        bundle = source.bundle
        self.cflags = tuple(options.cflags) if options.cflags is not None else DEFAULT_CFLAGS
        want = bundle_sha256(bundle)  # once: the cache key and the check of the library's embedded identity
        self.library, self.built = build_library(bundle, variant, self.cflags, options.verify_hash, want)
        self.lib = ctypes.CDLL(str(self.library))
        fn = lambda name: getattr(self.lib, f"{PREFIX}_{name}")  # noqa: E731
        fn("bundle_sha256").restype = ctypes.c_char_p
        built_for = fn("bundle_sha256")().decode()
        if built_for != want:
            raise LstmEdgeError(
                f"{self.library} was built for bundle sha256 {built_for[:12]}…, not this bundle ({want[:12]}…)",
                f"delete it so that it is rebuilt: rm {self.library}",
            )
        vp = ctypes.c_void_p
        c = bundle.config
        self.tokens, self.cell = bool(c.vocab_size), c.family != "gru"  # int32 ids in; a cell state (LSTM)
        ret = ctypes.c_int if self.tokens else None  # token models' step/run/run_batch: 0, or -1 for a bad id
        for name, args, rtype in (
            ("reset", [vp], None),
            ("step", [vp, ctypes.c_int32 if self.tokens else vp, vp], ret),
            ("run", [vp, vp, ctypes.c_int, vp], ret),
            ("set_state", [vp, vp, vp], None),
            ("get_state", [vp, vp, vp], None),
        ):
            f = fn(name)
            f.argtypes, f.restype = args, rtype
        self._reset, self._step_fn, self._run_fn = fn("reset"), fn("step"), fn("run")
        self._set, self._get = fn("set_state"), fn("get_state")
        self._batch_fn = self._scratch_fn = None  # NAME_run_batch, where the precision has it
        if hasattr(self.lib, f"{PREFIX}_run_batch"):
            self._batch_fn, self._scratch_fn = fn("run_batch"), fn("run_batch_scratch")
            self._batch_fn.argtypes = [vp, ctypes.c_int, vp, ctypes.c_int, vp, vp]
            self._batch_fn.restype = ret
            self._scratch_fn.argtypes, self._scratch_fn.restype = [ctypes.c_int], ctypes.c_size_t
        # run() takes NAME_run_batch (all rows at once) where the library has it; False: NAME_run per row (the
        # path before it, kept for comparison: benchmarks/c_batch.py times both)
        self.batched = self._batch_fn is not None
        spec = self.source.spec_form  # GRU / token ids: run and stream by named feeds (_run_feeds)
        self.input_range = int8_input_range(bundle) if variant == "int8" and not spec else None
        # NAME_clipped: the C counts what its own conversion clamps, one call (~0.5 µs) where InputRange.clipped's
        # numpy comparisons cost a seed-size step (100 features) ~4 µs of its ~35
        self._clip_fn = fn("clipped") if self.input_range is not None else None
        if self._clip_fn is not None:
            self._clip_fn.argtypes, self._clip_fn.restype = [vp, ctypes.c_long], ctypes.c_long
        self.L, self.H, self.F, self.O = c.num_layers, c.hidden_size, c.input_size, c.output_size
        self.sequence = c.head == "sequence"
        h_type = ctypes.c_float if variant == "fp32" else ctypes.c_int16
        # The C struct, laid out by ctypes with the C ABI's alignment: h[L][H] then c[L][H] (float; an LSTM's).
        fields = [("h", h_type * (self.L * self.H))] + [("c", ctypes.c_float * (self.L * self.H))] * self.cell
        self.State = type("State", (ctypes.Structure,), {"_fields_": fields})

    def version(self) -> str:
        """The compiler and the flags the library was built with (the precision's and the speed flags)."""
        return f"{Path(compiler()).name} {' '.join((*PRECISION_FLAGS[self.source.precision], *self.cflags))}"

    def describe(self) -> dict:
        """Runner.describe plus the library's path and whether it was built now (else taken from the cache)."""
        return super().describe() | {"library": str(self.library), "built_now": self.built}

    def _y_shape(self, B: int, T: int) -> tuple[int, ...]:
        return (B, T, self.O) if self.sequence else (B, self.O)

    def _run(self, x, h0, c0):
        if self.batched and x.shape[0] > 0:
            return self._run_batch(x, h0, c0)
        B, T, _ = x.shape
        state = self.State()
        y = np.zeros(self._y_shape(B, T), np.float32)
        h, c = np.zeros_like(h0), np.zeros_like(c0)
        hb, cb = np.zeros((self.L, self.H), np.float32), np.zeros((self.L, self.H), np.float32)
        ref = ctypes.byref(state)
        for b in range(B):
            hb[...], cb[...] = h0[:, b], c0[:, b]
            self._set(ref, hb.ctypes.data, cb.ctypes.data)
            xb = np.ascontiguousarray(x[b])
            yb = np.zeros(y.shape[1:], np.float32)
            self._run_fn(ref, xb.ctypes.data, T, yb.ctypes.data)
            y[b] = yb
            self._get(ref, hb.ctypes.data, cb.ctypes.data)
            h[:, b], c[:, b] = hb, cb
        return y, h, c

    def _run_batch(self, x, h0, c0):
        """All B rows in one NAME_run_batch call: B state structs and the scratch it asks for, both owned here. x is
        float features [B, T, F], or token ids [B, T] (passed as int32). In fp32 the state structs are one numpy
        array [B, 2 or 1, L, H] (h, then an LSTM's C: the struct's float layout), filled and read by numpy: the
        per-row set_state/get_state calls cost the adding model's B1·T100 run ~8% of its time.

        Raises:
            LstmEdgeError: the C refused a token id (never reached: check_feeds refuses it first, in words).
        """
        B, T = x.shape[:2]
        if self.source.precision == "fp32":
            parts = (h0, c0) if self.cell else (h0,)
            states = np.empty((B, len(parts), self.L, self.H), np.float32)
            for k, a in enumerate(parts):
                states[:, k] = a.transpose(1, 0, 2)
            base = states.ctypes.data
        else:  # int8: set_state / get_state quantize h to the struct's int16
            states = (self.State * B)()
            size, base = ctypes.sizeof(self.State), ctypes.addressof(states)
            hb, cb = np.zeros((self.L, self.H), np.float32), np.zeros((self.L, self.H), np.float32)
            for b in range(B):
                hb[...], cb[...] = h0[:, b], c0[:, b]
                self._set(base + b * size, hb.ctypes.data, cb.ctypes.data)
        scratch = np.empty(self._scratch_fn(B), np.uint8)  # numpy aligns it for float (16 bytes or more)
        xc = np.ascontiguousarray(x, np.int32 if self.tokens else np.float32)
        y = np.empty(self._y_shape(B, T), np.float32)  # the C writes every value
        if self._batch_fn(base, B, xc.ctypes.data, T, y.ctypes.data, scratch.ctypes.data):  # a token model's status
            raise LstmEdgeError("the C refused a token id outside its embedding table", "map unknown tokens first")
        if self.source.precision == "fp32":
            h = np.ascontiguousarray(states[:, 0].transpose(1, 0, 2))
            return y, h, np.ascontiguousarray(states[:, 1].transpose(1, 0, 2)) if self.cell else np.zeros_like(h0)
        h, c = np.zeros_like(h0), np.zeros_like(c0)
        for b in range(B):
            self._get(base + b * size, hb.ctypes.data, cb.ctypes.data)
            h[:, b], c[:, b] = hb, cb
        return y, h, c

    def _run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A GRU or token-id bundle's checked feeds (x [B, T, F] float32 or ids [B, T] int64, h0 and for an LSTM c0,
        each [L, B, H]) through one NAME_run_batch: {y, hn, (cn)} by the bundle's output names.

        Raises:
            LstmEdgeError: the C refused an id (never reached: check_feeds refuses it first, in words).
        """
        x, h0 = feeds[self.source.input_names[0]], feeds[self.source.input_names[1]]
        c0 = feeds[self.source.input_names[2]] if self.cell else np.zeros_like(h0)
        y, h, c = self._run_batch(x, h0, c0)
        names = self.source.output_names
        return dict(zip(names, (y, h, c)[: len(names)], strict=True))

    def stream(self, batch: int = 1) -> Stream:
        """A CStream over one C state struct per batch row (a GRU or token-id bundle: the spec forms' stream over
        NAME_run_batch); raises LstmEdgeError as Runner.stream."""
        s = super().stream(batch)  # the checks; a spec form's stream is already the one it needs
        return s if self.source.spec_form else CStream(self, batch)


class CStream(Stream):
    """One C state struct per batch row; a step of one sample is one ctypes call on fixed buffers."""

    def __init__(self, runner: CRunner, batch: int = 1) -> None:
        super().__init__(runner, batch)
        r = runner
        self._states = (r.State * batch)()
        self._size = ctypes.sizeof(r.State)
        self._base = ctypes.addressof(self._states)
        self._x = np.zeros((batch, r.F), np.float32)
        self._y = np.zeros((batch, 1, r.O) if r.sequence else (batch, r.O), np.float32)
        self._xp, self._yp = self._x.ctypes.data, self._y.ctypes.data
        self._hb, self._cb = np.zeros((r.L, r.H), np.float32), np.zeros((r.L, r.H), np.float32)
        self.reset()

    def reset(self) -> None:
        """Every batch row's state struct back to zeros (the C's own reset)."""
        for b in range(self.batch):
            self.runner._reset(self._base + b * self._size)

    clipped = 0  # values of x the int8 C clipped over this stream's steps (added to its runner's count too)

    def _count_clipped(self, n: int) -> None:
        self.clipped += n
        self.runner.clipped += n

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """x_t: [F] or [B, F] (one step) or [B, K, F] (a chunk); returns y as the other runners do. The int8 C
        counts the values it clips into `clipped`.

        Raises:
            LstmEdgeError: a feature count other than the model's, or a shape or batch other than the stream's.
        """
        r = self.runner
        x_t = np.asarray(x_t, dtype=np.float32)
        if x_t.shape[-1] != r.F:
            raise LstmEdgeError(f"step got {x_t.shape[-1]} features, the model takes {r.F}", "check x_t's last axis")
        if self.batch == 1 and x_t.ndim <= 2 and x_t.size == r.F:  # the device's case: one sample, [F] or [1, F]
            self._x[0] = x_t
            if r._clip_fn is not None:
                self._count_clipped(r._clip_fn(self._xp, r.F))
            r._step_fn(self._base, self._xp, self._yp)
            return self._y.copy()
        if r.input_range is not None:
            self._count_clipped(r.input_range.clipped(x_t))
        if x_t.ndim == 2:
            x_t = x_t[:, None, :]
        if x_t.ndim != 3 or x_t.shape[0] != self.batch:
            raise LstmEdgeError(f"step got shape {x_t.shape}, the stream has batch {self.batch}", "use stream(batch=…)")
        B, K, _ = x_t.shape
        if K == 1:
            np.copyto(self._x, x_t[:, 0])
            for b in range(B):
                r._step_fn(self._base + b * self._size, self._xp + b * 4 * r.F, self._yp + b * 4 * r.O)
            return self._y.copy()
        y = np.zeros(r._y_shape(B, K), np.float32)
        for b in range(B):
            xb, yb = np.ascontiguousarray(x_t[b]), np.zeros(y.shape[1:], np.float32)
            r._run_fn(self._base + b * self._size, xb.ctypes.data, K, yb.ctypes.data)
            y[b] = yb
        return y

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(h, c), each [L, B, H] float32, read from the C state structs (fresh arrays)."""
        r = self.runner
        h, c = np.zeros(self.state_shape, np.float32), np.zeros(self.state_shape, np.float32)
        for b in range(self.batch):
            r._get(self._base + b * self._size, self._hb.ctypes.data, self._cb.ctypes.data)
            h[:, b], c[:, b] = self._hb, self._cb
        return h, c

    @state.setter
    def state(self, value: tuple[np.ndarray, np.ndarray]) -> None:
        """Write (h, c), each [L, B, H], into the C state structs; raises LstmEdgeError for other shapes."""
        h, c = (np.array(a, dtype=np.float32) for a in value)
        if h.shape != self.state_shape or c.shape != self.state_shape:
            raise LstmEdgeError(
                f"state shapes {h.shape}/{c.shape}, expected {self.state_shape}", "use a state from this stream"
            )
        for b in range(self.batch):
            self._hb[...], self._cb[...] = h[:, b], c[:, b]
            self.runner._set(self._base + b * self._size, self._hb.ctypes.data, self._cb.ctypes.data)

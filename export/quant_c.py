"""The int8 C's own error profile, recorded beside ORT's on the int8 variant (QuantizeReport.c_error_profile).

The `c` runtime serves the variant name int8 with its own scheme (lstm_edge.codegen: int8 weights and recurrence,
int16 h), not with ORT's model.int8.onnx, so ORT's recorded bound does not describe it. For a GRU the two differ by
orders of magnitude: ORT has no int8 GRU kernel, its int8 quantizes the head alone and records ~1e-7, where the int8
C's recurrence is ~1e-3 from float64 (measured on tests/test_codegen_gru.py's Kws). quantize measures the C with the
same probes and the same code as ORT's variant, behind ORT's session interface so error_growth cannot tell them
apart: the C itself, compiled as the c runtime compiles it (CompiledInt8Session), where a C compiler is found; its
bit-exact simulation (codegen.simulate_int8, equal to the C to the last bit: tolerances.C_INT8_VS_SIM) where none
is. The report records which (QuantizeReport.c_measured_with). Both give the same profile to the last bit (the
seed's recorded profile is byte-identical either way); the compiled C is the fast one: at the seed size (input 100,
hidden 256, 2 layers) the simulation took 11.2 s of quantize's 26.9 s (cProfile, 2-core machine at load ~1.1), the
compiled C's runs 0.6 s, its compile (1.7-2.6 s of one core, cc1 parsing the 890k weight literals) hidden behind
the other variants' measurement (CInt8Profile).

The streamed probe is left out for the C: one call per step equals one call for the whole sequence bit for bit (h
leaves as h_q / 32767 and re-enters as the same int16, c as the same float32; tests/test_codegen_gru.py holds it on
a GRU and the shipped LSTM), and the simulation's cost is per step: tests/test_codegen_gru.py's Kws GRU took 5.4 s
of CPU with the streamed probe, 3.7 s without it.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

from lstm_edge.bundle import Bundle
from lstm_edge.c_support import DEFAULT_CFLAGS, PRECISION_FLAGS, bundle_sha256, compile_library
from lstm_edge.codegen import int8_library, int8_scheme, simulate_int8
from lstm_edge.codegen.weights import ModelWeights
from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError

PREFIX = "lemq"  # the C prefix of the library quantize compiles (lemq_run_batch, …); never cached, never shipped
# The compiled C runs its rows in threads of at least this many: at the seed size quantize's probes are 16 rows at
# T = 1000 and 64 up to T = 100, two threads of 8 rows on a 2-core machine; fewer rows per call would lose the batch
# kernels' reuse of each weight row across rows.
ROWS_PER_THREAD = 8
SIMULATED = "simulation (lstm_edge.codegen.simulate_int8, bit for bit the C)"


@dataclass(frozen=True)
class _Input:
    """What ORT's NodeArg says of an input and error_growth reads: its name."""

    name: str


class _Int8Session:
    """ORT's session interface over the int8 C (error_growth reads get_inputs() and calls run())."""

    def __init__(self, config: ModelConfig):
        self.input_names, self.output_names = tuple(config.input_names), tuple(config.output_names)

    def get_inputs(self) -> list[_Input]:
        """The inputs it takes, as ORT lists them (quant_measure.takes reads their names)."""
        return [_Input(n) for n in self.input_names]

    def _feeds(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """x, h0 and (an LSTM's) c0 from the feeds, contiguous; c0 None for a GRU."""
        x, h0 = (np.ascontiguousarray(feeds[n]) for n in self.input_names[:2])
        c0 = np.ascontiguousarray(feeds[self.input_names[2]]) if len(self.input_names) > 2 else None
        return x, h0, c0


class CInt8Session(_Int8Session):
    """The int8 C as a session: run(names, feeds) → its outputs in `names` order, from the bit-exact simulation.

    feeds: x [B, T, F] float32 (token ids [B, T] int64 for a token model), h0 and for an LSTM c0 [L, B, H] float32,
    by the bundle's input names. A call starts from the state it is fed, as the c runtime's calls do: h enters as
    q16(h · 32767) and leaves as h_q / 32767, which round-trip to the same int16, so one call per step equals one
    call for the whole sequence.
    """

    def __init__(self, params, embedding: np.ndarray | None, config: ModelConfig):
        super().__init__(config)
        self.params, self.embedding = params, embedding

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The simulated C's outputs named in `names` (y, hn and for an LSTM cn) for `feeds`."""
        x, h0, c0 = self._feeds(feeds)
        got = dict(zip(self.output_names, simulate_int8(self.params, x, h0, c0, self.embedding), strict=False))
        return [got[n] for n in names]


class CompiledInt8Session(_Int8Session):
    """The int8 C compiled (its NAME_run_batch through ctypes) as a session: run(names, feeds) as CInt8Session's,
    equal to it bit for bit. Each call gives every batch row its own state struct, set from h0 (and c0) by the C's
    own set_state and read back by its get_state, as the c runtime's run does (runtimes/c_runner.py).

    library: the compiled int8 C (PREFIX's functions); config: the bundle's, for its names, sizes and head.
    Raises OSError where the library cannot be loaded.
    """

    def __init__(self, library: Path, config: ModelConfig):
        super().__init__(config)
        self.lib = ctypes.CDLL(str(library))
        vp = ctypes.c_void_p
        fn = lambda name: getattr(self.lib, f"{PREFIX}_{name}")  # noqa: E731
        self._set, self._get = fn("set_state"), fn("get_state")
        self._set.argtypes = self._get.argtypes = [vp, vp, vp]
        self._set.restype = self._get.restype = None
        self.tokens, self.cell = bool(config.vocab_size), config.family != "gru"
        self._batch, self._scratch = fn("run_batch"), fn("run_batch_scratch")
        self._batch.argtypes = [vp, ctypes.c_int, vp, ctypes.c_int, vp, vp]
        self._batch.restype = ctypes.c_int if self.tokens else None  # a token model's: 0, or -1 for a bad id
        self._scratch.argtypes, self._scratch.restype = [ctypes.c_int], ctypes.c_size_t
        self.L, self.H, self.O, self.sequence = (
            config.num_layers, config.hidden_size, config.output_size, config.head == "sequence"
        )  # fmt: skip
        # The C struct as ctypes lays it out with the C ABI's alignment: int16 h[L][H], then an LSTM's float c[L][H].
        fields = [("h", ctypes.c_int16 * (self.L * self.H))] + [("c", ctypes.c_float * (self.L * self.H))] * self.cell
        self.State = type("State", (ctypes.Structure,), {"_fields_": fields})

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The compiled C's outputs named in `names` (y [B, T, O] or [B, O] by the head, hn and for an LSTM cn
        [L, B, H], float32) for `feeds` (CInt8Session's). The rows run in up to one thread per CPU, at least
        ROWS_PER_THREAD rows each (ctypes lets go of the GIL in the C; the rows are independent and the C has no
        mutable globals), so a row's outputs are what one call gives it. Raises LstmEdgeError where the C refuses a
        token id."""
        x, h0, c0 = self._feeds(feeds)
        B, T = x.shape[:2]
        c0 = np.zeros_like(h0) if c0 is None else c0  # a GRU's set_state/get_state ignore it
        x = np.ascontiguousarray(x, np.int32 if self.tokens else np.float32)
        y = np.empty((B, T, self.O) if self.sequence else (B, self.O), np.float32)  # the C writes every value
        h, c = np.empty_like(h0), np.empty_like(c0)
        k = max(1, min(os.cpu_count() or 1, B // ROWS_PER_THREAD))
        cuts = [B * i // k for i in range(k + 1)]
        rows = [(x[a:b], h0[:, a:b], c0[:, a:b], y[a:b], h[:, a:b], c[:, a:b]) for a, b in pairwise(cuts)]
        if k == 1:
            self._rows(*rows[0])
        else:
            with ThreadPoolExecutor(k) as pool:
                list(pool.map(lambda r: self._rows(*r), rows))  # list(): re-raises a thread's error here
        got = dict(zip(self.output_names, (y, h, c), strict=False))
        return [got[n] for n in names]

    def _rows(self, x, h0, c0, y, h, c) -> None:
        """One NAME_run_batch over rows x [b, T, F] (contiguous) from h0/c0 [L, b, H], into y (a contiguous view of
        the caller's) and h/c [L, b, H] (views): each row its own state struct, set and read by the C's own
        set_state/get_state. Raises LstmEdgeError where the C refuses a token id."""
        B = x.shape[0]
        states, size = (self.State * B)(), ctypes.sizeof(self.State)
        base = ctypes.addressof(states)
        hb, cb = np.empty((self.L, self.H), np.float32), np.empty((self.L, self.H), np.float32)
        for b in range(B):
            hb[...], cb[...] = h0[:, b], c0[:, b]
            self._set(base + b * size, hb.ctypes.data, cb.ctypes.data)
        scratch = np.empty(self._scratch(B), np.uint8)  # numpy aligns it for float (16 bytes or more)
        if self._batch(base, B, x.ctypes.data, x.shape[1], y.ctypes.data, scratch.ctypes.data):
            raise LstmEdgeError("the int8 C refused a token id outside its embedding table", "map unknown tokens first")
        for b in range(B):
            self._get(base + b * size, hb.ctypes.data, cb.ctypes.data)
            h[:, b], c[:, b] = hb, cb


def _scheme(bundle: Bundle, int8_settings: dict | None) -> tuple | None:
    """(params, weights) of the int8 C that will be built for `bundle` with `int8_settings` (the int8 variant's
    report settings, not yet in the manifest: the input range); None for a model the C cannot express (the c runtime
    refuses it in its own line, so it needs no bound)."""
    try:
        return int8_scheme(bundle, int8_settings, verify_hash=False)  # quantize checked the fp32 graph
    except LstmEdgeError:  # bidirectional, lengths, projection, no Linear head…: codegen.weights.read_weights says
        return None


def c_int8_session(bundle: Bundle, int8_settings: dict | None) -> CInt8Session | None:
    """The int8 C of `bundle` as a CInt8Session (its simulation), with the input range the C will be built with
    (`int8_settings`, as _scheme's); None for a model the C cannot express."""
    scheme = _scheme(bundle, int8_settings)
    return None if scheme is None else CInt8Session(scheme[0], scheme[1].embedding, bundle.config)


def compiled_int8_session(bundle: Bundle, params, weights: ModelWeights, tmp: Path) -> tuple[CompiledInt8Session, str]:
    """The int8 C for constants `params` (and `weights`' form), compiled into the folder `tmp` with the c runtime's
    compiler and flags (c_support: BASE_FLAGS, the int8 precision's, DEFAULT_CFLAGS), as a CompiledInt8Session,
    and the words for what measured it ("compiled C (cc -O3 …)").

    Raises:
        LstmEdgeError: no C compiler, or it failed on the generated C (c_support.compile_library).
    """
    files = int8_library(params, weights, PREFIX, f"quantize of {bundle_sha256(bundle)}")
    library = tmp / f"lib{PREFIX}.so"
    cmd = compile_library(files, library, "int8", DEFAULT_CFLAGS)
    flags = " ".join((*PRECISION_FLAGS["int8"], *DEFAULT_CFLAGS))
    return CompiledInt8Session(library, bundle.config), f"compiled C ({Path(cmd[0]).name} {flags})"


class CInt8Profile:
    """The int8 C's error profile (c_error_profile) in two steps, so that the C compiles while quantize does other
    work: constructing it starts the compile in a background thread (compiled_int8_session: a subprocess, so the GIL
    is free), measure() waits for it and measures. quantize starts it once its probes' references are made (the
    compile then shares the CPUs with ORT's single-threaded runs of the other variants, never with torch's
    two-thread pool, which slows many times over when a core is taken) and measures after the last variant.
    A context manager: leaving it waits for the compile and removes its folder.

    bundle: the bundle being quantized; int8_settings: the int8 variant's report settings (its input range), not yet
    in the manifest. Raises nothing of its own: a model the C cannot express measures as {}.
    """

    def __init__(self, bundle: Bundle, int8_settings: dict | None):
        self.bundle, self.scheme = bundle, _scheme(bundle, int8_settings)
        self._tmp = self._pool = self._build = None
        if self.scheme is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lstm-edge-quant-c-", ignore_cleanup_errors=True)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="lstm-edge-quant-c")
            self._build = self._pool.submit(compiled_int8_session, bundle, *self.scheme, Path(self._tmp.name))

    def measure(self, growth) -> tuple[dict[str, dict[str, float]], str]:
        """The profile as c_error_profile returns it, measured by `growth` (c_error_profile's). Raises what `growth`
        raises."""
        if self.scheme is None:
            return {}, ""
        params, weights = self.scheme
        try:
            compiled, measured_with = self._build.result()
        except LstmEdgeError as e:  # no compiler (or it failed): the simulation gives the same numbers, slower
            compiled, measured_with = None, f"{SIMULATED}; {e.problem}"
        if compiled is not None:
            return growth(compiled)[1], measured_with
        session = CInt8Session(params, weights.embedding, self.bundle.config)
        # One torch thread: the simulation is a few small ops per step, which a second thread only slows down — the
        # shipped model's 16 sequences of T=1000 took 22.6 s of CPU with torch's default 2 threads, 2.8 s with one
        # (2-core machine at load ~7).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return growth(session)[1], measured_with
        finally:
            torch.set_num_threads(threads)

    def close(self) -> None:
        """Wait for the compile (if any) and remove its folder. Raises nothing of its own."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._tmp.cleanup()
            self._pool = None

    def __enter__(self) -> CInt8Profile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def c_error_profile(bundle: Bundle, int8_settings: dict, growth) -> tuple[dict[str, dict[str, float]], str]:
    """The int8 C's error profile: per T (quant_measure.ERROR_VS_T), per output, its max scaled error
    |Δ| / max(1, |ref|) against the variant's reference (float64 where ORT's profile is), measured by `growth` — the
    error_growth that measured ORT's variant, bound to its probes: session → (max |Δ| against fp32, profile).
    CInt8Profile is the same in two steps (compile in the background, measure later).

    The C is compiled and run where a C compiler is found (compiled_int8_session), else simulated bit for bit
    (CInt8Session); both give the same profile. A compile that fails falls back to the simulation too, saying why:
    the bound is the scheme's either way, and the c runtime names the compile failure itself when it builds.

    Returns:
        (profile, what measured it: "compiled C (cc …)" or "simulation …"); ({}, "") for a model the C cannot
        express.

    Raises what `growth` raises.
    """
    with CInt8Profile(bundle, int8_settings) as profile:
        return profile.measure(growth)

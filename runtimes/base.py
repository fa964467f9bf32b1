"""The one runner interface: run(x, state) -> (y, (h, c)) on numpy arrays, stream() for one step at a time.

RunnerOptions is every setting a runner may be asked for; Runner is the base each runtime adapter subclasses. What a
runner opens (Source, resolve) lives in runtimes.source, the input checks in runtimes.checks, streams in
runtimes.stream, and each runtime's facts in runtimes.registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from lstm_edge.errors import LstmEdgeError
from lstm_edge.forms import stream_refusal
from lstm_edge.forms.fallback import stateless_reason
from lstm_edge.limits import check_run_memory
from lstm_edge.runtimes.checks import InputRange, check_feeds, check_state, check_steps, check_x, stateless_feeds
from lstm_edge.runtimes.registry import NOT_FIXED_BY_REBUILD, RUNS_CORRECTLY, RUNTIME_LIMITS
from lstm_edge.runtimes.source import Source
from lstm_edge.runtimes.stream import Binding, SpecStream, Stream

Arrays = tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]


class RunResult(tuple):
    """What `Runner.run` returns: the pair (y, (h, c)) — unpack it as before — plus `clipped`, how many values of x
    the variant clipped to its recorded input range (Runner.input_range; 0 where the variant clips nothing)."""

    clipped: int

    def __new__(cls, y, state, clipped: int = 0) -> RunResult:
        """(y, state) as a tuple carrying `clipped`."""
        result = super().__new__(cls, (y, state))
        result.clipped = clipped
        return result


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
    cflags: tuple[str, ...] | None = None  # c: compiler flags for speed (None: -O3 -march=native)
    self_check: bool = False  # run the golden cases before answering (runtimes.self_check); lstm_edge.load: True


class Runner(ABC):
    """Base of every runtime adapter (Polygraphy's BaseRunner, without the activation ceremony).

    Subclasses implement `_run` and `version`; they may override the hooks that streams call: `run_chunk` (a chunk
    with state carried), `bind_step` (fixed buffers for the one-step streaming path) and `infer` (named feeds). Every
    public method checks its inputs here, once, so an adapter never sees a wrong dtype, shape or a NaN unless
    `RunnerOptions.allow_nonfinite` lets it through. Each runtime's facts (runtime name, refusals) are its entry in
    runtimes.registry.
    """

    runtime: str = "?"
    self_checked: str = "skipped"  # describe()["self_check"]: passed | cached | skipped | unavailable
    state_dtype = np.float32  # what a stream keeps h and c in between steps
    # A variant whose arithmetic clips x to a range recorded when it was built (the int8 C) sets this; run counts
    # the clipped values into RunResult.clipped and `clipped`, the total over this runner's calls.
    input_range: InputRange | None = None
    clipped: int = 0

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        self.source = source
        self.options = options
        self._lock = threading.Lock()  # runtimes are thread-safe for run; our buffers (streaming) are not
        self._planned: set[tuple[int, ...]] = set()  # x shapes whose memory plan passed (_zero_state)
        self._zeros: dict[int, np.ndarray] = {}  # batch size → [L, B, H] zeros, read by runners, never written
        self._check_limits()

    def _check_limits(self) -> None:
        """Refuse, in one line, a model carrying a recurrent-node feature this runtime rejects or computes wrongly
        (measured: each runtime's refusals in lstm_edge.runtimes.registry), before the runtime sees it."""
        for trait, nodes in self.source.traits.items():
            limit = RUNTIME_LIMITS.get(trait, {}).get(self.runtime)
            if limit:
                right = RUNS_CORRECTLY.get(trait)
                raise LstmEdgeError(
                    f"{self.source.path.name}: node {nodes[0]!r}: {limit}",
                    (f"run it on {right}" if right else "use --provider cpu")
                    + (
                        ""
                        if trait in NOT_FIXED_BY_REBUILD
                        else ", or re-export it clean with lstm-edge import MODEL --out BUNDLE --rebuild"
                    ),
                )

    # ---- the public contract -------------------------------------------------------------------------
    def run(
        self, x: np.ndarray, state: tuple[np.ndarray, ...] | None = None, lengths: np.ndarray | None = None
    ) -> Arrays:
        """Run whole sequences from an initial state.

        Args:
            x: [B, T, F] float32 (float64 is converted; integers are refused): B sequences of T steps with F
                features each, in the units the model was trained on (the bundle's normalization is inside it).
            state: (h0, c0), each [L, B, H] float32 (L layers, H hidden units); None starts from zeros.
            lengths: [B] integers in 1..T, for a bundle exported with variable lengths (PyTorch's packed
                semantics: outputs past a sequence's length are zero, its final state is the one at its last
                valid step); None means every sequence is T long.

            Other ModelSpec forms (SEAMS item 4): a GRU's state is (h0,); bidirectional and projected models'
            states are [L·D, B, H_out] (c stays [L·D, B, H]); a time-major model takes x [T, B, F]; a token model
            takes int64 ids [B, T] (or [T, B]) in 0..vocab_size-1.

        Returns:
            (y, (h, c)), a RunResult: y is the head's output, [B, O] for a last-step head or [B, T, O] for a
            sequence head; h and c are the final states, [L, B, H] float32 (float64 for the torch runner with
            float64=True). Its `clipped` counts the values of x outside the variant's recorded input range.

        A bare .onnx (no manifest) is fed by role instead: x and the state go to the inputs playing those roles in
        the model's own layout (runtimes.signature); its state tuple is (hn, cn), or (hn,) for a GRU.

        Raises:
            LstmEdgeError: x or the state has the wrong rank, shape, feature count or dtype, is empty, or holds
                NaN/Inf (unless `allow_nonfinite`); or the runtime itself fails (tract names its error).
        """
        if self.source.signature is not None:  # a bare .onnx: fed by name, whatever its names and layout
            return RunResult(*self._run_by_roles(x, state))
        if self.source.spec_form:
            feeds = self.check_feeds(x, state, lengths)
            if self.source.bundle is not None and not self.source.bundle.stateful:  # the user's forward, whole:
                feeds = stateless_feeds(self.source.config, feeds, state)  # x (and lengths) alone, from zero state
            outs = self.infer(feeds)
            t = 1 if self.source.config.batch_first else 0
            check_steps("y", outs[0], t, feeds["x"].shape[t])
            return RunResult(outs[0], tuple(outs[1:]))
        if lengths is not None:
            raise LstmEdgeError("this model takes no lengths", "drop lengths, or export the model with lengths")
        if state is not None and self.source.bundle is not None and not self.source.bundle.stateful:
            stateless_feeds(self.source.config, {}, state)  # a non-zero state would be dropped: refused instead
            state = None
        if state is None:  # zero state: one pair of zeros per batch size, reused (fresh ones cost ORT ~10 µs a call)
            x = check_x(x, self.source.input_size, not self.options.allow_nonfinite)
            h0 = c0 = self._zero_state(x.shape)
        else:
            x, h0, c0 = self.check_inputs(x, state)
        y, h, c = self._run(x, h0, c0)
        check_steps("y", y, 1, x.shape[1])
        if h is h0 or c is c0:  # a stateless graph hands back the state it was given: never the shared zeros
            h, c = h.copy(), c.copy()
        clipped = self.input_range.clipped(x) if self.input_range is not None else 0
        self.clipped += clipped
        return RunResult(y, (h, c), clipped)

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a bare .onnx by its own names: {input name: array} → {output name: array}.

        Every declared input must be given except a recognised state (zeros) or lengths input (the full T); each is
        checked against its declaration (rank, dtype, fixed dims, shared symbolic dims) before the runtime sees it,
        and each output against the symbolic dims the inputs bound (a time axis frozen by tracing is reported, not
        returned short). Raises LstmEdgeError, one line, for any mismatch or a runtime failure."""
        sig = self.source.signature
        if sig is None:
            raise LstmEdgeError("run_feeds runs a bare .onnx; a bundle runs with run(x, state)", "use run()")
        bound = sig.bind(feeds, self.options.allow_nonfinite)
        outs = self._run_feeds(bound)
        sig.check_outputs(bound, outs)
        return outs

    def _run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise LstmEdgeError(f"the {self.runtime} runner runs bundles only", "use --provider cpu for a bare .onnx")

    def _run_by_roles(self, x, state) -> Arrays:
        """run(x, state) on a bare .onnx: x and the state fed to the inputs playing those roles."""
        sig = self.source.signature
        xp, h0p, c0p = (sig.port(r) for r in ("x", "h0", "c0"))
        if xp is None:
            raise LstmEdgeError(
                "no input of the model is recognisably x (" + ", ".join(p.describe() for p in sig.inputs) + ")",
                "feed it by name: run_feeds({name: array}) or --input-name NAME=FILE",
            )
        feeds = {xp.name: x}
        if state is not None:
            if h0p is None:
                raise LstmEdgeError(
                    "the model's state is not a graph input, so no initial state can be given",
                    "run from zero state (state=None), or re-export with state I/O: lstm-edge import MODEL.onnx --out BUNDLE --rebuild",
                )
            feeds[h0p.name] = state[0]
            if c0p is not None and len(state) > 1:
                feeds[c0p.name] = state[1]
        outs = self.run_feeds(feeds)
        y, hn, cn = (sig.port(r) for r in ("y", "hn", "cn"))
        y = y or next(o for o in sig.outputs if o not in (hn, cn))
        h = outs[hn.name] if hn is not None else None
        return outs[y.name], ((h,) if c0p is None and h0p is not None else (h, outs[cn.name] if cn else None))

    def stream(self, batch: int = 1) -> Stream:
        """A stateful stream over this runner for `batch` parallel sequences, starting from zero state.

        Returns:
            A Stream: `step(x_t)` one step (or a chunk) at a time, `feed(x, chunk)`, `state`, `reset()`,
            `freeze()`/`unfreeze()`. Streams share the runner's session but not their buffers: one per thread.

        Raises:
            LstmEdgeError: the bundle is stateless (manifest `streaming: false`), the model has no state
                inputs/outputs, or batch < 1.
        """
        sig = self.source.signature
        if sig is not None and not sig.stateful:
            raise LstmEdgeError(
                f"{self.source.path.name}'s state is not a graph input/output (lint: missing-state-input), so it "
                "cannot be carried between calls and the model cannot stream",
                "run whole sequences (drop --stream), or re-export it with state I/O: lstm-edge import MODEL.onnx --out BUNDLE --rebuild",
            )
        if sig is not None and sig.x_time != 1:
            raise LstmEdgeError(
                f"{self.source.path.name} takes x time-major ([T, B, F]); streaming steps batch-first x",
                "import it into a bundle first (lstm-edge import MODEL.onnx --out BUNDLE), which wraps it batch-first",
            )
        fixed = sig.fixed_steps() if sig is not None else None
        if fixed is not None:
            raise LstmEdgeError(
                f"{fixed[0]} has its time axis fixed at {fixed[1]} steps (the model was traced, or unrolled, at that "
                "length), so it cannot stream one step at a time",
                f"run whole sequences of {fixed[1]} steps without --stream, or re-export it with a dynamic time axis",
            )
        if sig is not None and (self.source.num_layers is None or self.source.hidden_size is None):
            h0 = sig.port("h0")
            raise LstmEdgeError(
                f"streaming carries the state as [layers, batch, hidden]; {self.source.path.name} declares "
                f"{h0.describe() if h0 else 'no state input'}",
                "import it into a bundle first: lstm-edge import MODEL.onnx --out BUNDLE",
            )
        if sig is not None and len(self.source.input_names) != 3:
            raise LstmEdgeError(
                f"streaming a bare .onnx needs inputs x, h0, c0 alone; it takes {', '.join(self.source.input_names)}",
                "import it into a bundle first: lstm-edge import MODEL.onnx --out BUNDLE",
            )
        if self.source.bundle is not None and not self.source.bundle.stateful:
            imported = self.source.bundle.manifest.get("reference", {}).get("kind") == "onnx-float64"
            raise LstmEdgeError(
                stateless_reason(self.source.bundle.manifest),  # the fallback route's (or a stateless import's)
                "run whole sequences without --stream / stream()"
                + (
                    "; an imported model can be re-exported with state I/O: lstm-edge import MODEL.onnx --out BUNDLE "
                    "--rebuild"
                    if imported  # an export of the user's own forward has no ONNX to rebuild from
                    else ""
                ),
            )
        if not self.source.has_state:
            raise LstmEdgeError(
                "this model has no state inputs/outputs, so it cannot stream",
                "run whole sequences, or re-export it with state I/O (lstm-edge import MODEL.onnx --out BUNDLE --rebuild)",
            )
        if batch < 1:
            raise LstmEdgeError(f"stream batch {batch}", "use batch ≥ 1")
        c = self.source.config
        why = stream_refusal(c) if c is not None else None  # lstm_edge.forms: a bidirectional model's reason
        if why:
            raise LstmEdgeError(why, "run whole sequences with run()")
        if self.source.spec_form:
            return SpecStream(self, batch)
        return Stream(self, batch)

    def describe(self) -> dict:
        """What is running, for reports: runtime, version, device ("cpu", "cuda:0"), precision (fp32/int8/fp16),
        variant, threads ("default" = the runtime's own choice), the model path and self_check (runtimes.self_check); adapters add their own keys
        (ORT: providers, graph_optimization; OpenVINO: inference_precision; torch: recurrent)."""
        return {
            "runtime": self.runtime,
            "version": self.version(),
            "device": self.device(),
            "precision": self.source.precision,
            "variant": self.source.variant,
            "threads": self.options.threads or "default",
            "model": str(self.source.path),
            "self_check": self.self_checked,
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

    def run_chunk(self, x_t: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The streaming hook for a chunk [B, K, F] with state (h, c) carried, inputs already checked by the stream:
        (y, h, c) after it. Adapters may override it; by default it is `_run`."""
        return self._run(x_t, h, c)

    def bind_step(self, x: np.ndarray, states: tuple[tuple[np.ndarray, ...], ...]) -> Binding | None:
        """The streaming hook: bind one step to fixed buffers, or None to stream through `run_chunk`.

        x is the stream's [B, 1, F] float32 input buffer (the stream copies each checked x_t into it); states are
        two (h, c) pairs of [L, B, H] host buffers. The binding's `step(k)` reads pair k, writes pair 1 - k, and
        returns a fresh y. Alternating two pairs is what lets a runtime read and write state without a copy.
        """
        return None

    def infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph on checked feeds named as `source.input_names`; outputs in `source.output_names` order
        (the path of every ModelSpec form but the seed's), through the adapter's one named-feeds call.

        Raises:
            LstmEdgeError: the runtime fails, or the adapter runs bundles in the seed's form only."""
        outs = self._run_feeds(feeds)
        return [outs[name] for name in self.source.output_names]

    # ---- input checks (one clear line each) -----------------------------------------------------------
    def check_feeds(self, x, state=None, lengths=None) -> dict[str, np.ndarray]:
        """The named, checked feeds of a bundle in any ModelSpec form (zeros for a missing state, full lengths for
        missing lengths). Raises LstmEdgeError, one line each: x's dtype/rank/features/NaN, a token id outside the
        embedding table, lengths outside 1..T, a state of the wrong count or shape."""
        return check_feeds(self.source.config, x, state, lengths, not self.options.allow_nonfinite, self.state_dtype)

    def _zero_state(self, shape: tuple[int, ...]) -> np.ndarray:
        """[L, B, H] float32 zeros for x of `shape`, after the memory plan for it (checks.check_run_memory), both
        decided once per batch size and shape; runners only read their inputs, so one array serves h0 and c0."""
        B, L, H = shape[0], self.source.num_layers, self.source.hidden_size
        if shape not in self._planned:
            check_run_memory(shape, L, H)
            if len(self._planned) > 64:  # a bounded memo: a stream of ever-new shapes re-plans, never grows
                self._planned.clear()
            self._planned.add(shape)
        zeros = self._zeros.get(B)
        if zeros is None:
            if L is None or H is None:
                raise LstmEdgeError("the model's state size is not declared", "pass state=(h0, c0) explicitly")
            zeros = self._zeros[B] = np.zeros((L, B, H), np.float32)
            if len(self._zeros) > 8:
                self._zeros = {B: zeros}
        return zeros

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

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
from lstm_edge.config import INPUT_NAMES, OUTPUT_NAMES, ModelConfig, is_seed_form
from lstm_edge.config import LENGTHS as LENGTHS_NAME
from lstm_edge.config import X as X_NAME
from lstm_edge.errors import LstmEdgeError
from lstm_edge.forms import FORMS, stream_refusal
from lstm_edge.limits import check_run_memory
from lstm_edge.runtimes.signature import Signature

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
    cflags: tuple[str, ...] | None = None  # c: compiler flags for speed (None: -O3 -march=native)


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
    # A bare .onnx: its declared inputs/outputs with their roles, fed by name (runtimes.signature).
    signature: Signature | None = None
    # Recurrent-node features some runtimes reject or miscompute (onnx_io.recurrent_traits): {trait: [nodes]}.
    traits: dict[str, list[str]] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig | None:
        """The bundle's ModelConfig, or None for a bare .onnx."""
        return self.bundle.config if self.bundle else None

    @property
    def has_state(self) -> bool:
        """Whether the graph takes and returns its state ((h, c) for an LSTM, h for a GRU bundle), i.e. can stream."""
        if self.config is not None:
            return True
        return len(self.input_names) >= 3 and len(self.output_names) >= 3

    @property
    def spec_form(self) -> bool:
        """A bundle in any form but the seed's (GRU, bidirectional, time-major, tokens, lengths, projection): run
        and stream go through named feeds (`Runner._infer`) instead of the seed's (x, h0, c0) fast path."""
        return self.config is not None and not (
            is_seed_form(self.config) and self.config.state_size == self.hidden_size
        )


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
        traits = {}
        if onnx_path.suffix == ".onnx":
            from lstm_edge.onnx_io import load_onnx_checked, read_onnx_io, recurrent_traits

            proto = load_onnx_checked(onnx_path)  # refuses external data that points outside the bundle
            _check_declared(onnx_path, dict(read_onnx_io(onnx_path, proto)[0]), c)
            traits = recurrent_traits(proto)
        precision = bundle.entry(variant).get("precision", variant)
        io = bundle.manifest.get("io")  # an imported or fallback-exported stateless model takes x alone
        return Source(
            onnx_path,
            bundle,
            variant,
            precision,
            input_names=_io_names(io, "inputs", c.input_names),
            output_names=_io_names(io, "outputs", c.output_names),
            input_size=c.input_size,
            num_layers=c.num_layers,
            hidden_size=c.hidden_size,
            traits=traits,
        )
    if not path.exists():
        raise LstmEdgeError(f"model not found: {path}", "pass a bundle folder or a .onnx file")
    if path.suffix != ".onnx":
        raise LstmEdgeError(f"{path} is neither a bundle folder nor a .onnx file", "export it first: lstm-edge export")
    if variant != "fp32":
        raise LstmEdgeError(f"--variant {variant} needs a bundle; a bare .onnx is run as it is", "drop --variant")
    return _bare_onnx(path)


def _io_names(io, key: str, default: tuple[str, ...]) -> list[str]:
    """Names from the manifest's I/O spec (bundles before it, or a malformed one: the config's contract)."""
    items = io.get(key) if isinstance(io, dict) else None
    names = [i.get("name") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return names if names and all(isinstance(n, str) for n in names) else list(default)


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
    """A .onnx without a manifest: every declared input and output by name, with the roles runtimes.signature
    recognises; input_names in role order (x, h0, c0) where the model follows that contract."""
    from lstm_edge.onnx_io import load_onnx_checked, read_onnx_io, recurrent_traits
    from lstm_edge.runtimes.signature import Signature

    model = load_onnx_checked(path)
    read_onnx_io(path, model)  # refuses a fixed dim over limits.MAX_MODEL_DIM before anything is allocated
    sig = Signature.from_model(model)
    if not sig.inputs:
        raise LstmEdgeError(f"{path} declares no inputs", "re-export the model")
    roles = [sig.port(r) for r in ("x", "h0", "c0")]
    outs = [sig.port(r) for r in ("y", "hn", "cn")]
    ordered = all(roles) and all(outs) and len(sig.inputs) == 3
    x, h0 = roles[0], roles[1]
    dims = lambda d: d if isinstance(d, int) and d > 0 else None  # noqa: E731
    return Source(
        path,
        None,
        "fp32",
        "fp32",
        input_names=[p.name for p in roles] if ordered else [p.name for p in sig.inputs],
        output_names=[p.name for p in outs] if ordered else [p.name for p in sig.outputs],
        input_size=dims(x.dims[-1]) if x is not None and x.dims else None,
        num_layers=dims(h0.dims[0]) if h0 is not None and h0.dims and len(h0.dims) == 3 else None,
        hidden_size=dims(h0.dims[2]) if h0 is not None and h0.dims and len(h0.dims) == 3 else None,
        signature=sig,
        traits=recurrent_traits(model),
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
        self._check_limits()

    def _check_limits(self) -> None:
        """Refuse, in one line, a model carrying a recurrent-node feature this runtime rejects or computes wrongly
        (measured: lstm_edge.onnx_io.RUNTIME_LIMITS), before the runtime sees it."""
        from lstm_edge.onnx_io import RUNS_CORRECTLY, RUNTIME_LIMITS

        for trait, nodes in self.source.traits.items():
            limit = RUNTIME_LIMITS.get(trait, {}).get(self.runtime)
            if limit:
                right = RUNS_CORRECTLY.get(trait)
                raise LstmEdgeError(
                    f"{self.source.path.name}: node {nodes[0]!r}: {limit}",
                    (f"run it on {right}" if right else "use --provider cpu")
                    + ", or re-export it clean with lstm-edge import MODEL --out BUNDLE --rebuild",
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
            (y, (h, c)): y is the head's output, [B, O] for a last-step head or [B, T, O] for a sequence head;
            h and c are the final states, [L, B, H] float32 (float64 for the torch runner with float64=True).

        A bare .onnx (no manifest) is fed by role instead: x and the state go to the inputs playing those roles in
        the model's own layout (runtimes.signature); its state tuple is (hn, cn), or (hn,) for a GRU.

        Raises:
            LstmEdgeError: x or the state has the wrong rank, shape, feature count or dtype, is empty, or holds
                NaN/Inf (unless `allow_nonfinite`); or the runtime itself fails (tract names its error).
        """
        if self.source.signature is not None:  # a bare .onnx: fed by name, whatever its names and layout
            return self._run_by_roles(x, state)
        if self.source.spec_form:
            outs = self._infer(self.check_feeds(x, state, lengths))
            return outs[0], tuple(outs[1:])
        if lengths is not None:
            raise LstmEdgeError("this model takes no lengths", "drop lengths, or export the model with lengths")
        x, h0, c0 = self.check_inputs(x, state)
        y, h, c = self._run(x, h0, c0)
        return y, (h, c)

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
        if sig is not None and len(self.source.input_names) != 3:
            raise LstmEdgeError(
                f"streaming a bare .onnx needs inputs x, h0, c0 alone; it takes {', '.join(self.source.input_names)}",
                "import it into a bundle first: lstm-edge import MODEL.onnx --out BUNDLE",
            )
        if self.source.bundle is not None and not self.source.bundle.stateful:
            raise LstmEdgeError(
                FORMS["fallback"].stream_note,  # stateless: the fallback route's (or a stateless import's) reason
                "run whole sequences without --stream / stream(); an imported model can be re-exported: lstm-edge import MODEL.onnx --out BUNDLE --rebuild",
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

    def _infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph on checked feeds named as `source.input_names`; outputs in `source.output_names` order
        (the path of every ModelSpec form but the seed's), through the adapter's one named-feeds call."""
        outs = self._run_feeds(feeds)
        return [outs[name] for name in self.source.output_names]

    # ---- input checks (one clear line each) -----------------------------------------------------------
    def check_feeds(self, x, state=None, lengths=None) -> dict[str, np.ndarray]:
        """The named, checked feeds of a bundle in any ModelSpec form (zeros for a missing state, full lengths for
        missing lengths). Raises LstmEdgeError, one line each: x's dtype/rank/features/NaN, a token id outside the
        embedding table, lengths outside 1..T, a state of the wrong count or shape."""
        return check_feeds(self.source.config, x, state, lengths, not self.options.allow_nonfinite, self.state_dtype)

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


def check_feeds(
    config: ModelConfig, x, state=None, lengths=None, finite: bool = True, state_dtype=np.float32, batch=None
) -> dict[str, np.ndarray]:
    """Runner.check_feeds for a given ModelConfig (the stream reuses it with its batch)."""
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


class SpecStream:
    """Streaming for every unidirectional ModelSpec form but the seed's (GRU, time-major, token ids, lengths,
    projection): step(x_t) → that step's y, carrying the state tuple ((h, c) for an LSTM, (h,) for a GRU).

    x_t: one step — [B, F] features or [B] token ids (or [F] / a scalar id for batch 1) — or a chunk in the
    model's layout ([B, K, F] / [K, B, F]; ids [B, K] / [K, B]). Each step feeds lengths = its chunk length. No
    bound buffers: one `Runner._infer` call a step.
    """

    def __init__(self, runner: Runner, batch: int = 1) -> None:
        self.runner, self.batch = runner, batch
        self.config = c = runner.source.config
        self._finite = not runner.options.allow_nonfinite
        dt = runner.state_dtype
        self._state = tuple(np.zeros((rows, batch, width), dt) for rows, width in c.state_shapes.values())

    def _chunk(self, x_t) -> np.ndarray:
        c, x = self.config, np.asarray(x_t)
        step_rank = 1 if c.vocab_size else 2  # one step: [B] ids or [B, F] features
        if x.ndim == step_rank - 1:  # batch 1: a scalar id or [F]
            x = x[None]
        if x.ndim == step_rank:
            x = x[:, None] if c.batch_first else x[None]
        return x

    def step(self, x_t) -> np.ndarray:
        """Advance by one step (or a chunk) and return its y ([B, O] for heads last/final; per step [B, 1, O] or
        [1, B, O] for sequence/none). Raises LstmEdgeError as `Runner.run`; the state is unchanged then."""
        feeds = check_feeds(self.config, self._chunk(x_t), self._state, None, self._finite, self.runner.state_dtype,
                            self.batch)  # fmt: skip
        outs = self.runner._infer(feeds)
        self._state = tuple(np.ascontiguousarray(a, dtype=self.runner.state_dtype) for a in outs[1:])
        return outs[0]

    def feed(self, x: np.ndarray, chunk: int = 1) -> np.ndarray:
        """Stream a whole x (the model's layout) in chunks of `chunk` steps; returns what `run` would."""
        if chunk < 1:
            raise LstmEdgeError(f"chunk {chunk}", "use a chunk of at least 1 step")
        x = np.asarray(x)
        axis = 1 if self.config.batch_first else 0
        T = x.shape[axis] if x.ndim > axis else 0
        ys = [self.step(np.take(x, range(t, min(t + chunk, T)), axis=axis)) for t in range(0, T, chunk)]
        if not ys:
            raise LstmEdgeError("x has no steps", "give at least one step")
        per_step = self.config.head in ("sequence", "none")
        return np.concatenate(ys, axis=1 if self.config.batch_first else 0) if per_step else ys[-1]

    def reset(self) -> None:
        """Back to zero state."""
        for a in self._state:
            a.fill(0.0)

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """The state tuple ((h, c) or (h,)), copies; setting it checks count, shapes and values."""
        return tuple(a.copy() for a in self._state)

    @state.setter
    def state(self, value) -> None:
        shapes = [a.shape for a in self._state]
        names = list(self.config.state_shapes)
        if not isinstance(value, tuple | list) or len(value) != len(shapes):
            raise LstmEdgeError(
                f"state must be {len(shapes)} array(s) ({', '.join(names)})", "use a state read from this stream"
            )
        dt = self.runner.state_dtype
        self._state = tuple(
            check_state(n, a, shape, self._finite, dt).copy() for n, a, shape in zip(names, value, shapes, strict=True)
        )

    def freeze(self) -> tuple[np.ndarray, ...]:
        """A snapshot of the state that later steps do not change."""
        return self.state

    def unfreeze(self, snapshot) -> None:
        """Restore a snapshot from `freeze`."""
        self.state = snapshot

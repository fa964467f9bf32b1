"""The one runner interface: run(x, state) -> (y, (h, c)) on numpy arrays, stream() for one step at a time."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_edge.bundle import MANIFEST, Bundle
from lstm_edge.config import INPUT_NAMES, OUTPUT_NAMES, ModelConfig
from lstm_edge.errors import LstmEdgeError
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
        return self.bundle.config if self.bundle else None

    @property
    def has_state(self) -> bool:
        return len(self.input_names) >= 3 and len(self.output_names) >= 3


def resolve(path: str | Path, variant: str = "fp32", verify_hash: bool = True) -> Source:
    """Open a bundle folder (choosing a variant) or a bare .onnx."""
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST:
        bundle = Bundle.open(path)
        onnx_path = bundle.artifact(variant, verify_hash) if variant != "checkpoint" else bundle.checkpoint(verify_hash)
        traits = {}
        if onnx_path.suffix == ".onnx":
            from lstm_edge.onnx_io import load_onnx_checked, recurrent_traits

            traits = recurrent_traits(load_onnx_checked(onnx_path))  # refuses external data outside the bundle
        c = bundle.config
        precision = bundle.entry(variant).get("precision", variant)
        io = bundle.manifest.get("io") or {}  # an imported stateless model takes x alone
        names = {k: [p["name"] for p in io.get(k, [])] for k in ("inputs", "outputs")}
        return Source(
            onnx_path,
            bundle,
            variant,
            precision,
            input_names=names["inputs"] or list(INPUT_NAMES),
            output_names=names["outputs"] or list(OUTPUT_NAMES),
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


def _bare_onnx(path: Path) -> Source:
    """A .onnx without a manifest: every declared input and output by name, with the roles runtimes.signature
    recognises; input_names in role order (x, h0, c0) where the model follows that contract."""
    from lstm_edge.onnx_io import load_onnx_checked, recurrent_traits
    from lstm_edge.runtimes.signature import Signature

    model = load_onnx_checked(path)
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
    """Base of every runtime adapter. Subclasses implement _run (and may override _step for speed)."""

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
    def run(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None) -> Arrays:
        if self.source.signature is not None:  # a bare .onnx: fed by name, whatever its names and layout
            return self._run_by_roles(x, state)
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
                    "run from zero state (state=None), or re-export with state I/O: lstm-edge import --rebuild",
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
        sig = self.source.signature
        if sig is not None and not sig.stateful:
            raise LstmEdgeError(
                f"{self.source.path.name}'s state is not a graph input/output (lint: missing-state-input), so it "
                "cannot be carried between calls and the model cannot stream",
                "run whole sequences (drop --stream), or re-export it with state I/O: lstm-edge import --rebuild",
            )
        if sig is not None and sig.x_time != 1:
            raise LstmEdgeError(
                f"{self.source.path.name} takes x time-major ([T, B, F]); streaming steps batch-first x",
                "import it into a bundle first (lstm-edge import MODEL --out BUNDLE), which wraps it batch-first",
            )
        if sig is not None and len(self.source.input_names) != 3:
            raise LstmEdgeError(
                f"streaming a bare .onnx needs inputs x, h0, c0 alone; it takes {', '.join(self.source.input_names)}",
                "import it into a bundle first: lstm-edge import MODEL --out BUNDLE",
            )
        if not self.source.has_state:
            raise LstmEdgeError(
                "this model has no state inputs/outputs, so it cannot stream",
                "run whole sequences, or re-export it with state I/O (lstm-edge import --rebuild)",
            )
        if batch < 1:
            raise LstmEdgeError(f"stream batch {batch}", "use batch ≥ 1")
        return Stream(self, batch)

    def describe(self) -> dict:
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
        pass

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- for subclasses -------------------------------------------------------------------------------
    @abstractmethod
    def _run(self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    @abstractmethod
    def version(self) -> str: ...

    def device(self) -> str:
        return "cpu"

    def _step(self, x_t: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk with state carried, inputs already checked by the stream's shape."""
        return self._run(x_t, h, c)

    # ---- input checks (one clear line each) -----------------------------------------------------------
    def check_inputs(self, x, state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.source
        x = _as_float32("x", x)
        if x.ndim != 3:
            raise LstmEdgeError(f"x has rank {x.ndim} (shape {x.shape})", "give x as [batch, seq, features]")
        B, T, F = x.shape
        if B == 0 or T == 0:
            raise LstmEdgeError(f"x has batch {B} and seq {T}", "give at least one sequence of at least one step")
        if s.input_size and F != s.input_size:
            raise LstmEdgeError(f"x has {F} features but the model takes {s.input_size}", "check the input's last axis")
        if not self.options.allow_nonfinite:
            _check_finite("x", x)
        L, H = s.num_layers, s.hidden_size
        if state is None:
            if L is None or H is None:
                raise LstmEdgeError("the model's state size is not declared", "pass state=(h0, c0) explicitly")
            h0 = np.zeros((L, B, H), np.float32)
            return x, h0, np.zeros_like(h0)
        h0, c0 = (_as_float32(n, a) for n, a in zip(("h0", "c0"), state, strict=True))
        for name, a in (("h0", h0), ("c0", c0)):
            want = (L, B, H)
            if a.ndim != 3 or any(w is not None and w != g for w, g in zip(want, a.shape, strict=False)):
                raise LstmEdgeError(
                    f"{name} has shape {a.shape}, expected {want}", "state is [num_layers, batch, hidden]"
                )
            if not self.options.allow_nonfinite:
                _check_finite(name, a)
        return x, h0, c0


def _as_float32(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise LstmEdgeError(f"{name} has dtype {a.dtype}", "give float32 values (float64 is converted)")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, which the finite check names
        return np.ascontiguousarray(a, dtype=np.float32)


def _check_finite(name: str, a: np.ndarray) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise LstmEdgeError(f"{name} holds {a[pos]} at index {pos}", "clean the input, or pass --allow-nonfinite")


class Stream:
    """Stateful one-step-at-a-time runner: step(x_t) → that step's y; state can be read, set, frozen, restored."""

    def __init__(self, runner: Runner, batch: int = 1) -> None:
        self.runner = runner
        self.batch = batch
        s = runner.source
        self._shape = (s.num_layers, batch, s.hidden_size)
        self._h = np.zeros(self._shape, runner.state_dtype)  # (L, B, H); subclasses may bind these to a runtime
        self._c = np.zeros(self._shape, runner.state_dtype)

    def reset(self) -> None:
        self._h.fill(0.0)
        self._c.fill(0.0)

    def _advance(self, x: np.ndarray) -> np.ndarray:
        """Run x [B, K, F] from the current state, leave the new state in self._h/_c, return y."""
        y, h, c = self.runner._step(x, self._h, self._c)
        np.copyto(self._h, h)
        np.copyto(self._c, c)
        return y

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """x_t: one step's features, [F] or [B, F] (or a chunk [B, K, F]); returns that step's (chunk's) y."""
        x_t = np.asarray(x_t, dtype=np.float32)
        if x_t.ndim == 1:
            x_t = x_t[None, None, :]
        elif x_t.ndim == 2:
            x_t = x_t[:, None, :]
        if x_t.shape[0] != self.batch:
            raise LstmEdgeError(f"step got batch {x_t.shape[0]}, the stream has {self.batch}", "use stream(batch=…)")
        return self._advance(x_t)

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self._h.copy(), self._c.copy()

    @state.setter
    def state(self, value: tuple[np.ndarray, np.ndarray]) -> None:
        h, c = (np.array(a, dtype=self._h.dtype) for a in value)
        if h.shape != self._shape or c.shape != self._shape:
            raise LstmEdgeError(
                f"state shapes {h.shape}/{c.shape}, expected {self._shape}", "use a state from this stream"
            )
        np.copyto(self._h, h)
        np.copyto(self._c, c)

    def freeze(self) -> tuple[np.ndarray, np.ndarray]:
        """A snapshot of (h, c) that later steps do not change."""
        return self.state

    def unfreeze(self, snapshot: tuple[np.ndarray, np.ndarray]) -> None:
        self.state = snapshot

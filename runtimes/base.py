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
        if onnx_path.suffix == ".onnx":
            from lstm_edge.onnx_io import load_onnx_checked

            load_onnx_checked(onnx_path)  # refuses external data that points outside the bundle
        c = bundle.config
        precision = bundle.entry(variant).get("precision", variant)
        io = bundle.manifest.get("io")
        return Source(
            onnx_path,
            bundle,
            variant,
            precision,
            # The manifest's names: a stateless bundle (the user's own forward) has x → y only.
            input_names=_io_names(io, "inputs", INPUT_NAMES),
            output_names=_io_names(io, "outputs", OUTPUT_NAMES),
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


def _io_names(io, key: str, default: tuple[str, ...]) -> list[str]:
    """Names from the manifest's I/O spec (bundles before it, or a malformed one: the default contract)."""
    items = io.get(key) if isinstance(io, dict) else None
    names = [i.get("name") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return names if names and all(isinstance(n, str) for n in names) else list(default)


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
    """Base of every runtime adapter. Subclasses implement _run (and may override _step for speed)."""

    runtime: str = "?"
    state_dtype = np.float32  # what a stream keeps h and c in between steps

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        self.source = source
        self.options = options
        self._lock = threading.Lock()  # runtimes are thread-safe for run; our buffers (streaming) are not

    # ---- the public contract -------------------------------------------------------------------------
    def run(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None) -> Arrays:
        x, h0, c0 = self.check_inputs(x, state)
        y, h, c = self._run(x, h0, c0)
        return y, (h, c)

    def stream(self, batch: int = 1) -> Stream:
        if self.source.bundle is not None and not self.source.bundle.manifest.get("streaming", True):
            raise LstmEdgeError(
                "this bundle is stateless (exported from the model's own forward: streaming false), so it cannot "
                "stream",
                "run whole sequences without --stream / stream()",
            )
        if not self.source.has_state:
            raise LstmEdgeError(
                "this model has no state inputs/outputs, so it cannot stream", "export it with lstm-edge"
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

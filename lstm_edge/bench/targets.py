"""What bench times: its config, the targets (runtime × variant runners) and PyTorch eager's two LSTM paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace

from lstm_edge.bundle import Bundle
from lstm_edge.environment import available_providers, cores
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.runtimes import RUNTIMES, Runner, open_runner

# `--quick`: a smaller grid and fewer steps (a fast look, not figures to quote).
QUICK = {"batches": (1, 8), "seqs": (1, 100), "stream_steps": 500, "min_time": 0.05, "max_reps": 5}

# PyTorch eager on CPU has two LSTM paths, chosen by torch.backends.mkldnn: oneDNN's fused LSTM kernel (on, the
# default) and ATen's own (off: a GEMM per layer per step). Neither wins everywhere. On the adding model, 1 thread,
# measured here: stream step 329 µs on against 212 µs off, B64·T100 16.6 ms on against 23.7 ms off; issue 18
# measured the oneDNN step at 368–1,070 µs with the process's allocator state, against a steady ~100 µs off. bench
# times both, interleaved with every other target, and takes the faster per shape as the baseline, so no speed-up
# is computed against the slower path. Keys are the flag's state, as a user would set it.
TORCH_PATHS = {"mkldnn_on": True, "mkldnn_off": False}


@contextmanager
def mkldnn_enabled(enabled: bool) -> Iterator[None]:
    """torch.backends.mkldnn enabled or not inside the block; all four oneDNN flags as they were after it (also on
    an exception). torch.backends.mkldnn.flags(enabled=…) would also set deterministic, allow_tf32 and fp32_precision
    to its own defaults inside the block; this changes the one flag. Raises nothing of its own."""
    import torch  # deferred: only PyTorch eager's targets need it

    orig = torch.backends.mkldnn.set_flags(enabled, None, None, None)
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(*orig)


@dataclass
class BenchConfig:
    """What bench measures: providers × variants (PyTorch eager fp32 always runs first, as the reference, timed with
    torch.backends.mkldnn on and off: TORCH_PATHS) at each thread setting ("1", "all" or a count), streaming over
    stream_steps steps at B=1, and the batches × seqs grid (each point timed for at least min_time seconds and
    min_reps calls, at most max_reps)."""

    providers: tuple[str, ...] | None = None  # default: every runtime installed here
    variants: tuple[str, ...] | None = None  # default: every variant in the bundle
    threads: tuple[str, ...] = ("1", "all")
    rate_hz: float = 100.0
    batches: tuple[int, ...] = (1, 8, 64)
    seqs: tuple[int, ...] = (1, 100, 1000)
    stream_steps: int = 2000
    min_time: float = 0.25  # seconds of timed calls per runner and grid point, at least
    min_reps: int = 3
    max_reps: int = 30
    cold_start: bool = True
    progress: bool = True
    verify_hash: bool = True
    self_check: bool = True  # each runner reproduces the golden cases before it is timed (runtimes.self_check)

    def quick(self) -> BenchConfig:
        """This config with the QUICK grid (B 1,8; T 1,100; 500 streaming steps; ≤ 5 reps of ≥ 0.05 s)."""
        return replace(self, **QUICK)


@dataclass
class Target:
    """One runtime × variant being timed: its runner (None where it could not open, with the reason) and the
    samples timing collects into it."""

    provider: str
    variant: str
    runner: Runner | None = None
    reason: str = ""
    samples: dict = field(default_factory=dict)
    baseline: bool = False  # one of the targets speed-ups are computed against
    torch_path: str | None = None  # a TORCH_PATHS key for PyTorch eager: which LSTM path it is timed on

    @property
    def key(self) -> str:
        """provider:variant, and :torch_path for PyTorch eager's two paths: unique among a run's targets."""
        return f"{self.provider}:{self.variant}" + (f":{self.torch_path}" if self.torch_path else "")

    def flags(self) -> AbstractContextManager[None]:
        """The context every call of this target is timed in: its torch.backends.mkldnn state, or nothing."""
        return mkldnn_enabled(TORCH_PATHS[self.torch_path]) if self.torch_path else nullcontext()


def thread_count(setting: str) -> int:
    """A --threads setting ("all" or a count) as a thread count.

    Raises:
        LstmEdgeError: a setting that is not "all" or an integer ≥ 1.
    """
    if setting == "all":
        return cores()
    try:
        n = int(setting)
    except ValueError as e:
        raise LstmEdgeError(f"--threads {setting!r}", "give thread counts like 1,all or 1,2") from e
    if n < 1:
        raise LstmEdgeError(f"--threads {n}", "thread counts must be ≥ 1")
    return n


def open_targets(bundle: Bundle, cfg: BenchConfig, threads: int) -> list[Target]:
    """The targets to time at `threads`: the baseline first (PyTorch eager on both TORCH_PATHS, or ORT CPU fp32 for
    a bundle without a checkpoint), then every provider × variant asked for; each with its runner open, or the
    reason it could not open (an unavailable runtime, a variant it refuses, a variant bench picked by default that
    failed its self-check).

    Raises:
        LstmEdgeError: an unknown provider in cfg.providers.
        ParityError: an fp32 runner, or one of a variant named in cfg.variants, fails its self-check.
    """
    avail = available_providers()
    providers = cfg.providers or tuple(p for p in RUNTIMES if p != "reference" and avail[p] is None)
    variants = cfg.variants or tuple(bundle.variants())
    # The baseline, always first: PyTorch eager on the checkpoint, on both its paths; an imported bundle has no
    # checkpoint, so ORT CPU fp32.
    if "checkpoint" in bundle.manifest["artifacts"]:
        targets = [Target("torch", "fp32", baseline=True, torch_path=p) for p in TORCH_PATHS]
    else:
        targets = [Target("cpu", "fp32", baseline=True)]
    base = targets[0]
    targets += (
        [
            Target(p, v)
            for p in providers
            for v in variants
            if p != "torch" and p in RUNTIMES and (p, v) != ("cpu", "fp32")
        ]
        if base.provider == "cpu"
        else [Target(p, v) for p in providers for v in variants if p != "torch" and p in RUNTIMES]
    )
    for p in providers:
        if p not in RUNTIMES:
            raise LstmEdgeError(f"unknown provider {p!r}", f"choose from {', '.join(RUNTIMES)}")
    for t in targets:
        if avail.get(t.provider):
            t.reason = avail[t.provider]
            continue
        try:
            # Several sessions take turns here: an idle ORT pool spinning on its cores would steal them from the
            # runner being timed, so spinning is off when a runner has more than one thread.
            t.runner = open_runner(
                bundle.root,
                t.provider,
                variant=t.variant,
                threads=threads,
                verify_hash=cfg.verify_hash,
                spin=threads == 1,
                self_check=cfg.self_check,
            )
        except ParityError as e:  # the runner misses its golden cases here (runtimes.self_check)
            if t.variant == "fp32" or cfg.variants:  # the bundle's own model, or a variant asked for by name: refuse
                raise
            t.reason = str(e)  # a derived variant bench picked by default: listed as refused, nothing timed
        except LstmEdgeError as e:
            t.reason = str(e)
    return targets

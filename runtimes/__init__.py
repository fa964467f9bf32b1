"""One runner per runtime behind one interface (import: lstm_edge.runtimes).

runner = open_runner("models/adding", provider="cpu", variant="int8")
y, (h, c) = runner.run(x)            # x [B, T, F] float32
s = runner.stream(); y_t = s.step(x_t)   # x_t [F] or [B, F]; same checks as run()
y = runner.stream(batch=B).feed(x, chunk=10)   # x in chunks of 10 steps, as a device would

RUNTIMES (runtimes.registry) is the one table of runtimes: provider name → RuntimeInfo (summary, extra, availability,
fp32 drift bound, refusals). The runner interface is runtimes.base; what a runner opens, runtimes.source; the input
checks, runtimes.checks; streams, runtimes.stream.
"""

from __future__ import annotations

from pathlib import Path

from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.base import Runner, RunnerOptions, RunResult
from lstm_edge.runtimes.registry import RUNTIMES, RuntimeInfo
from lstm_edge.runtimes.source import Source, resolve
from lstm_edge.runtimes.stream import Stream


def open_runner(
    model: str | Path,
    provider: str = "cpu",
    variant: str = "fp32",
    threads: int | None = None,
    options: RunnerOptions | None = None,
    **kw,
) -> Runner:
    """Open a model on one runtime: the entry point behind `lstm_edge.load` and every CLI command.

    Args:
        model: a bundle folder (or its manifest.json), or a bare .onnx with inputs x[, h0, c0].
        provider: a key of RUNTIMES (runtimes.registry) — torch (the checkpoint; the reference), cpu, cuda,
            openvino, tract, reference (float64 onnx.reference), c.
        variant: fp32 | int8 | int8-static | fp16; torch is fp32 only.
        threads: intra-op threads (≥ 1), or None for the runtime's default.
        options: every setting at once (RunnerOptions); when given, variant/threads/kw are ignored.
        **kw: further RunnerOptions fields (allow_nonfinite, precision_hint, gates, float64, …).

    Returns:
        A Runner: run(x, state) -> (y, (h, c)), stream(batch), describe(); a context manager.

    With options.self_check (lstm_edge.load's default), the runner first reproduces the bundle's golden cases (or
    finds that pass in the user cache): runtimes.self_check; describe()["self_check"] says which.

    Raises:
        LstmEdgeError: an unknown provider or variant, threads < 1, a model that is missing, fails its hash or
            cannot be loaded by that runtime, or a runtime that is not installed (the fix names the extra).
        ParityError: options.self_check and the runner misses a golden case's bound (one line; exit 1 in the CLI).
    """
    if provider not in RUNTIMES:
        raise LstmEdgeError(f"unknown provider {provider!r}", f"choose one of {', '.join(RUNTIMES)}")
    opts = options or RunnerOptions(variant=variant, threads=threads, **kw)
    if opts.threads is not None and (
        isinstance(opts.threads, bool) or not isinstance(opts.threads, int) or opts.threads < 1
    ):
        raise LstmEdgeError(f"--threads {opts.threads}", "use a positive thread count")
    if provider == "torch" and opts.variant != "fp32":
        fp32_only = RUNTIMES["torch"].refusals["variants other than fp32"]
        raise LstmEdgeError(f"{fp32_only}, not {opts.variant}", "drop --variant or pick another provider")
    # c generates its C (fp32 or int8) from the bundle's fp32 graph, whichever ONNX variants the bundle holds.
    source = resolve(model, "fp32" if provider == "c" else opts.variant, opts.verify_hash)
    runner = RUNTIMES[provider].runner_class()(source, opts)
    if opts.self_check:
        # deferred: runtimes.self_check reads lstm_edge.environment, which imports this package's registry
        from lstm_edge.runtimes.self_check import self_check

        try:
            runner.self_checked = self_check(runner, provider)
        except BaseException:
            runner.close()
            raise
    return runner


__all__ = [
    "RUNTIMES",
    "RunResult",
    "Runner",
    "RunnerOptions",
    "RuntimeInfo",
    "Source",
    "Stream",
    "open_runner",
    "resolve",
]

"""One runner per runtime behind one interface (import: lstm_edge.runtimes).

runner = open_runner("models/adding", provider="cpu", variant="int8")
y, (h, c) = runner.run(x)            # x [B, T, F] float32
s = runner.stream(); y_t = s.step(x_t)   # x_t [F] or [B, F]; same checks as run()
y = runner.stream(batch=B).feed(x, chunk=10)   # x in chunks of 10 steps, as a device would
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import Runner, RunnerOptions, Source, Stream, resolve

# provider name → (module, class, what it needs installed); imported lazily so optional packages stay optional.
RUNTIMES: dict[str, tuple[str, str]] = {
    "torch": ("lstm_edge.runtimes.torch_runner", "TorchRunner"),
    "cpu": ("lstm_edge.runtimes.ort_cpu", "OrtRunner"),
    "cuda": ("lstm_edge.runtimes.ort_cuda", "OrtCudaRunner"),
    "openvino": ("lstm_edge.runtimes.openvino_runner", "OpenVinoRunner"),
    "tract": ("lstm_edge.runtimes.tract_runner", "TractRunner"),
    "reference": ("lstm_edge.runtimes.onnx_reference", "OnnxReferenceRunner"),  # float64 onnx.reference
    "c": ("lstm_edge.runtimes.c_runner", "CRunner"),
}


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
        provider: a key of RUNTIMES — torch (the checkpoint; the reference), cpu, cuda, openvino, tract.
        variant: fp32 | int8 | int8-static | fp16; torch is fp32 only.
        threads: intra-op threads (≥ 1), or None for the runtime's default.
        options: every setting at once (RunnerOptions); when given, variant/threads/kw are ignored.
        **kw: further RunnerOptions fields (allow_nonfinite, precision_hint, gates, float64, …).

    Returns:
        A Runner: run(x, state) -> (y, (h, c)), stream(batch), describe(); a context manager.

    Raises:
        LstmEdgeError: an unknown provider or variant, threads < 1, a model that is missing, fails its hash or
            cannot be loaded by that runtime, or a runtime that is not installed (the fix names the extra).
    """
    if provider not in RUNTIMES:
        raise LstmEdgeError(f"unknown provider {provider!r}", f"choose one of {', '.join(RUNTIMES)}")
    opts = options or RunnerOptions(variant=variant, threads=threads, **kw)
    if opts.threads is not None and (
        isinstance(opts.threads, bool) or not isinstance(opts.threads, int) or opts.threads < 1
    ):
        raise LstmEdgeError(f"--threads {opts.threads}", "use a positive thread count")
    if provider == "torch" and opts.variant != "fp32":
        raise LstmEdgeError(
            f"the torch reference is fp32 only, not {opts.variant}", "drop --variant or pick another provider"
        )
    # c generates its C (fp32 or int8) from the bundle's fp32 graph, whichever ONNX variants the bundle holds.
    source = resolve(model, "fp32" if provider == "c" else opts.variant, opts.verify_hash)
    module, cls = RUNTIMES[provider]
    try:
        adapter = getattr(importlib.import_module(module), cls)
    except OSError as e:  # a runtime whose shared libraries fail to load raises OSError on import, not ImportError
        raise LstmEdgeError(
            f"the {provider} runtime cannot be imported ({type(e).__name__}: {first_line(e, 160)})",
            "reinstall it (pip install --force-reinstall …) or run `lstm-edge doctor`",
        ) from e
    return adapter(source, opts)


__all__ = ["RUNTIMES", "Runner", "RunnerOptions", "Source", "Stream", "open_runner", "resolve"]

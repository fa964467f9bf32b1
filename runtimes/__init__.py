"""One runner per runtime behind one interface (import: lstm_edge.runtimes).

runner = open_runner("models/adding", provider="cpu", variant="int8")
y, (h, c) = runner.run(x)            # x [B, T, F] float32
s = runner.stream(); y_t = s.step(x_t)
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.base import Runner, RunnerOptions, Source, Stream, resolve

# provider name → (module, class, what it needs installed); imported lazily so optional packages stay optional.
RUNTIMES: dict[str, tuple[str, str]] = {
    "torch": ("lstm_edge.runtimes.torch_runner", "TorchRunner"),
    "cpu": ("lstm_edge.runtimes.ort_cpu", "OrtRunner"),
    "cuda": ("lstm_edge.runtimes.ort_cuda", "OrtCudaRunner"),
    "openvino": ("lstm_edge.runtimes.openvino_runner", "OpenVinoRunner"),
    "tract": ("lstm_edge.runtimes.tract_runner", "TractRunner"),
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
    if provider not in RUNTIMES:
        raise LstmEdgeError(f"unknown provider {provider!r}", f"choose one of {', '.join(RUNTIMES)}")
    opts = options or RunnerOptions(variant=variant, threads=threads, **kw)
    if threads is not None and threads < 1:
        raise LstmEdgeError(f"--threads {threads}", "use a positive thread count")
    if provider == "torch" and opts.variant != "fp32":
        raise LstmEdgeError(
            f"the torch reference is fp32 only, not {opts.variant}", "drop --variant or pick another provider"
        )
    # c generates its C (fp32 or int8) from the bundle's fp32 graph, whichever ONNX variants the bundle holds.
    source = resolve(model, "fp32" if provider == "c" else opts.variant, opts.verify_hash)
    module, cls = RUNTIMES[provider]
    return getattr(importlib.import_module(module), cls)(source, opts)


__all__ = ["RUNTIMES", "Runner", "RunnerOptions", "Source", "Stream", "open_runner", "resolve"]

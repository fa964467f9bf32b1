"""The reference: the bundle's PyTorch checkpoint (nn.LSTM, or GateLSTM's documented equations with gates=True)."""

from __future__ import annotations

import numpy as np
import torch

from lstm_edge.checkpoint import load_checkpoint
from lstm_edge.errors import LstmEdgeError
from lstm_edge.model import forward_numpy, run_numpy
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.registry import RUNTIMES
from lstm_edge.runtimes.source import Source


class TorchRunner(Runner):
    """The bundle's checkpoint in PyTorch: the reference every other runner is compared with (float64 on request)."""

    runtime = "torch"

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        if source.bundle is None:
            raise LstmEdgeError(
                RUNTIMES["torch"].refusals["bare .onnx"],
                "pass a bundle folder, or choose --provider cpu",
            )
        ckpt = source.bundle.checkpoint(options.verify_hash)
        source = Source(
            ckpt,
            source.bundle,
            source.variant,
            "fp32",
            input_names=source.input_names,
            output_names=source.output_names,
            input_size=source.input_size,
            num_layers=source.num_layers,
            hidden_size=source.hidden_size,
        )
        super().__init__(source, options)
        model, _ = load_checkpoint(ckpt)
        if options.float64:
            model = model.double()
            self.state_dtype = np.float64
        self.model = model.gate_form() if options.gates else model
        if options.threads:
            torch.set_num_threads(options.threads)

    def _run(self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray):
        if self.options.float64:
            x, h0, c0 = (np.asarray(a, np.float64) for a in (x, h0, c0))
        return run_numpy(self.model, x, h0, c0)

    def infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Runner.infer through the checkpoint's own forward (in float64 when float64=True)."""
        inputs = [a.astype(self.state_dtype) if a.dtype.kind == "f" else a for a in feeds.values()]
        return list(forward_numpy(self.model, *inputs))

    def version(self) -> str:
        """torch's version string."""
        return str(torch.__version__)

    def describe(self) -> dict:
        """Runner.describe plus which recurrent module runs (nn.LSTM or GateLSTM) and torch's thread count."""
        return super().describe() | {
            "recurrent": "GateLSTM" if self.options.gates else type(self.model.lstm).__name__,
            "threads": torch.get_num_threads(),
            "precision": "fp64" if self.options.float64 else "fp32",
        }

"""tract (Sonos), the runtime made for embedded devices, through its Python bindings."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.registry import RUNTIMES
from lstm_edge.runtimes.source import Source


class TractRunner(Runner):
    """tract through its Python bindings; no int8 (DynamicQuantizeLSTM). Streams through run (no binding)."""

    runtime = "tract"

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        try:
            import tract  # deferred: tract is optional
        except ImportError as e:
            raise LstmEdgeError("tract is not installed", "pip install 'lstm-edge[tract]'") from e
        self.tract = tract
        ops = (
            ((source.bundle.entry(source.variant).get("report") or {}).get("ops_after") or {}) if source.bundle else {}
        )
        # GRU and the projected (Scan) form quantize to standard MatMulInteger, which tract runs (measured: equal to
        # ORT within 1e-7); an int8 LSTM is com.microsoft's DynamicQuantizeLSTM.
        if source.variant == "int8" and (not ops or "DynamicQuantizeLSTM" in ops):
            raise LstmEdgeError(
                RUNTIMES["tract"].refusals["int8"],
                "use --variant fp32 or int8-static with tract, or --provider cpu for int8",
            )
        try:
            self.runnable = tract.onnx().load(str(source.path)).into_model().into_runnable()
        except Exception as e:  # tract.TractError carries a multi-line cause chain
            msg = first_line(e)
            raise LstmEdgeError(f"tract cannot load {source.path.name}: {msg}", "try --provider cpu") from e

    def _run(self, x, h0, c0):
        feeds = [x, h0, c0] if len(self.source.input_names) >= 3 else [x]
        try:
            with self._lock:  # the Python bindings make no thread-safety promise
                outs = [o.to_numpy() for o in self.runnable.run(feeds)]
        except Exception as e:
            raise LstmEdgeError(f"tract failed to run: {first_line(e)}", "try --provider cpu") from e
        outs = [np.asarray(o, dtype=np.float32) for o in outs]
        return (outs[0], outs[1], outs[2]) if len(outs) >= 3 else (outs[0], h0, c0)

    def _run_feeds(self, feeds):
        sig = self.source.signature
        # The Python bindings take inputs in declaration order and return outputs likewise.
        ins = [p.name for p in sig.inputs] if sig is not None else list(self.source.input_names)
        outs_named = [o.name for o in sig.outputs] if sig is not None else list(self.source.output_names)
        try:
            with self._lock:
                outs = [np.asarray(o.to_numpy()) for o in self.runnable.run([feeds[n] for n in ins])]
        except Exception as e:
            raise LstmEdgeError(f"tract failed to run: {first_line(e)}", "try --provider cpu") from e
        return dict(zip(outs_named, outs, strict=True))

    def version(self) -> str:
        """tract's version string."""
        return self.tract.version()

"""ONNX Runtime on the CPU execution provider; streaming steps reuse bound buffers (no per-step allocation)."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.probes import import_ort
from lstm_edge.runtimes.source import Source
from lstm_edge.runtimes.stream import Binding

OPT_LEVELS = ("disable", "basic", "extended", "all")


class OrtRunner(Runner):
    """ONNX Runtime, CPU execution provider; streams through two alternating IO bindings (see _bind_step)."""

    runtime = "onnxruntime"
    providers: list = ["CPUExecutionProvider"]

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        self.ort = import_ort()
        self.session = self._create_session(self.session_options())
        self._names = source.input_names[:3]

    def session_options(self):
        """ort.SessionOptions from RunnerOptions (threads, graph optimization, spinning).

        Raises:
            LstmEdgeError: an unknown graph optimization level.
        """
        ort, o = self.ort, self.options
        so = ort.SessionOptions()
        if o.threads:
            so.intra_op_num_threads = o.threads
            so.inter_op_num_threads = 1
        if o.graph_optimization not in OPT_LEVELS:
            raise LstmEdgeError(
                f"unknown graph optimization {o.graph_optimization!r}", f"choose {', '.join(OPT_LEVELS)}"
            )
        level = {
            "disable": "ORT_DISABLE_ALL",
            "basic": "ORT_ENABLE_BASIC",
            "extended": "ORT_ENABLE_EXTENDED",
            "all": "ORT_ENABLE_ALL",
        }[o.graph_optimization]
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.log_severity_level = 4  # fatal only: every error ORT raises reaches the user as our one line (run_failure)
        if not o.spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _create_session(self, so):
        try:
            return self.ort.InferenceSession(str(self.source.path), so, providers=self.providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            msg = first_line(e)
            raise LstmEdgeError(
                f"ONNX Runtime cannot load {self.source.path.name}: {msg}",
                "re-export the model, or try another variant/provider",
            ) from e

    def _feeds(self, x, h0, c0) -> dict:
        names = self._names
        return {names[0]: x, names[1]: h0, names[2]: c0} if len(names) == 3 else {names[0]: x}

    def _run(self, x, h0, c0):
        try:
            outs = self.session.run(self.source.output_names[:3], self._feeds(x, h0, c0))
        except Exception as e:  # ORT's own InvalidArgument/Fail types: the checked inputs were fine, the graph is not
            raise self.run_failure(e) from e
        if len(outs) < 3:
            return outs[0], h0, c0
        return outs[0], outs[1], outs[2]

    def run_failure(self, e: Exception) -> LstmEdgeError:
        """The one line for ONNX Runtime failing inside a graph it loaded (lstm-edge checked the inputs before):
        a node's own check on its weights, e.g. a DynamicQuantizeLSTM whose R_zero_point has the wrong shape."""
        msg = first_line(e).split("Status Message: ")[-1]
        return LstmEdgeError(
            f"ONNX Runtime {self.version()} cannot run {self.source.path.name} (variant {self.source.variant}): {msg}",
            "the file is malformed: re-export or re-quantize the bundle (`lstm-edge verify` names the failing check), "
            "or use another variant",
        )

    def _run_feeds(self, feeds):
        try:
            outs = self.session.run(None, feeds)
        except Exception as e:  # ORT's own Fail/InvalidArgument types, with C++ detail
            raise LstmEdgeError(
                f"ONNX Runtime failed: {first_line(e)}", "check the inputs against lstm-edge lint"
            ) from e
        return dict(zip((o.name for o in self.session.get_outputs()), outs, strict=True))

    def version(self) -> str:
        """onnxruntime's version string."""
        return self.ort.__version__

    def describe(self) -> dict:
        """Runner.describe plus the providers the session placed and the graph optimization level."""
        return super().describe() | {
            "providers": self.session.get_providers(),
            "graph_optimization": self.options.graph_optimization,
        }

    def bind_step(self, x: np.ndarray, states: tuple[tuple[np.ndarray, ...], ...]) -> Binding:
        """Two IO bindings over the stream's numpy buffers, alternating: step k reads pair k and writes 1 - k.

        ORT's CPU OrtValues share memory with the numpy arrays, so a step is one copy of x_t in and one of y out
        (~32 µs a step on the adding model, 1 thread, against ~80 µs through run() with a feed dict and checks).

        Raises:
            LstmEdgeError: ONNX Runtime fails running the graph (run_failure).
        """
        ort, session = self.ort, self.session
        names, outs = self._names, self.source.output_names
        h, c = states[0]
        try:
            y = np.zeros(session.run(outs[:1], self._feeds(x, h, c))[0].shape, np.float32)  # the head's shape
        except Exception as e:  # ORT's own types, as in _run
            raise self.run_failure(e) from e
        value = ort.OrtValue.ortvalue_from_numpy
        bindings = []
        for src, dst in ((0, 1), (1, 0)):
            b = session.io_binding()
            b.bind_ortvalue_input(names[0], value(x))
            b.bind_ortvalue_output(outs[0], value(y))
            for name, a in zip(names[1:3], states[src], strict=True):
                b.bind_ortvalue_input(name, value(a))
            for name, a in zip(outs[1:3], states[dst], strict=True):
                b.bind_ortvalue_output(name, value(a))
            bindings.append(b)

        def step(k: int) -> np.ndarray:
            session.run_with_iobinding(bindings[k])
            return y.copy()

        return Binding(step)

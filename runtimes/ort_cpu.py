"""ONNX Runtime on the CPU execution provider; streaming steps reuse bound buffers (no per-step allocation)."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import Runner, RunnerOptions, Source, Stream

OPT_LEVELS = ("disable", "basic", "extended", "all")


def import_ort(extra: str = "cpu"):
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise LstmEdgeError("ONNX Runtime is not installed", f"pip install 'lstm-edge[{extra}]'") from e
    return ort


class OrtRunner(Runner):
    runtime = "onnxruntime"
    providers: list = ["CPUExecutionProvider"]

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        self.ort = import_ort()
        self.session = self._create_session(self.session_options())
        self._names = source.input_names[:3]

    def session_options(self):
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
        so.log_severity_level = 3
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
        outs = self.session.run(self.source.output_names[:3], self._feeds(x, h0, c0))
        if len(outs) < 3:
            return outs[0], h0, c0
        return outs[0], outs[1], outs[2]

    def _run_feeds(self, feeds):
        try:
            outs = self.session.run(None, feeds)
        except Exception as e:  # ORT's own Fail/InvalidArgument types, with C++ detail
            raise LstmEdgeError(
                f"ONNX Runtime failed: {first_line(e)}", "check the inputs against lstm-edge lint"
            ) from e
        return dict(zip((o.name for o in self.session.get_outputs()), outs, strict=True))

    def version(self) -> str:
        return self.ort.__version__

    def stream(self, batch: int = 1) -> Stream:
        super().stream(batch)  # the checks
        return OrtStream(self, batch)

    def describe(self) -> dict:
        return super().describe() | {
            "providers": self.session.get_providers(),
            "graph_optimization": self.options.graph_optimization,
        }


class OrtStream(Stream):
    """Two IO bindings over fixed numpy buffers, alternating: step k reads state A and writes B, step k+1 the reverse.

    ORT's CPU OrtValues share memory with the numpy arrays, so a step is one copy of x_t in and one of y out.
    """

    def __init__(self, runner: OrtRunner, batch: int = 1) -> None:
        super().__init__(runner, batch)
        ort, s = runner.ort, runner.source
        self._x = np.zeros((batch, 1, s.input_size), np.float32)
        y_shape = runner.session.run(s.output_names[:1], runner._feeds(self._x, self._h, self._c))[0].shape
        self._y = np.zeros(y_shape, np.float32)
        self._bufs = [(self._h, self._c), (np.zeros_like(self._h), np.zeros_like(self._c))]
        self._bindings = []
        names, outs = runner._names, s.output_names
        for src, dst in ((0, 1), (1, 0)):
            b = runner.session.io_binding()
            b.bind_ortvalue_input(names[0], ort.OrtValue.ortvalue_from_numpy(self._x))
            b.bind_ortvalue_input(names[1], ort.OrtValue.ortvalue_from_numpy(self._bufs[src][0]))
            b.bind_ortvalue_input(names[2], ort.OrtValue.ortvalue_from_numpy(self._bufs[src][1]))
            b.bind_ortvalue_output(outs[0], ort.OrtValue.ortvalue_from_numpy(self._y))
            b.bind_ortvalue_output(outs[1], ort.OrtValue.ortvalue_from_numpy(self._bufs[dst][0]))
            b.bind_ortvalue_output(outs[2], ort.OrtValue.ortvalue_from_numpy(self._bufs[dst][1]))
            self._bindings.append(b)
        self._cur = 0

    def _advance(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != 1:  # chunks go through the plain path
            return super()._advance(x)
        np.copyto(self._x, x)
        self.runner.session.run_with_iobinding(self._bindings[self._cur])
        self._cur ^= 1
        self._h, self._c = self._bufs[self._cur]
        return self._y.copy()

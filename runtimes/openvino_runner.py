"""OpenVINO reading the ONNX file. f32 inference precision by default: its CPU default here is bf16, which breaks
parity; bf16 only on request."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import Runner, RunnerOptions
from lstm_edge.runtimes.source import Source
from lstm_edge.runtimes.stream import Binding


class OpenVinoRunner(Runner):
    """OpenVINO on the CPU at f32 unless precision_hint="bf16"; streams through a static one-step model."""

    runtime = "openvino"

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        try:
            import openvino as ov  # deferred: openvino is heavy and optional
        except ImportError as e:
            raise LstmEdgeError("OpenVINO is not installed", "pip install 'lstm-edge[openvino]'") from e
        if options.precision_hint not in ("f32", "bf16"):
            raise LstmEdgeError(f"unknown OpenVINO precision {options.precision_hint!r}", "choose f32 or bf16")
        self.ov = ov
        config = {"INFERENCE_PRECISION_HINT": options.precision_hint, "PERFORMANCE_HINT": "LATENCY"}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        self._config = config
        try:
            self.core = core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(source.path)), "CPU", config)
        except Exception as e:  # OpenVINO raises RuntimeError/OpConversionFailure with long C++ traces
            text = str(e)
            op = "DynamicQuantizeLSTM" if "DynamicQuantizeLSTM" in text else None
            if op:
                raise LstmEdgeError(
                    f"OpenVINO has no {op} (com.microsoft), so it cannot run the {source.variant} variant",
                    "use --variant fp32/int8-static/fp16 with openvino, or --provider cpu for int8",
                ) from e
            raise LstmEdgeError(
                f"OpenVINO cannot load {source.path.name}: {first_line(text)}",
                "try --provider cpu",
            ) from e
        self.request = self.compiled.create_infer_request()
        self._outs = [self.compiled.output(n) for n in source.output_names[:3]]  # y, hn[, cn]

    def _run(self, x, h0, c0):
        names = self.source.input_names
        feeds = {names[0]: x, names[1]: h0, names[2]: c0} if len(names) >= 3 else {names[0]: x}
        with self._lock:  # one infer request is not re-entrant
            res = self.request.infer(feeds)
            outs = [res[o].copy() for o in self._outs]
        return (outs[0], outs[1], outs[2]) if len(outs) == 3 else (outs[0], h0, c0)

    def _run_feeds(self, feeds):
        try:
            with self._lock:
                res = self.request.infer(feeds)
                return {self._output_name(o): res[o].copy() for o in self.compiled.outputs}
        except Exception as e:  # RuntimeError with a long C++ trace
            raise LstmEdgeError(f"OpenVINO failed: {first_line(e)}", "try --provider cpu") from e

    def _output_name(self, port) -> str:
        """The graph's own name for an output: OpenVINO gives a port every tensor name it merged into it, and
        get_any_name() may pick a producer's (measured: a bidirectional model's `y`)."""
        sig = self.source.signature
        wanted = set(self.source.output_names) | ({p.name for p in sig.outputs} if sig is not None else set())
        return next((n for n in port.get_names() if n in wanted), port.get_any_name())

    def version(self) -> str:
        """OpenVINO's version string."""
        return self.ov.get_version()

    def describe(self) -> dict:
        """Runner.describe plus the inference precision and thread count OpenVINO actually compiled with."""
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        return super().describe() | {
            "inference_precision": str(hint),
            "threads": self.compiled.get_property("INFERENCE_NUM_THREADS"),
        }

    def bind_step(self, x: np.ndarray, states: tuple[tuple[np.ndarray, ...], ...]) -> Binding:
        """The model compiled for one step at a static [B, 1, F] shape, its tensors sharing memory with the
        stream's buffers, and two infer requests alternating state pairs. Measured here: ~25 µs a step against
        ~160 µs through the dynamic-shape model with a feed dict."""
        ov, s = self.ov, self.source
        names, outs = s.input_names, s.output_names
        shape = list(states[0][0].shape)
        model = self.core.read_model(str(s.path))
        model.reshape({names[0]: list(x.shape), **{n: shape for n in names[1:3]}})
        compiled = self.core.compile_model(model, "CPU", self._config)
        y = np.zeros(tuple(compiled.output(outs[0]).get_shape()), np.float32)
        shared = lambda a: ov.Tensor(a, shared_memory=True)  # noqa: E731
        requests = []
        for src, dst in ((0, 1), (1, 0)):
            req = compiled.create_infer_request()
            req.set_tensor(names[0], shared(x))
            req.set_tensor(outs[0], shared(y))
            for name, a in zip(names[1:3], states[src], strict=True):
                req.set_tensor(name, shared(a))
            for name, a in zip(outs[1:3], states[dst], strict=True):
                req.set_tensor(name, shared(a))
            requests.append(req)

        def step(k: int) -> np.ndarray:
            requests[k].infer()
            return y.copy()

        return Binding(step)

"""OpenVINO reading the ONNX file. f32 inference precision by default: its CPU default here is bf16, which breaks
parity; bf16 only on request."""

from __future__ import annotations

from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes.base import Runner, RunnerOptions, Source


class OpenVinoRunner(Runner):
    runtime = "openvino"

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        super().__init__(source, options)
        try:
            import openvino as ov
        except ImportError as e:
            raise LstmEdgeError("OpenVINO is not installed", "pip install 'lstm-edge[openvino]'") from e
        if options.precision_hint not in ("f32", "bf16"):
            raise LstmEdgeError(f"unknown OpenVINO precision {options.precision_hint!r}", "choose f32 or bf16")
        self.ov = ov
        config = {"INFERENCE_PRECISION_HINT": options.precision_hint}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        try:
            core = ov.Core()
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
                f"OpenVINO cannot load {source.path.name}: {text.strip().splitlines()[0][:300]}",
                "try --provider cpu",
            ) from e
        self.request = self.compiled.create_infer_request()
        self._outs = [self.compiled.output(n) for n in source.output_names[:3]]

    def _run(self, x, h0, c0):
        names = self.source.input_names
        feeds = {names[0]: x, names[1]: h0, names[2]: c0} if len(names) >= 3 else {names[0]: x}
        with self._lock:  # one infer request is not re-entrant
            res = self.request.infer(feeds)
            outs = [res[o].copy() for o in self._outs]
        return (outs[0], outs[1], outs[2]) if len(outs) == 3 else (outs[0], h0, c0)

    def version(self) -> str:
        return self.ov.get_version()

    def describe(self) -> dict:
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        return super().describe() | {
            "inference_precision": str(hint),
            "threads": self.compiled.get_property("INFERENCE_NUM_THREADS"),
        }

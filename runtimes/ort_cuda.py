"""ONNX Runtime on CUDA — never silently on the CPU: a missing provider, a package clash, missing CUDA/cuDNN
libraries, or LSTM nodes placed on the CPU each fail with the reason (unless allow_fallback)."""

from __future__ import annotations

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import RunnerOptions
from lstm_edge.runtimes.ort_cpu import OrtRunner
from lstm_edge.runtimes.probes import cuda_unavailable_reason
from lstm_edge.runtimes.source import Source
from lstm_edge.runtimes.stream import Binding


class OrtCudaRunner(OrtRunner):
    """ONNX Runtime on CUDA; refuses (LstmEdgeError) rather than falling back to the CPU unless allow_fallback."""

    runtime = "onnxruntime-cuda"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def __init__(self, source: Source, options: RunnerOptions) -> None:
        reason = cuda_unavailable_reason()
        if reason:
            problem, _, fix = reason.partition(" — ")
            raise LstmEdgeError(f"CUDA requested but unavailable: {problem}", fix)
        self.fallback: str | None = None
        super().__init__(source, options)
        if "CUDAExecutionProvider" not in self.session.get_providers():
            raise LstmEdgeError(
                "CUDA requested but the CUDA provider did not load (CUDA or cuDNN libraries not found)",
                "install the CUDA 12/13 runtime and cuDNN 9 that this onnxruntime-gpu needs, or run `lstm-edge doctor`",
            )

    def session_options(self):
        """OrtRunner's options, plus no silent CPU fallback unless allow_fallback."""
        so = super().session_options()
        if not self.options.allow_fallback:
            # Session creation then fails, naming the node, if any node would be placed on the CPU.
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        return so

    def _create_session(self, so):
        try:
            return self.ort.InferenceSession(str(self.source.path), so, providers=self.providers)
        except Exception as e:
            msg = first_line(e)
            if "fallback" in msg.lower() or "cpu" in msg.lower():
                raise LstmEdgeError(
                    f"some nodes cannot run on CUDA and would fall back to the CPU: {msg}",
                    "pass --allow-fallback to accept that",
                ) from e
            raise LstmEdgeError(
                f"ONNX Runtime (CUDA) cannot load {self.source.path.name}: {msg}", "check `lstm-edge doctor`"
            ) from e

    def device(self) -> str:
        """Always "cuda:0": the runner refuses to open where the CUDA provider did not load."""
        return "cuda:0"

    def bind_step(self, x: np.ndarray, states: tuple[tuple[np.ndarray, ...], ...]) -> Binding:
        """State stays on the GPU between steps (two device pairs, alternating); only x_t and y cross the bus.
        The host pairs mirror the device pairs only when the stream reads (pull) or sets (push) its state."""
        ort, session = self.ort, self.session
        names, outs = self._names, self.source.output_names
        shape = list(states[0][0].shape)
        new = ort.OrtValue.ortvalue_from_shape_and_type
        x_dev = new(list(x.shape), np.float32, "cuda", 0)
        dev = [[new(shape, np.float32, "cuda", 0) for _ in pair] for pair in states]
        bindings = []
        for src, dst in ((0, 1), (1, 0)):
            b = session.io_binding()
            b.bind_ortvalue_input(names[0], x_dev)
            b.bind_output(outs[0], "cpu")
            for name, v in zip(names[1:3], dev[src], strict=True):
                b.bind_ortvalue_input(name, v)
            for name, v in zip(outs[1:3], dev[dst], strict=True):
                b.bind_ortvalue_output(name, v)
            bindings.append(b)

        def step(k: int) -> np.ndarray:
            x_dev.update_inplace(x)
            session.run_with_iobinding(bindings[k])
            return bindings[k].copy_outputs_to_cpu()[0]

        def pull(k: int) -> None:
            for host, v in zip(states[k], dev[k], strict=True):
                np.copyto(host, v.numpy())

        def push(k: int) -> None:
            for host, v in zip(states[k], dev[k], strict=True):
                v.update_inplace(host)

        push(0)  # the stream starts from zeros
        return Binding(step, pull, push)

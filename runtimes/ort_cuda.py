"""ONNX Runtime on CUDA — never silently on the CPU: a missing provider, a package clash, missing CUDA/cuDNN
libraries, or LSTM nodes placed on the CPU each fail with the reason (unless allow_fallback)."""

from __future__ import annotations

import importlib.metadata as md

import numpy as np

from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.runtimes.base import RunnerOptions, Source, Stream
from lstm_edge.runtimes.ort_cpu import OrtRunner, import_ort


def ort_packages() -> list[str]:
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"):
        try:
            md.version(dist)
            found.append(dist)
        except md.PackageNotFoundError:
            pass
    return found


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA provider cannot run here, or None when it is available."""
    pkgs = ort_packages()
    if "onnxruntime" in pkgs and "onnxruntime-gpu" in pkgs:
        return (
            "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other's files — "
            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'lstm-edge[cuda]'"
        )
    try:
        ort = import_ort("cuda")
    except LstmEdgeError:
        return "ONNX Runtime is not installed — pip install 'lstm-edge[cuda]'"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            "this onnxruntime has no CUDA provider (the CPU package is installed) — "
            "pip uninstall -y onnxruntime && pip install 'lstm-edge[cuda]'"
        )
    return None


class OrtCudaRunner(OrtRunner):
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
        return "cuda:0"

    def stream(self, batch: int = 1) -> Stream:
        super().stream(batch)  # the checks
        return CudaStream(self, batch)


class CudaStream(Stream):
    """State stays on the GPU between steps (two device buffers, alternating); only x_t and y cross the bus."""

    def __init__(self, runner: OrtCudaRunner, batch: int = 1) -> None:
        super().__init__(runner, batch)
        ort, s = runner.ort, runner.source
        shape = list(self._shape)
        self._x_dev = ort.OrtValue.ortvalue_from_shape_and_type([batch, 1, s.input_size], np.float32, "cuda", 0)
        self._state = [
            [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0) for _ in range(2)]
            for _ in range(2)
        ]
        self._bindings = []
        names, outs = runner._names, s.output_names
        for src, dst in ((0, 1), (1, 0)):
            b = runner.session.io_binding()
            b.bind_ortvalue_input(names[0], self._x_dev)
            b.bind_ortvalue_input(names[1], self._state[src][0])
            b.bind_ortvalue_input(names[2], self._state[src][1])
            b.bind_output(outs[0], "cpu")
            b.bind_ortvalue_output(outs[1], self._state[dst][0])
            b.bind_ortvalue_output(outs[2], self._state[dst][1])
            self._bindings.append(b)
        self._cur = 0
        self._upload()  # zeros

    def reset(self) -> None:
        super().reset()
        self._upload()

    def _upload(self) -> None:
        self._state[self._cur][0].update_inplace(self._h)
        self._state[self._cur][1].update_inplace(self._c)

    def _advance(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != 1:  # chunks: plain run from the host copy of the state
            np.copyto(self._h, self._state[self._cur][0].numpy())
            np.copyto(self._c, self._state[self._cur][1].numpy())
            y = super()._advance(x)
            self._upload()
            return y
        self._x_dev.update_inplace(np.ascontiguousarray(x))
        b = self._bindings[self._cur]
        self.runner.session.run_with_iobinding(b)
        self._cur ^= 1
        return b.copy_outputs_to_cpu()[0]

    @property
    def state(self):
        h, c = self._state[self._cur]
        return h.numpy(), c.numpy()

    @state.setter
    def state(self, value) -> None:
        Stream.state.fset(self, value)
        self._upload()

"""Export at the seed's size two ways — lstm-edge's weight-level builder and torch.onnx (dynamo) with constant
folding — and compare export time, node counts and the ORT streaming step, interleaved in one run.

    .venv/bin/python benchmarks/graph_forms.py
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import torch

from lstm_edge.export import export_onnx
from lstm_edge.model import LSTMModel, ModelConfig


class Plain(torch.nn.Module):
    """The same network as a user would write it: nn.LSTM + Linear, state in and out."""

    def __init__(self, m: LSTMModel) -> None:
        super().__init__()
        self.lstm, self.fc = m.lstm, m.head

    def forward(self, x, state):
        out, (h, c) = self.lstm(x, state)
        return self.fc(h[-1]), (h, c)


def session(proto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main() -> None:
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=100, hidden_size=256, num_layers=2, output_size=1)).eval()
    t = time.perf_counter()
    ours = export_onnx(model)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    dynamo = export_onnx(Plain(model).eval(), torch.randn(2, 5, 100), opset=18)
    t_dyn = time.perf_counter() - t
    sessions = {"lstm-edge builder": session(ours), "torch.onnx dynamo + folding": session(dynamo)}
    nodes = {"lstm-edge builder": len(ours.graph.node), "torch.onnx dynamo + folding": len(dynamo.graph.node)}
    x = np.random.rand(1, 1, 100).astype(np.float32)
    h = np.zeros((2, 1, 256), np.float32)
    samples = {k: [] for k in sessions}
    for _ in range(40):
        for k, s in sessions.items():  # interleaved
            for _ in range(50):
                t0 = time.perf_counter()
                s.run(None, {"x": x, "h0": h, "c0": h})
                samples[k].append(time.perf_counter() - t0)
    base = np.median(samples["torch.onnx dynamo + folding"])
    print(f"export (validation included): builder {t_ours:.2f}s, dynamo {t_dyn:.2f}s")
    print("| graph | nodes | streaming step p50 µs (ORT CPU, 1 thread, feed dict) | vs dynamo |")
    print("|---|---|---|---|")
    for k, v in samples.items():
        print(f"| {k} | {nodes[k]} | {np.median(v) * 1e6:.1f} | {base / np.median(v):.2f}× |")


if __name__ == "__main__":
    main()

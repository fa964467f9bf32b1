"""Why tract's float32 error grows with T: each runtime's sigmoid bias, and each runtime's error against the float64
reference over T. The measurement behind tolerances.FP32_SIGMOID_BIAS_PER_STEP.

    .venv/bin/python benchmarks/fp32_drift.py [--draws 8] [--batch 16] [BUNDLE]

Part 1 runs a one-node Sigmoid graph on a dense float32 grid z ∈ [-16, 16] and prints the worst mean signed error
over 0.25-wide bins (a forget gate sitting in such a bin drifts the cell state by that much per step). Part 2 prints
the worst max scaled error of y/hn/cn against the float64 checkpoint at T ∈ {100, 300, 1000}, per runtime.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.data import probe_inputs
from lstm_edge.environment import available_providers
from lstm_edge.tolerances import fp32_tolerance, scaled_error


def sigmoid_bias(providers: list[str]) -> None:
    z = np.linspace(-16, 16, 4_000_001).astype(np.float32)
    exact = 1 / (1 + np.exp(-z.astype(np.float64)))
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n"]) for n in ("z", "s")]
    graph = helper.make_graph([helper.make_node("Sigmoid", ["z"], ["s"])], "sigmoid", [vi[0]], [vi[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    bins = np.minimum(np.digitize(z, np.arange(-16, 16.01, 0.25)), 128)  # z = 16 joins the last bin
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sigmoid.onnx"
        onnx.save(model, str(path))
        results = {"exact float32 rounding": exact.astype(np.float32)}
        if "cpu" in providers:
            import onnxruntime as ort

            results["cpu"] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
        if "tract" in providers:
            import tract

            results["tract"] = tract.onnx().load(str(path)).into_model().into_runnable().run([z])[0].to_numpy()
    for name, s in results.items():
        d = s.astype(np.float64) - exact
        means = np.bincount(bins, d) / np.maximum(np.bincount(bins), 1)
        k = int(np.argmax(np.abs(means)))
        kp = 65 + int(np.argmax(np.abs(means[65:])))  # z > 0: where a forget gate keeps the cell state
        print(
            f"sigmoid {name:>22}: worst bin mean bias {means[k]:+.2e} (z ≈ {-16 + (k - 1) * 0.25:+.2f}), "
            f"for z > 0 {means[kp]:+.2e} (z ≈ {-16 + (kp - 1) * 0.25:+.2f}), max |Δ| {np.abs(d).max():.2e}"
        )


def error_over_t(bundle: str, providers: list[str], draws: int, batch: int) -> None:
    config = Bundle.open(bundle).config
    reference = lstm_edge.load(bundle, provider="torch", float64=True)
    runners = {p: lstm_edge.load(bundle, provider=p) for p in providers}
    for T in (100, 300, 1000):
        worst: dict[str, list[float]] = {p: [] for p in runners}
        for k in range(draws):
            x, h0, c0 = probe_inputs(config, batch, T, bool(k % 2), 90_000 + k)
            y, (h, c) = reference.run(x, (h0, c0))
            for p, r in runners.items():
                yy, (hh, cc) = r.run(x, (h0, c0))
                worst[p].append(max(scaled_error(a, b).max() for a, b in ((yy, y), (hh, h), (cc, c))))
        cells = [f"{p} max {max(v):.1e} (bound {fp32_tolerance(T, p):.1e})" for p, v in worst.items()]
        print(f"T={T:>4} B={batch} {draws} draws: " + " · ".join(cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    avail = available_providers()
    providers = [p for p in ("torch", "cpu", "openvino", "tract") if avail[p] is None]
    sigmoid_bias(providers)
    if args.draws > 0:
        error_over_t(args.bundle, providers, args.draws, args.batch)


if __name__ == "__main__":
    main()

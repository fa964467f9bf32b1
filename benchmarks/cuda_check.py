"""The CUDA proof, as one prepared script for a GPU machine (onnxruntime-gpu installed, no CPU onnxruntime):
fp32 and fp16 parity against golden.npz, node placement (no silent CPU fallback), and streaming and batch latency
beside ORT CPU. Writes JSON to the path given (default: $OUT/cuda_check.json).

    python benchmarks/cuda_check.py [BUNDLE] [--json PATH]

On this project's CPU machines it exits 2 with the reason (no CUDA provider), which is the point: never a silent
CPU run.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

import lstm_edge
from lstm_edge.bench import median_us
from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError
from lstm_edge.tolerances import FP16_ABS, FP32_ABS, scaled_error


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "cuda_check.json"))
    args = ap.parse_args()
    bundle = Bundle.open(args.bundle)
    golden = bundle.golden()
    report: dict = {"bundle": str(bundle.root), "parity": {}, "latency_us": {}}
    try:
        for variant, tol in (("fp32", FP32_ABS), ("fp16", FP16_ABS)):
            if variant not in bundle.variants():
                continue
            r = lstm_edge.load(bundle.root, provider="cuda", variant=variant)  # fails on any CPU placement
            report["describe_" + variant] = r.describe()
            worst = 0.0
            for a in golden.values():
                y, (h, c) = r.run(a["x"], (a["h0"], a["c0"]))
                worst = max(worst, *(float(scaled_error(g, a[k]).max()) for g, k in ((y, "y"), (h, "hn"), (c, "cn"))))
            report["parity"][variant] = {"max_scaled_error": worst, "tolerance": tol, "passed": worst <= tol}
    except LstmEdgeError as e:
        print(f"error: {e}")
        raise SystemExit(2) from e
    F = bundle.config.input_size
    x1 = np.random.default_rng(0).random((1, F), dtype=np.float32)
    xb = np.random.default_rng(1).random((64, 100, F), dtype=np.float32)
    for provider in ("cuda", "cpu"):
        try:
            r = lstm_edge.load(bundle.root, provider=provider)
        except LstmEdgeError as e:
            report["latency_us"][provider] = {"error": str(e)}
            continue
        s = r.stream()
        for _ in range(50):
            s.step(x1)
        r.run(xb)
        report["latency_us"][provider] = {
            "stream_step_p50": median_us(lambda s=s: s.step(x1), 1000),
            "B64xT100": median_us(lambda r=r: r.run(xb), 20),
        }
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    raise SystemExit(0 if all(p["passed"] for p in report["parity"].values()) else 1)


if __name__ == "__main__":
    main()

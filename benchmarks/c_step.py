"""The `c` runtime's streaming step against ONNX Runtime CPU's, 1 thread, interleaved in one run.

    .venv/bin/python benchmarks/c_step.py [--seed-size] [--steps 4000] [--json OUT]

Targets, each a Stream stepping one sample (B=1) with state carried, called from Python:
ORT CPU fp32 and int8 (IO-bound stream, 1 thread), and the C library fp32 and int8 built with `-O3 -march=native`
(the runner's default) and with `-O2` only (what a generic build gets: no AVX, no vectorized gate loops beyond SSE2).
Also the C step without Python: `NAME_run` over 1,000 steps in one call, per step. Every target takes its turn chunk by
chunk (50 steps), so ratios survive a noisy machine; figures are medians over all steps.

Default: the shipped adding model (2 → 64 × 2). --seed-size: random weights at input 100, hidden 256, 2 layers (speed
does not depend on training), exported and dynamically quantized into a temporary bundle first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lstm_edge
from lstm_edge.runtimes import RunnerOptions, open_runner


def seed_model_and_bundle(root: Path) -> tuple[Path, torch.nn.Module]:
    """As benchmarks/seed_size.py: random weights at the seed's size, exported and dynamically quantized into
    root/seed; returns the bundle and the model (benchmarks/peers.py builds its peers from the same weights)."""
    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.export.quantize import QuantizeConfig, quantize_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=100, hidden_size=256, num_layers=2, task="seed")).eval()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 50, 100)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(X))[0].numpy() + rng.normal(0, 0.1, (200, 1)).astype(np.float32)
    np.savez(root / "data.npz", X=X, y=y)
    out = root / "seed"
    export_bundle(model, out, ExportConfig(name="seed"))
    try:
        quantize_bundle(out, QuantizeConfig(mode="dynamic", data=str(root / "data.npz"), progress=False))
    except lstm_edge.errors.ParityError:
        pass  # over the metric budget on random weights: the variant is written all the same, which is what we time
    return out, model


def seed_bundle(root: Path) -> Path:
    """The seed-size bundle of seed_model_and_bundle, exported and quantized into root/seed."""
    return seed_model_and_bundle(root)[0]


def measure(bundle: Path, steps: int) -> dict:
    cfg = lstm_edge.bundle.Bundle.open(bundle).config
    targets = {
        "ORT CPU fp32": open_runner(bundle, "cpu", options=RunnerOptions(threads=1)),
        "ORT CPU int8": open_runner(bundle, "cpu", options=RunnerOptions(variant="int8", threads=1)),
        "C fp32 -O3 -march=native": open_runner(bundle, "c", options=RunnerOptions(variant="fp32")),
        "C int8 -O3 -march=native": open_runner(bundle, "c", options=RunnerOptions(variant="int8")),
        "C fp32 -O2": open_runner(bundle, "c", options=RunnerOptions(variant="fp32", cflags=("-O2",))),
        "C int8 -O2": open_runner(bundle, "c", options=RunnerOptions(variant="int8", cflags=("-O2",))),
    }
    x = np.random.default_rng(0).random(cfg.input_size, dtype=np.float32)
    streams = {k: r.stream() for k, r in targets.items()}
    for s in streams.values():
        for _ in range(50):
            s.step(x)
    samples: dict[str, list[float]] = {k: [] for k in targets}
    inner: dict[str, list[float]] = {k: [] for k in targets if k.startswith("C ")}
    xs = np.random.default_rng(1).random((1, 1000, cfg.input_size), dtype=np.float32)
    perf = time.perf_counter
    for _ in range(max(1, steps // 50)):
        for k, s in streams.items():
            step, out = s.step, samples[k]
            for _ in range(50):
                t0 = perf()
                step(x)
                out.append(perf() - t0)
        for k in inner:  # the C step without Python: one call running 1000 steps
            r = targets[k]
            t0 = perf()
            r.run(xs)
            inner[k].append((perf() - t0) / 1000)
    us = {k: float(np.median(v) * 1e6) for k, v in samples.items()}
    inner_us = {k: float(np.min(v) * 1e6) for k, v in inner.items()}  # min: a 10-ms call is often preempted
    return {
        "bundle": str(bundle),
        "model": {"input": cfg.input_size, "hidden": cfg.hidden_size, "layers": cfg.num_layers},
        "stream_step_us_median": us,
        "c_step_without_python_us_min": inner_us,
        "ratio_to_ort_same_precision": {
            k: v / us["ORT CPU int8" if "int8" in k else "ORT CPU fp32"] for k, v in us.items() if k.startswith("C ")
        },
        "steps_per_target": len(samples["ORT CPU fp32"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--seed-size", action="store_true")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = seed_bundle(Path(tmp)) if a.seed_size else Path(a.bundle)
        r = measure(bundle, a.steps)
    m = r["model"]
    print(f"model {m['input']} → {m['hidden']} × {m['layers']}; median µs per streaming step (B=1), 1 thread:")
    for k, v in r["stream_step_us_median"].items():
        ratio = r["ratio_to_ort_same_precision"].get(k)
        inner = r["c_step_without_python_us_min"].get(k)
        print(
            f"  {k:<26} {v:8.2f}"
            + (f"   {ratio:.2f}× ORT's time ({1 / ratio:.1f}× faster)" if ratio else "")
            + (f"   without Python (min) {inner:.2f}" if inner else "")
        )
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The `c` runtime's full-sequence run, batched (NAME_run_batch) against its per-row path, torch and bare ORT.

    .venv/bin/python benchmarks/c_batch.py [--rounds 15] [--json benchmarks/results/c_batch.json]

Issue 25 item 1. Cases: B1·T100 and B64·T100 at the seed's size (input 100, hidden 256, 2 layers, random weights:
speed does not depend on training) and at the shipped adding model's (2 → 64 × 2). Contenders, 1 thread each:
`c fp32 batched` (runner.run, NAME_run_batch), `c fp32 per-row` (runner.run with runner.batched = False: NAME_run
per batch row, the path before), the same two for the int8 scheme, `torch` (the checkpoint's LSTMModel, nn.LSTM on oneDNN, torch.set_num_threads(1),
no_grad) and `bare ORT` (onnxruntime.InferenceSession on model.onnx, intra_op_num_threads=1, session.run). Every
round runs every contender once per case, in rotating order, timed by process CPU time beside wall time; figures
are medians over rounds and ratios are of CPU-time medians. The machine's load and CPU model are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lstm_edge
from lstm_edge.checkpoint import load_checkpoint
from lstm_edge.environment import cpu_model
from lstm_edge.runtimes import RunnerOptions, open_runner

CASES = ((1, 100), (64, 100))


def seed_bundle(root: Path) -> Path:
    """Random weights at the seed's size, exported (no quantization: only fp32 is timed here)."""
    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=100, hidden_size=256, num_layers=2, task="seed")).eval()
    out = root / "seed"
    export_bundle(model, out, ExportConfig(name="seed"))
    return out


def contenders(bundle: Path) -> dict:
    """name → (callable taking x, None): the four ways to run a full sequence, each on 1 thread."""
    import onnxruntime as ort  # deferred: optional package

    b = lstm_edge.bundle.Bundle.open(bundle)
    cfg = b.config
    c = open_runner(bundle, "c", options=RunnerOptions(variant="fp32"))
    c8 = open_runner(bundle, "c", options=RunnerOptions(variant="int8"))
    model = load_checkpoint(b.checkpoint())[0].eval()
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(bundle / "model.onnx"), so, providers=["CPUExecutionProvider"])

    def batched(runner, on):
        def run(x):
            runner.batched = on
            return runner.run(x)[0]

        return run

    def torch_run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))[0].numpy()

    def ort_run(x):
        h = np.zeros((cfg.num_layers, x.shape[0], cfg.hidden_size), np.float32)
        return sess.run(None, {"x": x, "h0": h, "c0": h})[0]

    return {
        "c fp32 batched": batched(c, True),
        "c fp32 per-row": batched(c, False),
        "c int8 batched": batched(c8, True),
        "c int8 per-row": batched(c8, False),
        "torch": torch_run,
        "bare ORT": ort_run,
    }


def measure(name: str, bundle: Path, rounds: int) -> dict:
    """Medians (CPU and wall, ms) per case and contender, interleaved in rotating order, and the ratios."""
    runs = contenders(bundle)
    F = lstm_edge.bundle.Bundle.open(bundle).config.input_size
    xs = {bt: np.random.default_rng(sum(bt)).standard_normal((*bt, F)).astype(np.float32) for bt in CASES}
    for x in xs.values():  # warm-up, and the contenders agree
        ys = {k: f(x) for k, f in runs.items()}
        for v in ("fp32", "int8"):
            assert np.array_equal(ys[f"c {v} batched"], ys[f"c {v} per-row"]), f"batched and per-row C {v} differ"
        assert np.allclose(ys["c fp32 batched"], ys["torch"], atol=1e-4), "C and torch differ"
    cpu = {bt: {k: [] for k in runs} for bt in CASES}
    wall = {bt: {k: [] for k in runs} for bt in CASES}
    names = list(runs)
    for r in range(rounds):
        for bt, x in xs.items():
            for k in names[r % len(names) :] + names[: r % len(names)]:
                c0, w0 = time.process_time(), time.perf_counter()
                runs[k](x)
                cpu[bt][k].append(time.process_time() - c0)
                wall[bt][k].append(time.perf_counter() - w0)
    out = {}
    for bt in CASES:
        med = {k: float(np.median(v) * 1e3) for k, v in cpu[bt].items()}
        others = ("c fp32 per-row", "c int8 per-row", "torch", "bare ORT")
        out[f"B{bt[0]}xT{bt[1]}"] = {
            "cpu_ms_median": med,
            "wall_ms_median": {k: float(np.median(v) * 1e3) for k, v in wall[bt].items()},
            "ratios": {
                f"{a} / {b}": med[a] / med[b]
                for a in ("c fp32 batched", "c int8 batched", "c fp32 per-row", "c int8 per-row")
                for b in others
                if a != b
            },
        }
    return {"model": name, "bundle": str(bundle), "cases": out}


def main() -> None:
    """Run both sizes, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/c_batch.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure("seed (100 → 256 × 2)", seed_bundle(Path(tmp)), a.rounds)]
        results.append(measure("adding (2 → 64 × 2)", Path("models/adding"), a.rounds))
    report = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rounds": a.rounds,
        "threads": 1,
        "results": results,
    }
    print(f"{report['cpu']}, load {load_before[0]:.1f} → {report['load_after'][0]:.1f}; CPU-time medians, ms")
    for res in results:
        for case, r in res["cases"].items():
            med = r["cpu_ms_median"]
            cols = "  ".join(f"{k} {v:8.2f}" for k, v in med.items())
            q = r["ratios"]
            keys = ("c fp32 batched / c fp32 per-row", "c fp32 batched / torch", "c fp32 batched / bare ORT",
                    "c int8 batched / c int8 per-row", "c int8 batched / torch", "c fp32 per-row / torch")  # fmt: skip
            ratios = "  ".join(f"{k} {q[k]:.2f}" for k in keys)
            print(f"{res['model']:<22} {case:<9} {cols}\n    {ratios}")
    a.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

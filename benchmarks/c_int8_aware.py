"""int8-aware fine-tuning of a bundle's checkpoint for the `c` int8 scheme, and what it buys on held-out data.

    .venv/bin/python benchmarks/c_int8_aware.py [BUNDLE] [--epochs 2] [--samples 2000] [--out FINETUNED.pt]

The same fine-tuning as `lstm-edge train --int8-aware-epochs N --int8-scheme c` (lstm_edge.train.int8_aware: lr/20,
cosine, keeps the epoch with the best simulated-int8 validation metric), applied to the bundle's trained checkpoint,
with the input range the deployed C uses. Reports fp32 and int8-C MSE (the simulation is the C bit for bit) before
and after, on held-out sequences. Deterministic given the seed; CPU minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lstm_edge.bundle import Bundle
from lstm_edge.c_int8_sim import CInt16x8
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lstm_edge.codegen import input_range
from lstm_edge.data import held_out, load_task, metric
from lstm_edge.train import TrainConfig, int8_aware


def evaluate(model, X: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, float]:
    sim = CInt16x8()
    with torch.no_grad():
        xs = torch.from_numpy(X)
        fp32 = np.concatenate([model(xs[i : i + 500])[0].numpy() for i in range(0, len(X), 500)])
        int8 = np.concatenate([sim.forward(model, xs[i : i + 500])[0].numpy() for i in range(0, len(X), 500)])
    return metric(kind, fp32, y)[1], metric(kind, int8, y)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    bundle = Bundle.open(a.bundle)
    model, config = load_checkpoint(bundle.checkpoint())
    training = read_checkpoint(bundle.checkpoint()).get("training") or {}
    tcfg = training.get("config") or {}
    seed, seq_len = int(training.get("seed") or 0), int(tcfg.get("seq_len") or 100)
    if not (config.x_min and config.x_max):  # the range the deployed C's input scale comes from
        config.x_min, config.x_max, _ = input_range(bundle)
    X, y = held_out(config.task, seq_len, a.samples, seed)
    before = evaluate(model, X, y, config.kind)
    cfg = TrainConfig(
        task=config.task,
        seq_len=seq_len,
        samples=int(tcfg.get("samples") or 12000),
        batch_size=int(tcfg.get("batch_size") or 64),
        lr=float(tcfg.get("lr") or 2e-3),
        int8_aware_epochs=a.epochs,
        int8_scheme="c",
        seed=seed,
    )
    data = load_task(config.task, seq_len, cfg.samples, seed)
    t = time.perf_counter()
    tuned = int8_aware(model, data, cfg)
    seconds = time.perf_counter() - t
    after = evaluate(model, X, y, config.kind)
    r = {
        "bundle": str(bundle.root),
        "samples": len(X),
        "before": {"fp32": before[0], "int8_c": before[1], "int8_vs_fp32": before[1] / before[0] - 1},
        "after": {"fp32": after[0], "int8_c": after[1], "int8_vs_fp32": after[1] / after[0] - 1},
        "int8_after_vs_fp32_before": after[1] / before[0] - 1,
        "kept_epoch": tuned["kept_epoch"],
        "history": tuned["history"],
        "seconds": seconds,
    }
    print(json.dumps(r, indent=1))
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")
    if a.out:
        save_checkpoint(model, a.out)


if __name__ == "__main__":
    main()

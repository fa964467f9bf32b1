"""int8-aware fine-tuning of a bundle's checkpoint, and what it buys each int8 scheme on held-out data.

    .venv/bin/python benchmarks/c_int8_aware.py [BUNDLE] [--scheme c|ort] [--epochs 3] [--samples 2000] [--out T.pt]

Runs exactly `lstm-edge train --from CKPT --epochs 0 --int8-aware-epochs N --int8-scheme S` (lstm_edge.train:
lr/20, cosine, keeps the epoch with the best simulated-int8 validation metric, on the split recorded in the
checkpoint), then reports fp32, ORT int8 (simulated, lstm_edge.int8_sim) and C int8 (simulated, bit for bit the C)
MSE before and after on held-out sequences (TaskSpec.recorded → held_out "test"). Deterministic given the seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lstm_edge.bundle import Bundle
from lstm_edge.c_int8_sim import CInt16x8
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint
from lstm_edge.codegen import input_range
from lstm_edge.data import TaskSpec, held_out, metric
from lstm_edge.int8_sim import OrtDynamicInt8
from lstm_edge.train import TrainConfig, train_to_file


def evaluate(ckpt: Path, X: np.ndarray, y: np.ndarray, x_range: tuple | None) -> dict[str, float]:
    """Held-out metric of fp32, ORT int8 and C int8 (both simulated) for the checkpoint at `ckpt`."""
    model, config = load_checkpoint(ckpt)
    if not (config.x_min and config.x_max) and x_range:  # the range the deployed C's input scale comes from
        config.x_min, config.x_max = x_range
    forwards = {
        "fp32": lambda b: model(b)[0],
        "int8_ort": lambda b: OrtDynamicInt8().forward(model, b)[0],
        "int8_c": lambda b: CInt16x8().forward(model, b)[0],
    }
    out = {}
    with torch.no_grad():
        xs = torch.from_numpy(X)
        for name, f in forwards.items():
            pred = np.concatenate([f(xs[i : i + 500]).numpy() for i in range(0, len(X), 500)])
            out[name] = metric(config.kind, pred, y)[1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--scheme", choices=("c", "ort"), default="c")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3, help="the training lr; fine-tuning uses lr/20")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    bundle = Bundle.open(a.bundle)
    base = Path(bundle.checkpoint())
    _, config = load_checkpoint(base)
    spec = TaskSpec.recorded(config.task, read_checkpoint(base).get("training"))
    X, y = held_out(spec, "test", a.samples)
    x_range = input_range(bundle)[:2]
    out = a.out or Path(tempfile.mkdtemp()) / "tuned.pt"
    cfg = TrainConfig(init=str(base), epochs=0, int8_aware_epochs=a.epochs, int8_scheme=a.scheme, lr=a.lr)
    t = time.perf_counter()
    result = train_to_file(replace(cfg, progress=True), out)
    seconds = time.perf_counter() - t
    before, after = evaluate(base, X, y, x_range), evaluate(out, X, y, None)
    tuned = result.metrics["int8_aware"]
    r = {
        "bundle": str(bundle.root),
        "scheme": a.scheme,
        "epochs": a.epochs,
        "lr": a.lr / 20,
        "samples": len(X),
        "before": before,
        "after": after,
        "change_vs_own_fp32": {
            k: {n: v[n] / v["fp32"] - 1 for n in v if n != "fp32"} for k, v in (("before", before), ("after", after))
        },  # fmt: skip
        "change_vs_fp32_before": {n: after[n] / before["fp32"] - 1 for n in after},
        "kept_epoch": tuned["kept_epoch"],
        "history": tuned["history"],
        "seconds": seconds,
    }
    print(json.dumps(r, indent=1))
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Reproduce the README's speed table at the seed's size (input 100, hidden 256, 2 layers).

    .venv/bin/python benchmarks/seed_size.py [--quick] [--threads 1,all]

Builds a random-weight model of that size (speed does not depend on training), exports and quantizes it, then runs
`lstm-edge bench` with 1 thread and all threads (--threads: bench's thread settings; the README's table is from
--threads 1). Figures go to benchmarks/results/ (JSON, Markdown, PNG).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lstm_edge.checkpoint import save_checkpoint
from lstm_edge.isolated import python_argv
from lstm_edge.model import LSTMModel, ModelConfig

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "artifacts" / "bench-seed"
RESULTS = ROOT / "benchmarks" / "results"


def cli(*args: str) -> None:
    print("$ lstm-edge", " ".join(args), flush=True)
    rc = subprocess.call(python_argv("-m", "lstm_edge.cli", *args))  # -I: nothing from the working folder
    if rc not in (0, 1):  # 1: a variant over budget, which the report shows
        sys.exit(rc)


def seed_checkpoint_and_data(work: Path) -> None:
    """work/seed.pt, a random-weight model at the seed's size (input 100, hidden 256, 2 layers; speed does not depend
    on training), and work/data.npz, 600 sequences of T=50 with its outputs plus N(0, 0.1) noise as targets."""
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=100, hidden_size=256, num_layers=2, output_size=1, task="seed")).eval()
    save_checkpoint(model, work / "seed.pt")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 50, 100)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(X))[0].numpy() + rng.normal(0, 0.1, (600, 1)).astype(np.float32)
    np.savez(work / "data.npz", X=X, y=y)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    # 1 alone where other jobs share the cores: PyTorch at 2 threads collapsed there (measured on the adding model
    # at load ~7 on 2 cores: B8·T100 6.3 s at 2 threads against 7.3 ms at 1; other runners 1.9–13.5 ms).
    ap.add_argument("--threads", default="1,all", help="bench's thread settings")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    seed_checkpoint_and_data(WORK)
    t = time.perf_counter()
    cli("export", str(WORK / "seed.pt"), "--out", str(WORK / "seed"), "--force")
    print(f"export wall time (process included): {time.perf_counter() - t:.2f}s")
    cli("quantize", str(WORK / "seed"), "--data", str(WORK / "data.npz"))
    extra = ["--quick"] if args.quick else []
    cli(
        "bench",
        str(WORK / "seed"),
        "--threads",
        args.threads,
        *extra,
        "--json",
        str(RESULTS / "seed_size.json"),
        "--markdown",
        str(RESULTS / "seed_size.md"),
        "--plot",
        str(RESULTS / "seed_size.png"),
    )


if __name__ == "__main__":
    main()

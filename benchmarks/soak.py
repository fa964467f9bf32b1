"""Soak: 100,000 streaming steps through ORT CPU; RSS must grow by less than 5 MB.

.venv/bin/python benchmarks/soak.py [BUNDLE] [--steps N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lstm_edge


def rss_mb() -> float:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--steps", type=int, default=100_000)
    args = ap.parse_args()
    stream = lstm_edge.load(args.bundle, provider="cpu", threads=1).stream()
    x = np.random.default_rng(0).random((1000, stream.runner.source.input_size), dtype=np.float32)
    for t in range(2000):  # warm-up: allocator pools and ORT arenas settle
        stream.step(x[t % 1000])
    start, t0 = rss_mb(), time.perf_counter()
    samples = []
    for t in range(args.steps):
        stream.step(x[t % 1000])
        if t % 10_000 == 0:
            samples.append(rss_mb())
    growth = rss_mb() - start
    print(
        f"{args.steps} steps in {time.perf_counter() - t0:.1f}s; RSS {start:.1f} → {rss_mb():.1f} MB "
        f"(growth {growth:+.2f} MB; samples every 10k: {', '.join(f'{s:.1f}' for s in samples)})"
    )
    raise SystemExit(0 if growth < 5.0 else 1)


if __name__ == "__main__":
    main()

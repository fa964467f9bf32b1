"""Per-call overhead of one streaming step: runner.run per step (input checks, feed dict, new arrays) against
lstm-edge's stream (buffers bound once, state alternating between two of them), interleaved in one run.

    .venv/bin/python benchmarks/step_overhead.py [BUNDLE ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np

import lstm_edge


def _median_us(fn, rounds: int = 40, per_round: int = 50) -> float:
    samples = []
    for _ in range(rounds):
        for _ in range(per_round):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
    return float(np.median(samples) * 1e6)


def main() -> None:
    bundles = sys.argv[1:] or ["models/adding"]
    print(
        "| bundle | runtime | run() per step µs (checks, feed dict, new arrays) | stream.step µs (bound buffers) | saved |"
    )
    print("|---|---|---|---|---|")
    for b in bundles:
        for provider in ("cpu", "openvino"):
            r = lstm_edge.load(b, provider=provider, threads=1)
            s = r.stream()
            F, L, H = r.source.input_size, r.source.num_layers, r.source.hidden_size
            x = np.random.default_rng(0).random((1, 1, F), dtype=np.float32)
            h = np.zeros((L, 1, H), np.float32)
            state = {"h": h, "c": h.copy()}

            def plain(r=r, x=x, state=state):
                y, (state["h"], state["c"]) = r.run(x, (state["h"], state["c"]))

            def stream(s=s, x=x):
                s.step(x[0])

            for f in (plain, stream):
                for _ in range(100):
                    f()
            a, c = _median_us(plain), _median_us(stream)
            print(f"| {b} | {provider} | {a:.1f} | {c:.1f} | {a - c:.1f} µs ({a / c:.2f}×) |")


if __name__ == "__main__":
    main()

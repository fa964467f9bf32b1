"""Per-call overhead of one streaming step: runner.run per step (input checks, feed dict, new arrays) against
lstm-edge's stream (buffers bound once, state alternating between two of them), measured back to back in one run.

    .venv/bin/python benchmarks/step_overhead.py [BUNDLE ...]
"""

from __future__ import annotations

import sys

import numpy as np

import lstm_edge
from lstm_edge.bench import median_us


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
            a, c = median_us(plain, 2000), median_us(stream, 2000)
            print(f"| {b} | {provider} | {a:.1f} | {c:.1f} | {a - c:.1f} µs ({a / c:.2f}×) |")


if __name__ == "__main__":
    main()

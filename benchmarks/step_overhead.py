"""Per-call overhead of one streaming step, measured back to back in one run (1 thread):

- run() per step: input checks, feed dict, new arrays;
- stream.step: buffers bound once, state alternating between two pairs, with run()'s input checks;
- stream.step with allow_nonfinite: the same without the finiteness check (what the check costs);
- the bound call alone: copy x in, the runtime's run, flip the pair (what step's whole Python layer costs).

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
        "| bundle | runtime | run() per step µs | stream.step µs | saved | step, no finite check µs | finite check "
        "| bound call alone µs | step's Python layer |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for b in bundles:
        for provider in ("cpu", "openvino"):
            r = lstm_edge.load(b, provider=provider, threads=1)
            s = r.stream()
            s_nf = lstm_edge.load(b, provider=provider, threads=1, allow_nonfinite=True).stream()
            F, L, H = r.source.input_size, r.source.num_layers, r.source.hidden_size
            x = np.random.default_rng(0).random((1, 1, F), dtype=np.float32)
            h = np.zeros((L, 1, H), np.float32)
            state = {"h": h, "c": h.copy()}

            def plain(r=r, x=x, state=state):
                y, (state["h"], state["c"]) = r.run(x, (state["h"], state["c"]))

            def stream(s=s, x=x):
                s.step(x[0])

            def no_finite(s=s_nf, x=x):
                s.step(x[0])

            def bare(s=s, x=x):  # what step does after its checks: copy x in, the bound run, flip the pair
                np.copyto(s._x, x)
                s._bound.step(s._cur)
                s._cur ^= 1

            fs = (plain, stream, no_finite, bare)
            for f in fs:
                for _ in range(100):
                    f()
            a, c, n, d = np.median([[median_us(f, 1000) for f in fs] for _ in range(5)], axis=0)
            print(
                f"| {b} | {provider} | {a:.1f} | {c:.1f} | {a - c:.1f} µs ({a / c:.2f}×) | {n:.1f} "
                f"| {c - n:+.1f} µs ({(c / n - 1) * 100:+.1f}%) | {d:.1f} | {c - d:+.1f} µs ({(c / d - 1) * 100:+.1f}%) |"
            )


if __name__ == "__main__":
    main()

"""The per-call tax of lstm-edge's Python layer over ONNX Runtime (issue 25 item 3), in one process, 1 thread.

Contenders, interleaved in rotating rounds, each timed by perf_counter (wall) and process_time (CPU) per call:

- bare `session.run` on x [1, 100, F] with zero state (the ORT session the runner itself holds);
- `runner.run(x)`: the same through lstm-edge's checks (dtype, shape, finiteness, memory plan, zeros for state);
- bare bound step: the stream's IO binding alone (copy x_t in, run_with_iobinding, copy y out);
- `stream.step(x_t)`: the same through the stream's checks;
- `stream.step` with a [1, 1, F] chunk (the general path through check_x).

The tax is the runner's median minus the bare one; the issue's bound: each tax ≤ 10% of the B1·T100 session.run.

    .venv/bin/python benchmarks/call_tax.py [BUNDLE] [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import os
import time
from statistics import median

import numpy as np

import lstm_edge


def per_call(f, calls: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per call of f over `calls` calls."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        f()
    return (time.perf_counter() - w0) / calls * 1e6, (time.process_time() - c0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()

    runner = lstm_edge.load(args.bundle, provider="cpu", threads=1)
    src, session = runner.source, runner.session
    F, L, H = src.input_size, src.num_layers, src.hidden_size
    rng = np.random.default_rng(0)
    x = rng.random((1, 100, F), dtype=np.float32)
    zeros = np.zeros((L, 1, H), np.float32)
    feeds = dict(zip(src.input_names, (x, zeros, zeros), strict=True))
    outs = src.output_names
    stream = runner.stream()
    x_t = rng.random((1, F), dtype=np.float32)
    x_chunk = x_t[:, None, :].copy()

    def bare_run():
        session.run(outs, feeds)

    def runner_run():
        runner.run(x)

    def bare_step(s=stream):  # what step does past its checks
        np.copyto(s._x2d, x_t)
        s._bound.step(s._cur)
        s._cur ^= 1

    def stream_step():
        stream.step(x_t)

    def stream_chunk():
        stream.step(x_chunk)

    fs = {
        "session.run B1·T100": bare_run,
        "runner.run B1·T100": runner_run,
        "bound step (bare)": bare_step,
        "stream.step [1, F]": stream_step,
        "stream.step [1, 1, F]": stream_chunk,
    }
    names = list(fs)
    for f in fs.values():  # warm-up
        per_call(f, 50)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            w, c = per_call(fs[n], args.calls)
            wall[n].append(w)
            cpu[n].append(c)
    W = {n: median(v) for n, v in wall.items()}
    C = {n: median(v) for n, v in cpu.items()}
    print(
        f"call tax, {args.bundle}, ORT {runner.version()} 1 thread; {args.rounds} rounds × {args.calls} calls, "
        f"interleaved; load {os.getloadavg()[0]:.1f}"
    )
    print("| call | wall µs | CPU µs |")
    print("|---|---|---|")
    for n in names:
        print(f"| {n} | {W[n]:.1f} | {C[n]:.1f} |")
    base_w, base_c = W["session.run B1·T100"], C["session.run B1·T100"]
    print("\n| tax | wall µs | CPU µs | CPU tax / session.run B1·T100 (bound ≤ 10%) |")
    print("|---|---|---|---|")
    for n, ref in (
        ("runner.run B1·T100", "session.run B1·T100"),
        ("stream.step [1, F]", "bound step (bare)"),
        ("stream.step [1, 1, F]", "bound step (bare)"),
    ):
        tw, tc = W[n] - W[ref], C[n] - C[ref]
        print(f"| {n} − {ref} | {tw:+.1f} | {tc:+.1f} | {tc / base_c * 100:+.1f}% (wall {tw / base_w * 100:+.1f}%) |")


if __name__ == "__main__":
    main()

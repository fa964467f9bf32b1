"""Issue 25 item 2: the C int8 streaming step at the seed's size against its memory floor, in one run.

    .venv/bin/python benchmarks/c_int8_floor.py [--bundle BUNDLE] [--json benchmarks/results/c_int8_floor.json]

A step (B=1) reads every weight once: int8 W_ih and W_hh of each layer (4H·(F+H) bytes), their per-row float scales
and the float biases, and the head. Nothing else of size is touched, so the step cannot run faster than those bytes
over the bandwidth of the cache level that holds them. Both are measured here, side by side, in C, without Python:

- the floor: a read of a buffer of exactly the step's weight bytes (64-bit words summed: loads and nothing else),
  repeated until hot, compiled like the library (-O3 -march=native): bytes / seconds;
- the step: `NAME_step` of `lstm-edge codegen --precision int8` called in a C loop (chunks of 100 steps, median
  chunk), the same flags.

Rounds alternate (floor, step, floor, step, …) so that load hits both; CPU time (CLOCK_PROCESS_CPUTIME_ID) is
reported beside wall time. The target: step ≤ 2× floor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from c_step import seed_bundle  # noqa: E402  (a sibling script, not a package)

from lstm_edge.bundle import Bundle  # noqa: E402
from lstm_edge.environment import environment  # noqa: E402

DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "PREFIX.h"

static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

/* the bytes read and nothing else: 64-bit words summed (gcc vectorizes it to the widest loads), so the figure is
   the memory system's, not an arithmetic bound (an int8 → int32 widening sum ran at 11 GB/s on a Zen 3, below
   the step itself) */
static int32_t read_all(const int8_t *w, size_t n) {
    uint64_t acc = 0, word;
    for (size_t i = 0; i + 8 <= n; i += 8) { memcpy(&word, w + i, 8); acc += word; }
    return (int32_t)(acc ^ (acc >> 32));
}

int main(int argc, char **argv) {
    size_t bytes = (size_t)atol(argv[1]);
    int rounds = atoi(argv[2]);
    int8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (int8_t)(i * 131u);
    static PREFIX_state s;
    PREFIX_reset(&s);
    float x[UPPER_INPUT_SIZE], y[UPPER_OUTPUT_SIZE];
    for (int i = 0; i < UPPER_INPUT_SIZE; i++) x[i] = 0.01f * (float)(i % 17);
    double *fw = malloc(sizeof(double) * rounds), *fc = malloc(sizeof(double) * rounds);
    double *sw = malloc(sizeof(double) * rounds), *sc = malloc(sizeof(double) * rounds);
    volatile int32_t sink = 0;
    for (int i = 0; i < 200; i++) { PREFIX_step(&s, x, y); sink += read_all(w, bytes); }  /* warm */
    for (int r = 0; r < rounds; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < 100; i++) {
            __asm__ volatile("" : : "r"(w) : "memory");  /* the bytes may have changed: read them every time */
            sink += read_all(w, bytes);
        }
        fw[r] = (now(CLOCK_MONOTONIC) - w0) / 100; fc[r] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / 100;
        w0 = now(CLOCK_MONOTONIC); c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < 100; i++) PREFIX_step(&s, x, y);
        sw[r] = (now(CLOCK_MONOTONIC) - w0) / 100; sc[r] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / 100;
    }
    qsort(fw, rounds, sizeof(double), cmp); qsort(fc, rounds, sizeof(double), cmp);
    qsort(sw, rounds, sizeof(double), cmp); qsort(sc, rounds, sizeof(double), cmp);
    printf("{\"floor_wall_us_min\": %.4f, \"floor_wall_us_median\": %.4f, \"floor_cpu_us_median\": %.4f, "
           "\"step_wall_us_min\": %.4f, \"step_wall_us_median\": %.4f, \"step_cpu_us_median\": %.4f, \"y0\": %g, \"sink\": %d}\n",
           1e6 * fw[0], 1e6 * fw[rounds / 2], 1e6 * fc[rounds / 2], 1e6 * sw[0], 1e6 * sw[rounds / 2],
           1e6 * sc[rounds / 2], (double)y[0], (int)sink);
    return 0;
}
"""


def step_bytes(cfg) -> dict:
    """The bytes one int8 step reads, from the model's sizes: int8 W_ih/W_hh (4H·(F+H) per layer), a float scale
    per gate row of each matrix (2·4H), the float biases (4H, b_ih + b_hh folded) and the float head (O·H + O)."""
    H, O = cfg.hidden_size, cfg.output_size
    weights = sum(4 * H * ((cfg.input_size if layer == 0 else H) + H) for layer in range(cfg.num_layers))
    scales_biases = cfg.num_layers * (2 * 4 * H + 4 * H) * 4
    head = (O * H + O) * 4
    return {"int8_weights": weights, "float_scales_biases": scales_biases, "float_head": head}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="an int8-quantized bundle (default: the seed size, made here)")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "c_int8_floor.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = a.bundle or seed_bundle(tmp)
        cfg = Bundle.open(bundle).config
        c = tmp / "c"
        cli = [sys.executable, "-m", "lstm_edge.cli", "codegen", str(bundle), "--out", str(c), "--precision", "int8"]
        subprocess.run([*cli, "--prefix", "net"], check=True, capture_output=True)
        src = DRIVER.replace("PREFIX", "net").replace("UPPER", "NET")
        (c / "floor.c").write_text(src)
        sizes = step_bytes(cfg)
        total = sum(sizes.values())
        exe = c / "floor"
        flags = ["-O3", "-march=native", "-std=c99", "-ffp-contract=off", "-fno-trapping-math"]
        subprocess.run(["cc", *flags, "-o", str(exe), str(c / "floor.c"), str(c / "net.c"), "-lm"], check=True)
        out = json.loads(subprocess.run([str(exe), str(total), str(a.rounds)], capture_output=True, check=True).stdout)
    ratio_cpu = out["step_cpu_us_median"] / out["floor_cpu_us_median"]
    report = {
        "schema": "lstm-edge/c-int8-floor",
        "model": {"input": cfg.input_size, "hidden": cfg.hidden_size, "layers": cfg.num_layers},
        "step_bytes": sizes | {"total": total},
        "bandwidth_gb_s_median": total / out["floor_wall_us_median"] / 1e3,
        "measured": out,
        "step_over_floor_cpu_median": ratio_cpu,
        "step_over_floor_wall_median": out["step_wall_us_median"] / out["floor_wall_us_median"],
        "load_1min": os.getloadavg()[0],
        "flags": flags,
        "environment": environment(),
    }
    a.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"model {cfg.input_size} → {cfg.hidden_size} × {cfg.num_layers}: a step reads {total / 1e6:.3f} MB")
    print(f"floor (read those bytes): {out['floor_cpu_us_median']:.1f} µs CPU median "
          f"({report['bandwidth_gb_s_median']:.1f} GB/s)")  # fmt: skip
    print(f"C int8 step: {out['step_cpu_us_median']:.1f} µs CPU median → {ratio_cpu:.2f}× the floor (target ≤ 2)")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()

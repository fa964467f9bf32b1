"""Issue 25: this core's multiply-accumulate peaks, int16 pairs (what the int8 C's products run on) against fp32 FMA
(what torch's oneDNN LSTM runs on), so that "int8 at ≤ 0.5× torch" can be judged against what the core can do.

    .venv/bin/python benchmarks/c_mac_peak.py [--json benchmarks/results/c_mac_peak.json]

Two loops of x86 AVX2 assembly, each 8 independent accumulators (no dependency stalls), interleaved 5 times:
`vpmaddwd` + `vpaddd` (16 int16 × int16 products summed in pairs, then accumulated: the int8 C's inner loop without
its loads) and `vfmadd231ps` (8 fp32 multiply-adds). CPU-time medians (CLOCK_PROCESS_CPUTIME_ID), GMAC/s. x86-64
with AVX2 and FMA only; elsewhere it says so and exits 2.
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

LOOP = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define MADD(a, c) "vpmaddwd %%ymm0, %%ymm1, %%ymm" #a "\n vpaddd %%ymm" #a ", %%ymm" #c ", %%ymm" #c "\n"
#define FMA(c) "vfmadd231ps %%ymm0, %%ymm1, %%ymm" #c "\n"
int main(void) {
    const long n = 50000000;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n vpxor %%ymm1, %%ymm1, %%ymm1" ::: "xmm0", "xmm1");
        for (long i = 0; i < n; i++)
            __asm__ volatile(MADD(2, 8) MADD(3, 9) MADD(4, 10) MADD(5, 11) MADD(6, 12) MADD(7, 13) MADD(14, 15)
                             MADD(2, 8)
                             ::: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                                 "xmm12", "xmm13", "xmm14", "xmm15");
        double t1 = now();
        for (long i = 0; i < n; i++)
            __asm__ volatile(FMA(8) FMA(9) FMA(10) FMA(11) FMA(12) FMA(13) FMA(14) FMA(15)
                             ::: "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
        double t2 = now();
        printf("%.4f %.4f\n", 16.0 * 8 * n / (t1 - t0) / 1e9, 8.0 * 8 * n / (t2 - t1) / 1e9);
    }
    return 0;
}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "c_mac_peak.json")
    a = ap.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2" not in flags or " fma" not in flags:
        print("error: this benchmark is x86-64 AVX2 + FMA assembly; this CPU has not both", file=sys.stderr)
        raise SystemExit(2)
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "peak.c", Path(tmp) / "peak"
        src.write_text(LOOP)
        subprocess.run(["cc", "-O2", "-mavx2", "-mfma", "-o", str(exe), str(src)], check=True)
        rows = [tuple(map(float, ln.split())) for ln in subprocess.run([str(exe)], capture_output=True, text=True,
                                                                       check=True).stdout.split("\n") if ln]  # fmt: skip
    int16 = sorted(r[0] for r in rows)[len(rows) // 2]
    fp32 = sorted(r[1] for r in rows)[len(rows) // 2]
    report = {
        "schema": "lstm-edge/c-mac-peak",
        "int16_pairs_gmac_s_median": int16,
        "fp32_fma_gmac_s_median": fp32,
        "rounds": rows,
        "load_1min": os.getloadavg()[0],
    }
    a.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"int16 pairs (vpmaddwd + vpaddd): {int16:.1f} GMAC/s; fp32 FMA (vfmadd231ps): {fp32:.1f} GMAC/s "
          f"→ int16 / fp32 {int16 / fp32:.2f} (load {report['load_1min']:.1f})")  # fmt: skip
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()

"""Bulk scoring figures for README "Bulk scoring": local throughput (fp32, int8), Ray with 1 and 2 workers beside the
local engine, and the driver's peak RSS while scoring an input much larger than the memory scoring uses.

    .venv/bin/python benchmarks/score_throughput.py [--rows 4000] [--reps 3] [--rss-rows 200000] [--json out.json]

Medians of --reps runs, ratios from the same run. Every timing includes reading the input and writing Parquet.
Ray: "end to end" includes starting the actors (each imports ONNX Runtime and opens its runner), not ray.init
(timed apart); "steady" is 2·rows / (time for 3·rows − time for rows), free of those fixed costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "models" / "adding"
T, F = 100, 2

RSS_CHILD = r"""
import sys, json
from lstm_edge.score import ScoreConfig, score

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
bundle, small, data, out, batch = sys.argv[1:6]
cfg = ScoreConfig(batch_size=int(batch), progress=False)
score(bundle, small, out, cfg)  # a warm-up run: imports, ORT's arena, pyarrow's writer
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM (peak RSS) to the current RSS
base = status("VmRSS:")
r = score(bundle, data, out, cfg)
print(json.dumps({"baseline_rss": base, "peak_rss": status("VmHWM:"), "rows": r.rows, "seconds": r.seconds}))
"""


def _median_rate(fn, rows: int, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return rows / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000, help="sequences for the throughput runs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rss-rows", type=int, default=200_000, help="sequences for the peak-RSS run (0: skip)")
    ap.add_argument("--rss-batch", type=int, default=64)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from lstm_edge.score import ScoreConfig, score

    tmp = Path(tempfile.mkdtemp(prefix="score-bench-"))
    data = tmp / "x.npy"
    np.save(data, np.random.default_rng(0).random((args.rows, T, F)).astype(np.float32))
    res: dict = {"rows": args.rows, "T": T, "batch_size": args.batch_size, "cpus": os.cpu_count(), "reps": args.reps}
    res["load_average_at_start"] = os.getloadavg()

    def local(variant, threads=None):
        cfg = ScoreConfig(variant=variant, threads=threads, batch_size=args.batch_size, progress=False)
        return lambda: score(BUNDLE, data, tmp / "local.parquet", cfg)

    for variant in ("fp32", "int8"):
        for threads in (None, 1):
            key = f"local_{variant}_threads_{threads or 'all'}"
            res[key] = _median_rate(local(variant, threads), args.rows, args.reps)
            print(f"{key}: {res[key]:.0f} sequences/s", flush=True)

    if not args.no_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=(os.cpu_count() or 2) + 1, include_dashboard=False, log_to_driver=False)
        res["ray_init_s"] = time.perf_counter() - t0
        try:
            big = tmp / "x3.npy"  # 3× the rows: the difference of the two times is free of fixed costs
            np.save(big, np.concatenate([np.load(data)] * 3))
            for workers in (1, 2):
                cfg = ScoreConfig(engine="ray", workers=workers, batch_size=args.batch_size, progress=False)
                small_s = [score(BUNDLE, data, tmp / f"ray{workers}", cfg).seconds for _ in range(args.reps)]
                big_s = [score(BUNDLE, big, tmp / f"ray{workers}", cfg).seconds for _ in range(args.reps)]
                end_to_end = args.rows / statistics.median(small_s)
                steady = 2 * args.rows / (statistics.median(big_s) - statistics.median(small_s))
                fixed = statistics.median(small_s) - args.rows / steady
                res[f"ray_fp32_workers_{workers}"] = steady
                res[f"ray_fp32_workers_{workers}_end_to_end"] = end_to_end
                res[f"ray_fixed_cost_s_workers_{workers}"] = fixed
                print(
                    f"ray_fp32_workers_{workers}: {steady:.0f} sequences/s steady, {end_to_end:.0f} end to end "
                    f"({args.rows} rows), fixed cost {fixed:.1f}s",
                    flush=True,
                )
        finally:
            ray.shutdown()
        best_local = max(res["local_fp32_threads_all"], res["local_fp32_threads_1"])
        res["ratio_ray2_over_ray1"] = res["ray_fp32_workers_2"] / res["ray_fp32_workers_1"]
        res["ratio_ray2_over_best_local"] = res["ray_fp32_workers_2"] / best_local
        res["ratio_ray1_over_local_1thread"] = res["ray_fp32_workers_1"] / res["local_fp32_threads_1"]

    if args.rss_rows:
        big = tmp / "big.npy"
        x = np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(args.rss_rows, T, F))
        for s in range(0, args.rss_rows, 10_000):  # written in slices: the benchmark itself stays small too
            x[s : s + 10_000] = np.random.default_rng(s).random(x[s : s + 10_000].shape, dtype=np.float32)
        x.flush()
        del x
        small = tmp / "small.npy"
        np.save(small, np.random.default_rng(1).random((4 * args.rss_batch, T, F)).astype(np.float32))
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_CHILD,
                str(BUNDLE),
                str(small),
                str(big),
                str(tmp / "big.parquet"),
                str(args.rss_batch),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        rss["input_bytes"] = big.stat().st_size
        rss["growth_bytes"] = rss["peak_rss"] - rss["baseline_rss"]
        rss["input_over_growth"] = rss["input_bytes"] / max(rss["growth_bytes"], 1)
        rss["input_over_peak"] = rss["input_bytes"] / rss["peak_rss"]
        res["rss"] = rss
        mb = 1 << 20
        print(
            f"peak RSS {rss['peak_rss'] / mb:.0f} MiB (after a warm-up run: {rss['baseline_rss'] / mb:.0f} MiB) "
            f"scoring {rss['input_bytes'] / mb:.0f} MiB of input in {rss['seconds']:.0f}s: input is "
            f"{rss['input_over_peak']:.1f}× the whole process, {rss['input_over_growth']:.0f}× its growth",
            flush=True,
        )
    res["load_average_at_end"] = os.getloadavg()
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

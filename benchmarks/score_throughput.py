"""Bulk scoring figures for README "Bulk scoring": local throughput (fp32, int8), Ray with 1 and 2 workers beside the
local engine, and the driver's peak RSS while scoring an input much larger than the memory scoring uses.

    .venv/bin/python benchmarks/score_throughput.py [--rows 2000] [--ray-rows 20000] [--reps 3] [--rss-rows 200000] [--json out.json]

Medians of --reps runs, ratios from the same run. Every timing includes reading the input and writing Parquet.
Ray times include starting the actors (each imports ONNX Runtime and opens its runner), not ray.init (timed
apart); they are compared with the local engine on the same --ray-rows input.
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
    ap.add_argument("--rows", type=int, default=2000, help="sequences for the throughput runs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ray-rows", type=int, default=20_000, help="sequences for the Ray-against-local runs")
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

        # Ray against local on one larger input, so the actors' start (a few seconds here) is part of the cost but
        # not all of it; "overhead" is Ray's time minus the local engine's at the same thread count.
        rdata = tmp / "ray.npy"
        np.save(rdata, np.random.default_rng(3).random((args.ray_rows, T, F)).astype(np.float32))
        res["ray_rows"] = args.ray_rows
        for threads in (None, 1):
            cfg = ScoreConfig(threads=threads, batch_size=args.batch_size, progress=False)
            key = f"same_data_local_fp32_threads_{threads or 'all'}"
            res[key] = _median_rate(
                lambda cfg=cfg: score(BUNDLE, rdata, tmp / "l.parquet", cfg), args.ray_rows, args.reps
            )
            print(f"{key}: {res[key]:.0f} sequences/s ({args.ray_rows} rows)", flush=True)
        t0 = time.perf_counter()
        ray.init(num_cpus=(os.cpu_count() or 2) + 1, include_dashboard=False, log_to_driver=False)
        res["ray_init_s"] = time.perf_counter() - t0
        try:
            for workers in (1, 2):
                cfg = ScoreConfig(engine="ray", workers=workers, batch_size=args.batch_size, progress=False)
                runs = [score(BUNDLE, rdata, tmp / f"ray{workers}", cfg).seconds for _ in range(args.reps)]
                res[f"ray_fp32_workers_{workers}"] = args.ray_rows / statistics.median(runs)
                print(f"ray_fp32_workers_{workers}: {res[f'ray_fp32_workers_{workers}']:.0f} sequences/s", flush=True)
        finally:
            ray.shutdown()
        best_local = max(res["same_data_local_fp32_threads_all"], res["same_data_local_fp32_threads_1"])
        res["ratio_ray2_over_ray1"] = res["ray_fp32_workers_2"] / res["ray_fp32_workers_1"]
        res["ratio_ray2_over_best_local"] = res["ray_fp32_workers_2"] / best_local
        res["ratio_ray1_over_local_1thread"] = res["ray_fp32_workers_1"] / res["same_data_local_fp32_threads_1"]
        res["ray1_overhead_s"] = (
            args.ray_rows / res["ray_fp32_workers_1"] - args.ray_rows / res["same_data_local_fp32_threads_1"]
        )
        for k in ("ratio_ray2_over_ray1", "ratio_ray2_over_best_local", "ratio_ray1_over_local_1thread"):
            print(f"{k}: {res[k]:.2f}", flush=True)
        print(f"ray1_overhead_s: {res['ray1_overhead_s']:.1f}", flush=True)

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

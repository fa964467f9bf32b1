"""Bulk scoring figures for README "Bulk scoring": local throughput (fp32, int8), Ray with 1 and 2 workers beside the
local engine on the same large input, where Ray's time goes (fixed costs, steady state, CPU seconds per process), and
the driver's peak RSS while scoring an input much larger than the memory scoring uses.

    .venv/bin/python benchmarks/score_throughput.py [--rows 20000] [--ray-rows 200000] [--reps 3] \
        [--rss-rows 200000] [--json out.json]

Every time is a whole `score()` call: opening the runner(s), reading the input, writing Parquet. Reps are interleaved
(each rep runs every configuration once) and figures are medians over reps; ratios are of those medians.

Ray runs join a Ray instance started by the benchmark (`ray.init`, and Ray Data's first use, which starts Ray Data's
own actors, both timed apart and repeated every rep); local runs are timed while no Ray instance runs. The order of
1 and 2 workers (and of all and 1 local threads) alternates between reps. Each configuration runs on two inputs, --ray-rows and --rows, so its cost
splits into a fixed part and a per-row part: steady rate = (big - small rows) / (big - small seconds), fixed
seconds = big seconds - big rows / steady rate (for Ray: creating the actor pool, whose processes import Ray Data
and open a runner each; for local: opening the runner). While each Ray run on the big input scores, the CPU seconds
of every process are sampled from /proc and grouped: the actors, this driver, raylet + GCS, Ray's other processes
(Ray Data's own actors, idle workers, log monitor), and other users' processes (the machine is shared); for local
runs, this process's CPU seconds. CPU seconds per row do not depend on the machine's load the way times do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lstm_edge.isolated import python_argv

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "models" / "adding"
T, F = 100, 2
TICK = os.sysconf("SC_CLK_TCK")

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


def _processes() -> dict[int, tuple[float, int, int, str]]:
    """pid → (CPU seconds, start time, parent pid, command line) of every process, from /proc."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()[:200].replace(b"\0", b" ").decode(errors="replace")
            out[int(stat.parent.name)] = (
                (int(fields[11]) + int(fields[12])) / TICK,
                int(fields[19]),
                int(fields[1]),
                cmd,
            )
        except (OSError, IndexError, ValueError):
            continue
    return out


def _role(pid: int, cmd: str, ours: set[int]) -> str:
    if pid == os.getpid():
        return "driver"
    if pid not in ours:
        return "other users"
    if "raylet" in cmd or "gcs_server" in cmd:
        return "raylet+gcs"
    return "ray other"


class CpuWatch:
    """CPU seconds per role while a block runs, sampled every `period` s (a process that exits keeps its last
    sample, so up to one period of its time is missed); the sampling thread's own CPU is taken off the driver's."""

    def __init__(self, period: float = 0.5) -> None:
        self.period, self.first = period, _processes()
        self.last, self.own, self.stopped, self.actors = dict(self.first), 0.0, threading.Event(), set()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        now = _processes()
        self.last.update(now)
        # An actor's process title changes when its actor ends: remember every pid seen holding one.
        self.actors.update(pid for pid, (_, _, _, cmd) in now.items() if "MapWorker" in cmd or "ScoreActor" in cmd)

    def _loop(self) -> None:
        while not self.stopped.wait(self.period):
            self._sample()
            self.own = time.thread_time()

    def stop(self) -> dict[str, float]:
        self.stopped.set()
        self.thread.join()
        self._sample()
        children: dict[int, list[int]] = {}
        for pid, (_, _, ppid, _) in self.last.items():
            children.setdefault(ppid, []).append(pid)
        ours, todo = {os.getpid()}, [os.getpid()]
        while todo:
            for c in children.get(todo.pop(), []):
                if c not in ours:
                    ours.add(c)
                    todo.append(c)
        by: dict[str, float] = {}
        for pid, (cpu, start, _, cmd) in self.last.items():
            before = self.first.get(pid)
            used = cpu - (before[0] if before and before[1] == start else 0.0)
            if used > 0:
                role = "actors" if pid in self.actors else _role(pid, cmd, ours)
                by[role] = by.get(role, 0.0) + used
        by["driver"] = by.get("driver", 0.0) - self.own
        return by


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--rows", type=int, default=20_000, help="sequences for the local fp32/int8 runs, and the small input"
    )
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ray-rows", type=int, default=200_000, help="sequences for the Ray-against-local runs")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rss-rows", type=int, default=200_000, help="sequences for the peak-RSS run (0: skip)")
    ap.add_argument("--rss-batch", type=int, default=64)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from lstm_edge.score import ScoreConfig, score

    tmp = Path(tempfile.mkdtemp(prefix="score-bench-"))
    small, big = tmp / "x.npy", tmp / "big.npy"
    np.save(small, np.random.default_rng(0).random((args.rows, T, F)).astype(np.float32))
    res: dict = {"rows": args.rows, "T": T, "batch_size": args.batch_size, "cpus": os.cpu_count(), "reps": args.reps}
    res["load_average_at_start"] = os.getloadavg()

    def local(data, variant="fp32", threads=None):
        cfg = ScoreConfig(variant=variant, threads=threads, batch_size=args.batch_size, progress=False)
        return lambda: score(BUNDLE, data, tmp / "local.parquet", cfg)

    times: dict[str, list[float]] = {}
    for _ in range(args.reps):
        for variant in ("fp32", "int8"):
            for threads in (None, 1):
                key = f"local_{variant}_threads_{threads or 'all'}"
                times.setdefault(key, []).append(_timed(local(small, variant, threads)))
    for key, ts in times.items():
        res[key] = args.rows / _med(ts)
        print(f"{key}: {res[key]:.0f} sequences/s ({args.rows} rows)", flush=True)

    if not args.no_ray:
        import ray

        x = np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(args.ray_rows, T, F))
        for s in range(0, args.ray_rows, 10_000):  # written in slices: the benchmark itself stays small too
            x[s : s + 10_000] = np.random.default_rng(s + 1).random(x[s : s + 10_000].shape, dtype=np.float32)
        x.flush()
        del x
        res["ray_rows"] = args.ray_rows
        sizes = {"big": (big, args.ray_rows), "small": (small, args.rows)}
        runs: dict[str, dict[str, list[float]]] = {}  # config → size → seconds
        cpu: dict[str, list[dict[str, float]]] = {}
        inits, first_use, loads = [], [], []

        def record(config: str, size: str, seconds: float) -> None:
            runs.setdefault(config, {}).setdefault(size, []).append(seconds)

        for rep in range(args.reps):
            order = (0, 1) if rep % 2 == 0 else (1, 0)  # alternate, so neither side always runs first
            for threads in [(None, 1)[i] for i in order]:
                for size, (data, _) in sizes.items():
                    config, cpu0 = f"local_fp32_threads_{threads or 'all'}", time.process_time()
                    record(config, size, _timed(local(data, threads=threads)))
                    if size == "big":  # the local engine runs in this process: its CPU is this process's
                        cpu.setdefault(config, []).append({"driver": time.process_time() - cpu0})
            t0 = time.perf_counter()
            ray.init(num_cpus=(os.cpu_count() or 2) + 1, include_dashboard=False, log_to_driver=False)
            inits.append(time.perf_counter() - t0)
            try:
                # Ray Data's first dataset in a session starts its own actors (stats, autoscaling coordinator): a
                # fixed cost of a fresh `score --engine ray`, timed apart so it falls on neither worker count.
                first_use.append(_timed(lambda: ray.data.range(1).materialize()))
                for workers in [(1, 2)[i] for i in order]:
                    cfg = ScoreConfig(engine="ray", workers=workers, batch_size=args.batch_size, progress=False)
                    for size, (data, _) in sizes.items():
                        watch = CpuWatch() if size == "big" else None
                        seconds = _timed(lambda cfg=cfg, data=data: score(BUNDLE, data, tmp / "ray", cfg))
                        record(f"ray_fp32_workers_{workers}", size, seconds)
                        if watch:
                            used = watch.stop()
                            used["wall"] = seconds
                            cpu.setdefault(f"ray_fp32_workers_{workers}", []).append(used)
            finally:
                ray.shutdown()
            loads.append(os.getloadavg()[0])
            print(f"rep {rep + 1}/{args.reps} done, load average {loads[-1]:.1f}", flush=True)

        res["load_average_1min_after_each_rep"] = loads
        res["ray_init_s"] = _med(inits)
        res["ray_data_first_use_s"] = _med(first_use)
        n_big, n_small = args.ray_rows, args.rows
        for config, by in runs.items():
            steady = [(n_big - n_small) / (b - s) for b, s in zip(by["big"], by["small"], strict=True)]
            res[f"{config}_seq_s"] = n_big / _med(by["big"])  # end to end, big input
            res[f"{config}_steady_seq_s"] = _med(steady)
            res[f"{config}_fixed_s"] = _med([b - n_big / r for b, r in zip(by["big"], steady, strict=True)])
            res[f"{config}_seconds"] = {k: [round(t, 3) for t in v] for k, v in by.items()}
            print(
                f"{config}: {res[f'{config}_seq_s']:.0f} seq/s end to end ({n_big} rows), steady "
                f"{res[f'{config}_steady_seq_s']:.0f} seq/s, fixed {res[f'{config}_fixed_s']:.2f} s",
                flush=True,
            )
        for config, samples in cpu.items():
            roles = sorted({k for s in samples for k in s})
            res[f"{config}_cpu_s"] = {k: round(_med([s.get(k, 0.0) for s in samples]), 2) for k in roles}
            scoring = res[f"{config}_cpu_s"]["actors" if config.startswith("ray") else "driver"]
            res[f"{config}_scoring_cpu_us_per_row"] = scoring / n_big * 1e6
            print(f"{config} CPU seconds (big input, medians): {res[f'{config}_cpu_s']}", flush=True)
        print(
            f"ray.init: {res['ray_init_s']:.2f} s, Ray Data's first use {res['ray_data_first_use_s']:.2f} s", flush=True
        )

        best = {
            kind: max(res[f"local_fp32_threads_all_{kind}"], res[f"local_fp32_threads_1_{kind}"])
            for kind in ("seq_s", "steady_seq_s")
        }
        for kind in ("seq_s", "steady_seq_s"):
            r1, r2 = res[f"ray_fp32_workers_1_{kind}"], res[f"ray_fp32_workers_2_{kind}"]
            tag = "" if kind == "seq_s" else "steady_"
            res[f"ratio_{tag}ray2_over_ray1"] = r2 / r1
            res[f"ratio_{tag}ray2_over_best_local"] = r2 / best[kind]
            res[f"ratio_{tag}ray1_over_local_1thread"] = r1 / res[f"local_fp32_threads_1_{kind}"]
        # What a user of `lstm-edge score --engine ray` without --ray-address waits for: ray.init as well.
        res["ray_fp32_workers_2_with_init_seq_s"] = n_big / (
            n_big / res["ray_fp32_workers_2_seq_s"] + res["ray_init_s"] + res["ray_data_first_use_s"]
        )
        res["ratio_ray2_with_init_over_best_local"] = res["ray_fp32_workers_2_with_init_seq_s"] / best["seq_s"]
        for k in sorted(k for k in res if k.startswith("ratio_")):
            print(f"{k}: {res[k]:.2f}", flush=True)

    if args.rss_rows:
        rss_data = tmp / "rss.npy"
        x = np.lib.format.open_memmap(rss_data, mode="w+", dtype=np.float32, shape=(args.rss_rows, T, F))
        for s in range(0, args.rss_rows, 10_000):
            x[s : s + 10_000] = np.random.default_rng(s).random(x[s : s + 10_000].shape, dtype=np.float32)
        x.flush()
        del x
        warm = tmp / "warm.npy"
        np.save(warm, np.random.default_rng(1).random((4 * args.rss_batch, T, F)).astype(np.float32))
        out = subprocess.run(
            [
                *python_argv("-c"),  # -I: nothing imported from the working folder
                RSS_CHILD,
                str(BUNDLE),
                str(warm),
                str(rss_data),
                str(tmp / "rss.parquet"),
                str(args.rss_batch),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        rss["input_bytes"] = rss_data.stat().st_size
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

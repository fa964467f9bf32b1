"""Wall time against CPU time: which one a speed-up divides, and when the two disagree because the machine is loaded.

bench records both for every figure: wall time (time.perf_counter) and the process's CPU time (time.process_time,
user + system, summed over every thread of the process). On a shared machine a runner's wall time also counts the
time slices other processes took from it; its CPU time does not. At 1 thread the CPU time is the runner's own work,
so the speed-ups are computed from it (a loaded `--quick` run once put ORT int8 at 18.5× fp32 by wall time where CPU
time gave 1.3–2×). At more threads CPU time sums the threads — a runner that splits its work over two cores is not
slower for it — so the speed-ups there are from wall time, and both are kept in the report.
"""

from __future__ import annotations

# Wall time over CPU time beyond this, for a figure, says the process waited for the CPU (or on something else) for a
# third of the time it was measured: the load's doing, not the runner's. At 1 thread an unloaded run reads 1.0–1.1
# (the clock reads and the interpreter's own work are in both); 1.5 leaves room for that and for the odd page
# fault. With N threads CPU time sums them, so the ratio reads below 1 on a quiet machine and the check is blunter
# (it still fires when the process had no thread running for a third of the time).
WALL_OVER_CPU_LIMIT = 1.5
LOAD_NOTE = "wall time inflated by load: compare CPU time"


def time_basis(threads: int) -> str:
    """The time a speed-up divides at `threads` threads: "cpu" at 1 (the runner's own work, robust to load), "wall"
    at more (CPU time sums the threads). Raises nothing."""
    return "cpu" if threads == 1 else "wall"


def sample_us(sample: dict, basis: str = "wall") -> float:
    """The one time a sample is compared by, in µs: on `basis` "wall" the streaming p50 or a grid point's median; on
    "cpu" its cpu_us (the streaming step's CPU time, median over chunks, or the grid point's median CPU time)."""
    if basis == "cpu":
        return sample["cpu_us"]
    return sample["p50"] if "p50" in sample else sample["median_us"]


def wall_over_cpu(samples: dict) -> dict[str, float]:
    """Wall time / CPU time per figure of one target's samples, keyed as speedup_vs_torch is ("stream_p50",
    "B8xT100", …). Streaming compares the same chunks' wall and CPU time (wall_chunk_us / cpu_us), a grid point its
    medians. A CPU time of 0 (below the clock's resolution) gives no ratio. Raises nothing."""
    out = {}
    for key, s in samples.items():
        wall = s.get("wall_chunk_us", s.get("median_us"))
        if wall is not None and s.get("cpu_us"):
            out["stream_p50" if key == "stream" else key] = wall / s["cpu_us"]
    return out


def load_check(samples: dict, threads: int) -> dict:
    """Whether wall and CPU time disagree for one target at `threads` threads.

    Returns {"wall_over_cpu": {figure: ratio}, "inflated": the figures beyond WALL_OVER_CPU_LIMIT (sorted),
    "limit", "cpu_sums_threads": threads > 1, and "note": LOAD_NOTE where any figure is inflated}. Raises nothing.
    """
    ratios = wall_over_cpu(samples)
    inflated = sorted(k for k, r in ratios.items() if r > WALL_OVER_CPU_LIMIT)
    check = {
        "wall_over_cpu": ratios,
        "inflated": inflated,
        "limit": WALL_OVER_CPU_LIMIT,
        "cpu_sums_threads": threads > 1,
    }
    return check | ({"note": LOAD_NOTE} if inflated else {})


def capped_fraction(achieved: float, peak: float) -> tuple[float, bool]:
    """(achieved / peak capped at 1, whether it was capped). A fraction over 1 means the peak was measured low (the
    load dragged it, or the model's FLOPs are an upper bound), never that the model beat the machine. Raises
    nothing; a peak of 0 gives (1.0, True)."""
    raw = achieved / peak if peak > 0 else float("inf")
    return min(1.0, raw), raw > 1.0

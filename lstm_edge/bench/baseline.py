"""What bench compares against: the baseline's samples (PyTorch eager's faster path per shape) and the speed-ups
of every run against it."""

from __future__ import annotations

from lstm_edge.bench.cputime import capped_fraction, sample_us
from lstm_edge.bench.targets import BenchConfig, Target


def baseline_samples(base: list[Target], basis: str = "wall") -> tuple[dict, dict[str, str]]:
    """The baseline's samples from its measured targets: per shape ("stream", "B8xT100", …) the sample of the
    faster target on `basis` (cputime.time_basis: "wall", the streaming p50 or grid median; "cpu", their CPU
    time), and which target's torch_path was taken per shape, keyed as speedup_vs_torch is ("stream_p50",
    "B8xT100", …). One target (ORT CPU for a bundle without a checkpoint): its own samples, and nothing taken.
    Raises nothing."""
    if len(base) == 1:
        return base[0].samples, {}
    samples, taken = {}, {}
    for shape in base[0].samples:
        best = min(base, key=lambda t: sample_us(t.samples[shape], basis))
        samples[shape] = best.samples[shape]
        taken["stream_p50" if shape == "stream" else shape] = best.torch_path
    return samples, taken


def faster_cold(colds: dict[str, dict]) -> tuple[dict, dict[str, str]]:
    """The baseline's cold figures from its paths': the lower of each (cold start, and peak RSS, so that neither
    ratio flatters), and which path each came from."""
    fast = min(colds, key=lambda k: colds[k]["cold_start_s"])
    small = min(colds, key=lambda k: colds[k]["peak_rss_mb"])
    cold = colds[fast] | {"peak_rss_mb": colds[small]["peak_rss_mb"]}
    return cold, {"cold_start": fast, "rss": small}


def speedups(ref: dict, s: dict, basis: str = "wall") -> dict[str, float]:
    """Baseline time / this time on `basis` ("wall" or "cpu": cputime.sample_us), for the streaming p50 (where
    streaming was timed; on "cpu" the median CPU time per step) and every grid point. Raises nothing."""
    return {
        ("stream_p50" if k == "stream" else k): sample_us(ref[k], basis) / max(sample_us(v, basis), 1e-9)
        for k, v in s.items()
        if k in ref and (k == "stream" or k.startswith("B"))
    }


def roofline_point(cfg: BenchConfig) -> str:
    """The grid point the roofline line reports: the largest batch at T=100 (or the nearest length measured)."""
    seq = min(cfg.seqs, key=lambda t: abs(t - 100))
    return f"B{max(cfg.batches)}xT{seq}"


def roofline(s: dict, point: str, flops: int | None, peak: dict[str, float], basis: str) -> dict:
    """The roofline figures of one target's samples `s` at grid `point`: achieved GFLOP/s (the model's `flops` per
    sequence-step × steps per second) against the machine's `peak` ({"wall", "cpu"}: measure_peak_gflops), both
    on `basis` (cputime.time_basis), and by wall time beside them.

    Returns {"point", "basis", "gflops", "peak_gflops", "fraction_of_peak" (capped at 1), "fraction_raw",
    "capped" (the raw fraction was over 1: the peak read low), "gflops_wall", "peak_gflops_wall"}; the GFLOP/s and
    fractions are None where the model's FLOPs are unknown. Raises nothing."""
    p = s[point]
    B, T = (int(n) for n in point[1:].split("xT"))
    us = sample_us(p, basis) if basis == "cpu" else p["median_us"]
    gflops = B * T / (max(us, 1e-3) / 1e6) * flops / 1e9 if flops is not None else None
    fraction, capped = capped_fraction(gflops, peak[basis]) if gflops is not None else (None, False)
    return {
        "point": point,
        "basis": basis,
        "gflops": gflops,
        "peak_gflops": peak[basis],
        "fraction_of_peak": fraction,
        "fraction_raw": gflops / peak[basis] if gflops is not None else None,
        "capped": capped,
        "gflops_wall": p["steps_per_s"] * flops / 1e9 if flops is not None else None,
        "peak_gflops_wall": peak["wall"],
    }


def cold_ratios(report: dict) -> None:
    """Add cold-start and RSS ratios against PyTorch eager (same thread count) to every run of `report`, in place;
    PyTorch's own paths against its baseline's cold figures."""
    for r in report["runs"]:
        ref = next((x for x in report["runs"] if x["runtime"] == "torch" and x["threads"] == r["threads"]), None)
        if r.get("status") == "ok" and "cold" in r and ref and "cold" in ref and "cold_start_s" in r["cold"]:
            r["speedup_vs_torch"]["cold_start"] = ref["cold"]["cold_start_s"] / r["cold"]["cold_start_s"]
            r["speedup_vs_torch"]["rss"] = ref["cold"]["peak_rss_mb"] / r["cold"]["peak_rss_mb"]
        for path in r.get("paths", {}).values():  # PyTorch eager's two paths, against the baseline's cold figures
            if "cold" in path:
                path["speedup_vs_torch"]["cold_start"] = r["cold"]["cold_start_s"] / path["cold"]["cold_start_s"]
                path["speedup_vs_torch"]["rss"] = r["cold"]["peak_rss_mb"] / path["cold"]["peak_rss_mb"]

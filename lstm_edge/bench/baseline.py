"""What bench compares against: the baseline's samples (PyTorch eager's faster path per shape) and the speed-ups
of every run against it."""

from __future__ import annotations

from lstm_edge.bench.targets import BenchConfig, Target


def _time_us(sample: dict) -> float:
    """The one time a sample is compared by: the streaming p50, or a grid point's median (µs)."""
    return sample["p50"] if "p50" in sample else sample["median_us"]


def baseline_samples(base: list[Target]) -> tuple[dict, dict[str, str]]:
    """The baseline's samples from its measured targets: per shape ("stream", "B8xT100", …) the sample of the
    faster target (lower streaming p50 or grid median), and which target's torch_path was taken per shape, keyed
    as speedup_vs_torch is ("stream_p50", "B8xT100", …). One target (ORT CPU for a bundle without a checkpoint):
    its own samples, and nothing taken. Raises nothing."""
    if len(base) == 1:
        return base[0].samples, {}
    samples, taken = {}, {}
    for shape in base[0].samples:
        best = min(base, key=lambda t: _time_us(t.samples[shape]))
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


def speedups(ref: dict, s: dict) -> dict[str, float]:
    """Baseline time / this time, for the streaming p50 (where streaming was timed) and every grid point."""
    stream = {"stream_p50": ref["stream"]["p50"] / s["stream"]["p50"]} if "stream" in s and "stream" in ref else {}
    return stream | {k: ref[k]["median_us"] / v["median_us"] for k, v in s.items() if k.startswith("B")}


def roofline_point(cfg: BenchConfig) -> str:
    """The grid point the roofline line reports: the largest batch at T=100 (or the nearest length measured)."""
    seq = min(cfg.seqs, key=lambda t: abs(t - 100))
    return f"B{max(cfg.batches)}xT{seq}"


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

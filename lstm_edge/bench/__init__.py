"""`lstm-edge bench`: streaming latency percentiles, a throughput grid, cold start and peak RSS of every
runtime × variant beside PyTorch eager, measured interleaved in one run so that ratios survive a noisy machine.

Rooms: targets (config, what is timed), timing (how), baseline (against what), report (tables, plot); this
module runs them in order and picks the fastest parity-passing choice (`--auto`).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import onnx

from lstm_edge.bench.baseline import (
    baseline_samples,
    cold_ratios,
    faster_cold,
    roofline,
    roofline_point,
    speedups,
)
from lstm_edge.bench.cputime import LOAD_NOTE, WALL_OVER_CPU_LIMIT, load_check, time_basis
from lstm_edge.bench.graph_cost import graph_cost
from lstm_edge.bench.report import plot, table_notes, table_rows, to_markdown
from lstm_edge.bench.targets import TORCH_PATHS, BenchConfig, Target, mkldnn_enabled, open_targets, thread_count
from lstm_edge.bench.timing import (
    cold_start,
    flops_per_step,
    measure_peak_gflops,
    median_us,
    time_grid,
    time_streaming,
    weight_count,
)
from lstm_edge.bundle import Bundle, entry_verdict
from lstm_edge.environment import environment
from lstm_edge.errors import LstmEdgeError
from lstm_edge.forms import stream_refusal
from lstm_edge.forms.fallback import stateless_reason
from lstm_edge.parity import VerifyConfig, verify
from lstm_edge.progress import progress_bar

BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "int8": 1}


def bench(bundle_path: str | Path, cfg: BenchConfig | None = None) -> dict:
    """Time every provider × variant beside PyTorch eager fp32, interleaved in one run so ratios survive noise.

    Args:
        bundle_path: a bundle folder.
        cfg: what to measure (BenchConfig(); .quick() for a fast look).
    Returns the report: {"schema": "lstm-edge/bench", "bundle", "config", "model" (flops_per_step — None where
    unknown —, weights, flops_basis, …), "baseline" (what speed-ups divide by), "streaming" ({"status": "measured"}
    or {"status": "not-streamable", "reason"}), "environment", "runs": one per target and thread setting, with
    "streaming" percentiles (µs, wall) and cpu_us / wall_chunk_us (per step, medians over 50-step chunks) — or the
    not-streamable status —, "grid" (median_us, sequences_per_s, steps_per_s, cpu_us per B×T point), "roofline"
    (basis, gflops, peak_gflops, fraction_of_peak capped at 1, fraction_raw, capped, gflops_wall,
    peak_gflops_wall), "speedup_vs_torch" (baseline time / target time on "speedup_basis": CPU time at 1 thread,
    wall time above; bench.cputime), "speedups_by_clock" ({"wall", "cpu"}), "load" (wall_over_cpu per figure,
    inflated, limit, cpu_sums_threads, note), "cold" (import_s, cold_start_s, peak_rss_mb) — or "status":
    "unsupported" (or "refused": a variant bench picked by default that failed its self-check) with the reason},
    "load" ({"flagged", "runs", "limit", "note"}: where wall time disagreed with CPU time),
    "self_check": "passed" (every runner reproduced the golden cases first) or "skipped" (cfg.self_check off).
    PyTorch eager (the first run) is timed on both its CPU LSTM paths (TORCH_PATHS: torch.backends.mkldnn on and
    off), interleaved with the rest; its run's figures, and every speed-up, are the faster path's per shape, and
    it adds "paths" ({"mkldnn_on"|"mkldnn_off": {"mkldnn", "streaming", "grid", "speedup_vs_torch", "cold"}}) and
    "baseline_path" ({"stream_p50" | "B…xT…" | "cold_start" | "rss": the path taken}). A bundle without a
    checkpoint is measured against ORT CPU fp32 instead (no paths).
    Raises LstmEdgeError for bad input (an unreadable bundle, an unknown provider, a bad thread setting) or when
    the PyTorch reference cannot be opened; ParityError where an fp32 runner, or one of a variant named in
    cfg.variants, fails its self-check (before any timing).
    """
    cfg = cfg or BenchConfig()
    bundle = Bundle.open(bundle_path)
    refusal = streaming_refusal(bundle)
    report: dict = {
        "schema": "lstm-edge/bench",
        "schema_version": 2,  # 2: CPU time beside wall time, not-streamable runs (schemas/bench.schema.json)
        "bundle": {"name": bundle.name, "path": str(bundle.root)},
        "config": asdict(cfg),
        "model": model_facts(bundle, refusal, cfg.verify_hash),
        # what every speed-up divides by (open_targets): PyTorch eager on the checkpoint, else ORT CPU fp32
        "baseline": "PyTorch eager" if "checkpoint" in bundle.manifest["artifacts"] else "ONNX Runtime CPU fp32",
        "streaming": {"status": "not-streamable", "reason": refusal} if refusal else {"status": "measured"},
        "environment": environment(),
        "runs": [],
    }
    for setting in cfg.threads:
        report["runs"] += bench_setting(bundle, cfg, setting)
    cold_ratios(report)
    report["load"] = load_summary(report["runs"])
    # every runner timed passed its self-check or found the pass cached (each run's describe says which), or bench
    # refused before timing anything
    report["self_check"] = "passed" if cfg.self_check else "skipped"
    return report


def load_summary(runs: list[dict]) -> dict:
    """The report's "load": whether wall time disagreed with CPU time anywhere (each run's "load"), which runs, and
    the note to print. Raises nothing."""
    flagged = [
        f"{r['runtime']} {r['variant']} threads {r['threads']}: {', '.join(r['load']['inflated'])}"
        for r in runs
        if r.get("status") == "ok" and r["load"]["inflated"]
    ]
    return {"flagged": bool(flagged), "runs": flagged, "limit": WALL_OVER_CPU_LIMIT} | (
        {"note": LOAD_NOTE} if flagged else {}
    )


def streaming_refusal(bundle: Bundle) -> str | None:
    """Why `bundle` cannot be timed streaming (one step at a time, state carried), or None where it can. bench then
    times the rest (the throughput grid from zero state, cold start, RSS) and reports streaming as not applicable.

    Returns the form's own reason (lstm_edge.forms): a stateless bundle (the state is not a graph input: a whole-graph
    export of the user's forward, or an import without state I/O), or a bidirectional model. Raises nothing."""
    if not bundle.stateful:
        return stateless_reason(bundle.manifest)
    return stream_refusal(bundle.config)


def model_facts(bundle: Bundle, refusal: str | None, verify_hash: bool = True) -> dict:
    """The report's "model": flops_per_step and weights from the config for a model it describes completely (the
    recognized, streamable forms), else counted from the fp32 ONNX graph (bench.graph_cost: an upper bound, or None
    where a node's cost is unknown) — never a guess; "flops_basis" says which.

    Raises LstmEdgeError where the fp32 graph fails its checks (Bundle.artifact)."""
    config = bundle.config
    facts = {"hidden_size": config.hidden_size, "num_layers": config.num_layers, "input_size": config.input_size}
    if refusal is None:
        return {
            "flops_per_step": flops_per_step(config),
            "weights": weight_count(config),
            "flops_basis": "from the config: the recurrent layers' gate GEMVs and gate math, and the head",
            **facts,
        }
    cost = graph_cost(onnx.load(str(bundle.artifact("fp32", verify_hash))))
    return {
        "flops_per_step": cost["flops_per_step"],
        "weights": cost["weights"],
        "flops_basis": cost["basis"]
        + (f"; unknown: {', '.join(cost['uncounted'][:3])} not counted" if cost["uncounted"] else ""),
        **facts,
    }


def bench_setting(bundle: Bundle, cfg: BenchConfig, setting: str) -> list[dict]:
    """The runs of one thread setting: every target opened, timed interleaved (streaming, then the grid), and
    reported against the baseline, the baseline's run first.

    Raises:
        LstmEdgeError: a bad thread setting, an unknown provider, a baseline that could not be opened, or a
            cold-start child process that fails.
    """
    threads = thread_count(setting)
    targets = open_targets(bundle, cfg, threads)
    live = [t for t in targets if t.runner is not None]
    base = [t for t in targets if t.baseline]
    for t in base:
        if t.runner is None:
            raise LstmEdgeError(f"the baseline ({t.provider}) could not be opened: {t.reason}", "check the bundle")
    streams = streaming_refusal(bundle) is None  # a model that cannot stream is timed on the grid alone
    total = max(1, cfg.stream_steps // 50) * streams + len(cfg.batches) * len(cfg.seqs)
    peak_before = measure_peak_gflops(threads)
    with progress_bar(total=total, desc=f"bench threads={setting}", enabled=cfg.progress) as bar:
        if streams:
            time_streaming(live, bundle.config, cfg.stream_steps, bar)
        time_grid(live, bundle.config, cfg, bar)
    peak_after = measure_peak_gflops(threads)  # the machine's best, before or after the phase, per clock
    peak = {k: max(peak_before[k], peak_after[k]) for k in peak_before}
    basis = time_basis(threads)  # what speed-ups divide: CPU time at 1 thread, wall time at more (bench.cputime)
    ref, taken = baseline_samples(base, basis)
    # One run for the baseline (PyTorch eager, the faster path per shape; its two paths inside it), then the rest.
    runs = []
    what = "cold start (a fresh process each)" if cfg.cold_start else "figures"
    ordered = [base[0], *(t for t in targets if not t.baseline)]
    for t in progress_bar(ordered, desc=f"bench {what} threads={setting}", unit="target", enabled=cfg.progress):
        entry = {"runtime": t.provider, "variant": t.variant, "threads": threads, "threads_setting": setting}
        if t.runner is None:
            refused = t.reason.startswith("self-check failed")  # runtimes.self_check's words
            runs.append(entry | {"status": "refused" if refused else "unsupported", "reason": t.reason})
            continue
        entry |= run_figures(bundle, cfg, t, ref if t.baseline else t.samples, ref, peak, threads)
        entry["model_bytes"] = model_bytes(bundle, t, cfg.verify_hash)
        if t.torch_path:  # PyTorch eager: both paths' own figures, and which one each baseline figure is
            entry["describe"]["mkldnn"] = "the faster of on and off per shape: see baseline_path"
            entry["baseline_path"] = taken
            entry["paths"] = baseline_paths(base, ref, basis)
        if cfg.cold_start and t.torch_path:
            for p in base:
                entry["paths"][p.torch_path]["cold"] = cold_start(bundle, p, threads, streams)
            entry["cold"], cold_taken = faster_cold({k: v["cold"] for k, v in entry["paths"].items()})
            entry["baseline_path"] |= cold_taken
        elif cfg.cold_start:
            entry["cold"] = cold_start(bundle, t, threads, streams)
        runs.append(entry)
    for t in live:
        t.runner.close()
    return runs


def run_figures(
    bundle: Bundle, cfg: BenchConfig, t: Target, s: dict, ref: dict, peak: dict[str, float], threads: int
) -> dict:
    """One opened target's figures from its samples `s` at `threads` threads: streaming (with the real-time factor
    at cfg.rate_hz; or {"status": "not-streamable", "reason"} where the model cannot stream), grid (wall and CPU
    time), roofline against the machine's `peak` GFLOP/s ({"wall", "cpu"}; None figures where the model's FLOPs
    are unknown), speed-ups against the baseline's samples `ref` on the thread count's basis (bench.cputime) and on
    both clocks, the wall-against-CPU check, and quantize's verdict on its variant."""
    facts = model_facts(bundle, streaming_refusal(bundle), cfg.verify_hash)
    precision = bundle.entry(t.variant).get("precision", "fp32") if t.provider != "torch" else "fp32"
    basis = time_basis(threads)
    line = roofline(s, roofline_point(cfg), facts["flops_per_step"], peak, basis)
    return {
        "status": "ok",
        "describe": t.runner.describe(),
        "deployable": entry_verdict(bundle.entry(t.variant)) == "deployable",
        "verdict": entry_verdict(bundle.entry(t.variant)),
        "streaming": streaming_figures(bundle, cfg, s),
        "grid": {k: v for k, v in s.items() if k.startswith("B")},
        "roofline": {
            "flops_per_step": facts["flops_per_step"],
            "weight_bytes": facts["weights"] * BYTES_PER_WEIGHT.get(precision, 4),
            **line,
        },
        "speedup_vs_torch": speedups(ref, s, basis),
        "speedup_basis": basis,
        "speedups_by_clock": {b: speedups(ref, s, b) for b in ("wall", "cpu")},
        "load": load_check(s, threads),
    }


def streaming_figures(bundle: Bundle, cfg: BenchConfig, s: dict) -> dict:
    """A run's "streaming": the percentiles (µs) with the real-time factor at cfg.rate_hz, or {"status":
    "not-streamable", "reason"} for a model that cannot stream (nothing was timed step by step)."""
    if "stream" not in s:
        return {"status": "not-streamable", "reason": streaming_refusal(bundle) or "not measured"}
    step_s = s["stream"]["p50"] / 1e6
    return {"status": "measured"} | s["stream"] | {"real_time_factor": step_s * cfg.rate_hz, "rate_hz": cfg.rate_hz}


def model_bytes(bundle: Bundle, t: Target, verify_hash: bool) -> int:
    """The size in bytes of the file `t` runs: its variant's ONNX, or the checkpoint for PyTorch eager."""
    path = bundle.artifact(t.variant, verify_hash) if t.provider != "torch" else bundle.checkpoint(verify_hash)
    return path.stat().st_size


def baseline_paths(base: list[Target], ref: dict, basis: str = "wall") -> dict:
    """PyTorch eager's paths in its run: per TORCH_PATHS key, its flag, streaming, grid and speed-ups (on `basis`)."""
    return {
        p.torch_path: {
            "mkldnn": TORCH_PATHS[p.torch_path],
            "streaming": p.samples.get("stream", {"status": "not-streamable"}),
            "grid": {k: v for k, v in p.samples.items() if k.startswith("B")},
            "speedup_vs_torch": speedups(ref, p.samples, basis),
        }
        for p in base
    }


AUTO_BATCH_FIX = "use --auto batch (whole sequences from zero state)"


def check_workload(bundle_path: str | Path, workload: str) -> None:
    """Refuse, before anything is timed, an --auto `workload` the bundle cannot have: "streaming" for a model that
    cannot stream (streaming_refusal).

    Raises:
        LstmEdgeError: the model cannot stream and `workload` is "streaming" (one line; the fix is --auto batch).
    """
    why = streaming_refusal(Bundle.open(bundle_path)) if workload == "streaming" else None
    if why:
        raise LstmEdgeError(f"--auto streaming: {why}", AUTO_BATCH_FIX)


def batch_key(report: dict) -> str:
    """The grid point that stands for "batch" in `--auto batch`: B64xT100 where it was measured, else the point
    with the most steps per call among those measured (--quick measures B 1,8 × T 1,100, so B8xT100). The key was
    fixed to B64xT100, and --quick --auto batch always found no candidate."""
    points = {k for r in report["runs"] if r.get("status") == "ok" for k in r.get("grid", {})}
    if "B64xT100" in points or not points:
        return "B64xT100"

    def steps(k: str) -> tuple[int, int]:
        b, t = k[1:].split("xT")
        return int(b) * int(t), int(b)

    return max(points, key=steps)


def auto_choose(bundle_path: str | Path, report: dict, workload: str) -> dict:
    """The fastest runtime × variant for `workload` ("streaming": stream p50; "batch": batch_key) among the bench
    report's runs that passes parity (verify's tolerances, quick matrix, drift over 50 steps).

    Returns {"workload", "point" (the measure compared: stream_p50 or a grid point), "runtime", "variant",
    "threads", "speedup_vs_torch", "parity": "pass"}, and "torch_path" (a TORCH_PATHS key) where PyTorch eager
    itself is the fastest.
    Raises LstmEdgeError for an unknown workload, "streaming" for a model that cannot stream (report["streaming"]),
    or when no measured target passes parity.
    """
    if workload not in ("streaming", "batch"):
        raise LstmEdgeError(f"unknown workload {workload!r}", "use --auto streaming or --auto batch")
    streaming = report.get("streaming", {})
    if workload == "streaming" and streaming.get("status") == "not-streamable":
        raise LstmEdgeError(f"--auto streaming: {streaming['reason']}", AUTO_BATCH_FIX)
    key = "stream_p50" if workload == "streaming" else batch_key(report)
    candidates = [r for r in report["runs"] if r.get("status") == "ok" and key in r["speedup_vs_torch"]]
    candidates.sort(key=lambda r: -r["speedup_vs_torch"][key])
    for r in candidates:
        v = verify(
            bundle_path,
            replace(
                VerifyConfig(providers=(r["runtime"],), variants=(r["variant"],), progress=False).quick(),
                drift_seq=50,  # the drift series is not read here
            ),
        )
        result = v["results"][0]
        if result["status"] == "pass":
            chosen = {
                "workload": workload,
                "point": key,
                "runtime": r["runtime"],
                "variant": r["variant"],
                "threads": r["threads"],
                "speedup_vs_torch": r["speedup_vs_torch"][key],
                "parity": "pass",
            }
            if key in r.get("baseline_path", {}):  # PyTorch eager itself: on the path that was faster here
                chosen["torch_path"] = r["baseline_path"][key]
            return chosen
    raise LstmEdgeError("no runtime × variant passed parity", "run `lstm-edge verify` to see why")


__all__ = [
    "TORCH_PATHS",
    "BenchConfig",
    "Target",
    "auto_choose",
    "baseline_samples",
    "batch_key",
    "bench",
    "check_workload",
    "cold_start",
    "flops_per_step",
    "measure_peak_gflops",
    "median_us",
    "mkldnn_enabled",
    "plot",
    "streaming_refusal",
    "table_notes",
    "table_rows",
    "to_markdown",
    "weight_count",
]

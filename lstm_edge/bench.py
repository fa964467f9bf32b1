"""`lstm-edge bench`: streaming latency percentiles, a throughput grid, cold start and peak RSS of every
runtime × variant beside PyTorch eager, measured interleaved in one run so that ratios survive a noisy machine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_edge.bundle import Bundle, entry_verdict
from lstm_edge.config import ModelConfig
from lstm_edge.environment import available_providers, cores, environment
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.isolated import failure, run_python
from lstm_edge.parity import VerifyConfig, verify
from lstm_edge.runtimes import RUNTIMES, Runner, open_runner

BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "int8": 1}

# `--quick`: a smaller grid and fewer steps (a fast look, not figures to quote).
QUICK = {"batches": (1, 8), "seqs": (1, 100), "stream_steps": 500, "min_time": 0.05, "max_reps": 5}

# PyTorch eager on CPU has two LSTM paths, chosen by torch.backends.mkldnn: oneDNN's fused LSTM kernel (on, the
# default) and ATen's own (off: a GEMM per layer per step). Neither wins everywhere. On the adding model, 1 thread,
# measured here: stream step 329 µs on against 212 µs off, B64·T100 16.6 ms on against 23.7 ms off; issue 18
# measured the oneDNN step at 368–1,070 µs with the process's allocator state, against a steady ~100 µs off. bench
# times both, interleaved with every other target, and takes the faster per shape as the baseline, so no speed-up
# is computed against the slower path. Keys are the flag's state, as a user would set it.
TORCH_PATHS = {"mkldnn_on": True, "mkldnn_off": False}


@contextmanager
def mkldnn_enabled(enabled: bool) -> Iterator[None]:
    """torch.backends.mkldnn enabled or not inside the block; all four oneDNN flags as they were after it (also on
    an exception). torch.backends.mkldnn.flags(enabled=…) would also set deterministic, allow_tf32 and fp32_precision
    to its own defaults inside the block; this changes the one flag. Raises nothing of its own."""
    import torch

    orig = torch.backends.mkldnn.set_flags(enabled, None, None, None)
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(*orig)


@dataclass
class BenchConfig:
    """What bench measures: providers × variants (PyTorch eager fp32 always runs first, as the reference, timed with
    torch.backends.mkldnn on and off: TORCH_PATHS) at each thread setting ("1", "all" or a count), streaming over
    stream_steps steps at B=1, and the batches × seqs grid (each point timed for at least min_time seconds and
    min_reps calls, at most max_reps)."""

    providers: tuple[str, ...] | None = None  # default: every runtime installed here
    variants: tuple[str, ...] | None = None  # default: every variant in the bundle
    threads: tuple[str, ...] = ("1", "all")
    rate_hz: float = 100.0
    batches: tuple[int, ...] = (1, 8, 64)
    seqs: tuple[int, ...] = (1, 100, 1000)
    stream_steps: int = 2000
    min_time: float = 0.25  # seconds of timed calls per runner and grid point, at least
    min_reps: int = 3
    max_reps: int = 30
    cold_start: bool = True
    progress: bool = True
    verify_hash: bool = True

    def quick(self) -> BenchConfig:
        """This config with the QUICK grid (B 1,8; T 1,100; 500 streaming steps; ≤ 5 reps of ≥ 0.05 s)."""
        return replace(self, **QUICK)


@dataclass
class Target:
    provider: str
    variant: str
    runner: Runner | None = None
    reason: str = ""
    samples: dict = field(default_factory=dict)
    baseline: bool = False  # one of the targets speed-ups are computed against
    torch_path: str | None = None  # a TORCH_PATHS key for PyTorch eager: which LSTM path it is timed on

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.variant}" + (f":{self.torch_path}" if self.torch_path else "")

    def flags(self) -> AbstractContextManager[None]:
        """The context every call of this target is timed in: its torch.backends.mkldnn state, or nothing."""
        return mkldnn_enabled(TORCH_PATHS[self.torch_path]) if self.torch_path else nullcontext()


def _threads(setting: str) -> int:
    if setting == "all":
        return cores()
    try:
        n = int(setting)
    except ValueError as e:
        raise LstmEdgeError(f"--threads {setting!r}", "give thread counts like 1,all or 1,2") from e
    if n < 1:
        raise LstmEdgeError(f"--threads {n}", "thread counts must be ≥ 1")
    return n


def flops_per_step(config: ModelConfig) -> int:
    """FLOPs (multiply-adds ×2) for one sequence and one step: four gate GEMVs per layer on [h, x], ~10 per hidden
    unit of gate math, plus the head. Raises nothing."""
    total, f_in = 0, config.input_size
    for _ in range(config.num_layers):
        total += 2 * 4 * config.hidden_size * (f_in + config.hidden_size) + 10 * config.hidden_size  # + gate math
        f_in = config.hidden_size
    return total + 2 * config.hidden_size * config.output_size


def weight_count(config: ModelConfig) -> int:
    """Parameters of the recurrent layers (W, R and two biases per gate) and the head."""
    n, f_in = 0, config.input_size
    for _ in range(config.num_layers):
        n += 4 * config.hidden_size * (f_in + config.hidden_size + 2)
        f_in = config.hidden_size
    return n + config.hidden_size * config.output_size + config.output_size


def measure_peak_gflops(threads: int) -> float:
    """A machine peak for the roofline line, in GFLOP/s: the best of 12 float32 1024² GEMMs (torch's oneDNN/MKL)
    on `threads` threads (this sets torch's thread count)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(12):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 1024**3 / best / 1e9


def median_us(fn: Callable[[], object], n: int) -> float:
    """Median wall time of n calls of fn(), in µs (for the benchmark scripts' side-by-side figures)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    us = np.asarray(samples_s) * 1e6
    return {
        "p50": float(np.percentile(us, 50)),
        "p90": float(np.percentile(us, 90)),
        "p99": float(np.percentile(us, 99)),
        "p999": float(np.percentile(us, 99.9)),
        "mean": float(us.mean()),
        "n": int(us.size),
    }


def _open_targets(bundle: Bundle, cfg: BenchConfig, threads: int) -> list[Target]:
    avail = available_providers()
    providers = cfg.providers or tuple(p for p in RUNTIMES if p != "reference" and avail[p] is None)
    variants = cfg.variants or tuple(bundle.variants())
    # The baseline, always first: PyTorch eager on the checkpoint, on both its paths; an imported bundle has no
    # checkpoint, so ORT CPU fp32.
    if "checkpoint" in bundle.manifest["artifacts"]:
        targets = [Target("torch", "fp32", baseline=True, torch_path=p) for p in TORCH_PATHS]
    else:
        targets = [Target("cpu", "fp32", baseline=True)]
    base = targets[0]
    targets += (
        [
            Target(p, v)
            for p in providers
            for v in variants
            if p != "torch" and p in RUNTIMES and (p, v) != ("cpu", "fp32")
        ]
        if base.provider == "cpu"
        else [Target(p, v) for p in providers for v in variants if p != "torch" and p in RUNTIMES]
    )
    for p in providers:
        if p not in RUNTIMES:
            raise LstmEdgeError(f"unknown provider {p!r}", f"choose from {', '.join(RUNTIMES)}")
    for t in targets:
        if avail.get(t.provider):
            t.reason = avail[t.provider]
            continue
        try:
            # Several sessions take turns here: an idle ORT pool spinning on its cores would steal them from the
            # runner being timed, so spinning is off when a runner has more than one thread.
            t.runner = open_runner(
                bundle.root,
                t.provider,
                variant=t.variant,
                threads=threads,
                verify_hash=cfg.verify_hash,
                spin=threads == 1,
            )
        except LstmEdgeError as e:
            t.reason = str(e)
    return targets


def _bench_streaming(live: list[Target], F: int, steps: int, bar) -> None:
    x = np.random.default_rng(0).random((1, F), dtype=np.float32)
    streams = {t.key: t.runner.stream() for t in live}
    for t in live:  # warm-up
        with t.flags():
            for _ in range(30):
                streams[t.key].step(x)
    chunk = 50
    samples: dict[str, list[float]] = {t.key: [] for t in live}
    perf = time.perf_counter
    for _ in range(max(1, steps // chunk)):
        for t in live:  # interleaved: every runner sees the same machine state, chunk by chunk
            step = streams[t.key].step
            out = samples[t.key]
            with t.flags():  # set once a chunk, outside the timed calls: its cost is not PyTorch's
                for _ in range(chunk):
                    t0 = perf()
                    step(x)
                    out.append(perf() - t0)
        bar.update(1)
    for t in live:
        t.samples["stream"] = _percentiles(samples[t.key])


def _bench_grid(live: list[Target], F: int, cfg: BenchConfig, bar) -> None:
    rng = np.random.default_rng(1)
    for B in cfg.batches:
        for T in cfg.seqs:
            x = rng.random((B, T, F), dtype=np.float32)
            times: dict[str, list[float]] = {t.key: [] for t in live}
            for t in live:
                with t.flags():
                    t.runner.run(x)  # warm-up at this shape
            spent = dict.fromkeys(times, 0.0)
            for _ in range(cfg.max_reps):
                for t in live:
                    with t.flags():
                        t0 = time.perf_counter()
                        t.runner.run(x)
                        dt = time.perf_counter() - t0
                    times[t.key].append(dt)
                    spent[t.key] += dt
                if all(len(v) >= cfg.min_reps for v in times.values()) and all(
                    s >= cfg.min_time for s in spent.values()
                ):
                    break
                if all(len(v) >= cfg.min_reps for v in times.values()) and max(spent.values()) > 6 * cfg.min_time:
                    break  # the slowest runner dominates; its median is already stable
            for t in live:
                med = float(np.median(times[t.key]))
                t.samples[f"B{B}xT{T}"] = {
                    "median_us": med * 1e6,
                    "sequences_per_s": B / med,
                    "steps_per_s": B * T / med,
                    "reps": len(times[t.key]),
                }
            bar.update(1)


_COLD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import lstm_edge
t1 = time.perf_counter()
r = lstm_edge.load(sys.argv[1], provider=sys.argv[2], variant=sys.argv[3], threads=int(sys.argv[4]))
if len(sys.argv) > 5:  # PyTorch eager's LSTM path; its runner imported torch, so no import time moves here
    import torch
    torch.backends.mkldnn.set_flags(sys.argv[5] == "on", None, None, None)
s = r.stream()
s.step(np.zeros(r.source.input_size, np.float32))
t2 = time.perf_counter()
for _ in range(200):
    s.step(np.zeros(r.source.input_size, np.float32))
r.run(np.zeros((64, 100, r.source.input_size), np.float32))
# VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still carries the parent's high-water mark.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"import_s": t1 - t0, "cold_start_s": t2 - t1, "peak_rss_mb": hwm / 1024}))
"""


def _cold_start(bundle: Bundle, t: Target, threads: int) -> dict:
    """In a fresh isolated process (lstm_edge.isolated: `python -I`, an empty working folder): import, create the
    session, run the first step; then peak RSS after real work; for PyTorch eager on the target's
    torch.backends.mkldnn path. Raises LstmEdgeError where the child fails: the runner opened in this process, so
    a failure there is a real problem, not a row to pass over."""
    path = [("on" if TORCH_PATHS[t.torch_path] else "off")] if t.torch_path else []
    runs = []
    for _ in range(3):
        out = run_python(_COLD, [str(bundle.root.resolve()), t.provider, t.variant, str(threads), *path])
        why = failure(out)
        if why is None:
            try:
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                why = f"no measurement in its output ({first_line(out.stdout) or 'empty'})"
        if why is not None:
            raise LstmEdgeError(
                f"the cold-start process for {t.provider} {t.variant} failed: {why}",
                "run `lstm-edge doctor`, or skip the measurement with --no-cold-start",
            )
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def bench(bundle_path: str | Path, cfg: BenchConfig | None = None) -> dict:
    """Time every provider × variant beside PyTorch eager fp32, interleaved in one run so ratios survive noise.

    Args:
        bundle_path: a bundle folder.
        cfg: what to measure (BenchConfig(); .quick() for a fast look).
    Returns the report: {"schema": "lstm-edge/bench", "bundle", "config", "model" (flops_per_step, weights, …),
    "environment", "runs": one per target and thread setting, with "streaming" percentiles (µs), "grid"
    (median_us, sequences_per_s, steps_per_s per B×T point), "roofline", "speedup_vs_torch" (PyTorch time /
    target time), "cold" (import_s, cold_start_s, peak_rss_mb) — or "status": "unsupported" with the reason}.
    PyTorch eager (the first run) is timed on both its CPU LSTM paths (TORCH_PATHS: torch.backends.mkldnn on and
    off), interleaved with the rest; its run's figures, and every speed-up, are the faster path's per shape, and
    it adds "paths" ({"mkldnn_on"|"mkldnn_off": {"mkldnn", "streaming", "grid", "speedup_vs_torch", "cold"}}) and
    "baseline_path" ({"stream_p50" | "B…xT…" | "cold_start" | "rss": the path taken}). A bundle without a
    checkpoint is measured against ORT CPU fp32 instead (no paths).
    Raises LstmEdgeError for bad input (an unreadable bundle, an unknown provider, a bad thread setting) or when
    the PyTorch reference cannot be opened.
    """
    cfg = cfg or BenchConfig()
    bundle = Bundle.open(bundle_path)
    if not bundle.stateful:  # an imported model (or a fallback export) whose state is not a graph input
        raise LstmEdgeError(
            f"{bundle.name}'s state is not a graph input, and bench measures streaming latency with state carried",
            "re-import it with state I/O: lstm-edge import MODEL.onnx --out BUNDLE --rebuild",
        )
    if not bundle.config.streamable:
        raise LstmEdgeError(
            f"{bundle.name} is bidirectional: its backward direction needs the whole sequence, so it cannot stream, "
            "and bench measures streaming latency with state carried",
            "time it whole-sequence with `lstm-edge run` or score, or export a unidirectional model",
        )
    config = bundle.config
    F = config.input_size
    flops = flops_per_step(config)
    n_weights = weight_count(config)
    report: dict = {
        "schema": "lstm-edge/bench",
        "schema_version": 1,
        "bundle": {"name": bundle.name, "path": str(bundle.root)},
        "config": asdict(cfg),
        "model": {
            "flops_per_step": flops,
            "weights": n_weights,
            "hidden_size": config.hidden_size,
            "num_layers": config.num_layers,
            "input_size": F,
        },
        "environment": environment(),
        "runs": [],
    }
    for setting in cfg.threads:
        threads = _threads(setting)
        targets = _open_targets(bundle, cfg, threads)
        live = [t for t in targets if t.runner is not None]
        base = [t for t in targets if t.baseline]
        for t in base:
            if t.runner is None:
                raise LstmEdgeError(f"the baseline ({t.provider}) could not be opened: {t.reason}", "check the bundle")
        total = max(1, cfg.stream_steps // 50) + len(cfg.batches) * len(cfg.seqs)
        peak_before = measure_peak_gflops(threads)
        with tqdm(total=total, desc=f"bench threads={setting}", disable=not cfg.progress) as bar:
            _bench_streaming(live, F, cfg.stream_steps, bar)
            _bench_grid(live, F, cfg, bar)
        peak = max(peak_before, measure_peak_gflops(threads))  # the machine's best, before or after the phase
        ref, taken = baseline_samples(base)
        # One run for the baseline (PyTorch eager, the faster path per shape; its two paths inside it), then the rest.
        for t in [base[0], *(t for t in targets if not t.baseline)]:
            entry = {"runtime": t.provider, "variant": t.variant, "threads": threads, "threads_setting": setting}
            if t.runner is None:
                report["runs"].append(entry | {"status": "unsupported", "reason": t.reason})
                continue
            s = ref if t.baseline else t.samples
            precision = bundle.entry(t.variant).get("precision", "fp32") if t.provider != "torch" else "fp32"
            path = (
                bundle.artifact(t.variant, cfg.verify_hash)
                if t.provider != "torch"
                else bundle.checkpoint(cfg.verify_hash)
            )
            step_s = s["stream"]["p50"] / 1e6
            best_point = _roofline_point(cfg)
            achieved = s[best_point]["steps_per_s"] * flops / 1e9
            entry |= {
                "status": "ok",
                "describe": t.runner.describe(),
                "model_bytes": path.stat().st_size,
                "deployable": entry_verdict(bundle.entry(t.variant)) == "deployable",
                "verdict": entry_verdict(bundle.entry(t.variant)),
                "streaming": s["stream"] | {"real_time_factor": step_s * cfg.rate_hz, "rate_hz": cfg.rate_hz},
                "grid": {k: v for k, v in s.items() if k.startswith("B")},
                "roofline": {
                    "flops_per_step": flops,
                    "weight_bytes": n_weights * BYTES_PER_WEIGHT.get(precision, 4),
                    "point": best_point,
                    "gflops": achieved,
                    "peak_gflops": peak,
                    "fraction_of_peak": achieved / peak,
                },
                "speedup_vs_torch": _speedups(ref, s),
            }
            if t.torch_path:  # PyTorch eager: both paths' own figures, and which one each baseline figure is
                entry["describe"]["mkldnn"] = "the faster of on and off per shape: see baseline_path"
                entry["baseline_path"] = taken
                entry["paths"] = {
                    p.torch_path: {
                        "mkldnn": TORCH_PATHS[p.torch_path],
                        "streaming": p.samples["stream"],
                        "grid": {k: v for k, v in p.samples.items() if k.startswith("B")},
                        "speedup_vs_torch": _speedups(ref, p.samples),
                    }
                    for p in base
                }
            if cfg.cold_start and t.torch_path:
                for p in base:
                    entry["paths"][p.torch_path]["cold"] = _cold_start(bundle, p, threads)
                entry["cold"], cold_taken = _faster_cold({k: v["cold"] for k, v in entry["paths"].items()})
                entry["baseline_path"] |= cold_taken
            elif cfg.cold_start:
                entry["cold"] = _cold_start(bundle, t, threads)
            report["runs"].append(entry)
        for t in live:
            t.runner.close()
    _cold_ratios(report)
    return report


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


def _faster_cold(colds: dict[str, dict]) -> tuple[dict, dict[str, str]]:
    """The baseline's cold figures from its paths': the lower of each (cold start, and peak RSS, so that neither
    ratio flatters), and which path each came from."""
    fast = min(colds, key=lambda k: colds[k]["cold_start_s"])
    small = min(colds, key=lambda k: colds[k]["peak_rss_mb"])
    cold = colds[fast] | {"peak_rss_mb": colds[small]["peak_rss_mb"]}
    return cold, {"cold_start": fast, "rss": small}


def _speedups(ref: dict, s: dict) -> dict[str, float]:
    """Baseline time / this time, for the streaming p50 and every grid point."""
    return {
        "stream_p50": ref["stream"]["p50"] / s["stream"]["p50"],
        **{k: ref[k]["median_us"] / v["median_us"] for k, v in s.items() if k.startswith("B")},
    }


def _roofline_point(cfg: BenchConfig) -> str:
    """The grid point the roofline line reports: the largest batch at T=100 (or the nearest length measured)."""
    seq = min(cfg.seqs, key=lambda t: abs(t - 100))
    return f"B{max(cfg.batches)}xT{seq}"


def _cold_ratios(report: dict) -> None:
    for r in report["runs"]:
        ref = next((x for x in report["runs"] if x["runtime"] == "torch" and x["threads"] == r["threads"]), None)
        if r.get("status") == "ok" and "cold" in r and ref and "cold" in ref and "cold_start_s" in r["cold"]:
            r["speedup_vs_torch"]["cold_start"] = ref["cold"]["cold_start_s"] / r["cold"]["cold_start_s"]
            r["speedup_vs_torch"]["rss"] = ref["cold"]["peak_rss_mb"] / r["cold"]["peak_rss_mb"]
        for path in r.get("paths", {}).values():  # PyTorch eager's two paths, against the baseline's cold figures
            if "cold" in path:
                path["speedup_vs_torch"]["cold_start"] = r["cold"]["cold_start_s"] / path["cold"]["cold_start_s"]
                path["speedup_vs_torch"]["rss"] = r["cold"]["peak_rss_mb"] / path["cold"]["peak_rss_mb"]


PATH_LABELS = {"mkldnn_on": "mkldnn on", "mkldnn_off": "mkldnn off"}  # as tables and plots name TORCH_PATHS
TABLE_POINTS = ("B1xT100", "B64xT100")  # the grid points the table shows


def _time_cells(streaming: dict, grid: dict, sp: dict, cold: dict, taken: dict[str, str]) -> dict[str, str]:
    """The timing columns of one table row; where `taken` names the PyTorch path a figure came from, it says so."""

    def tag(key: str) -> str:
        return f", {PATH_LABELS[taken[key]]}" if key in taken else ""

    cells = {
        "stream p50 µs": f"{streaming['p50']:.1f} ({sp['stream_p50']:.2f}×{tag('stream_p50')})",
        "stream p99 µs": f"{streaming['p99']:.1f}",
    }
    for key in TABLE_POINTS:
        if key in grid:
            cells[f"{key} µs"] = f"{grid[key]['median_us']:.0f} ({sp[key]:.2f}×{tag(key)})"
    if "cold_start_s" in cold:
        cells["cold ms"] = f"{cold['cold_start_s'] * 1e3:.0f}" + (
            f" ({PATH_LABELS[taken['cold_start']]})" if "cold_start" in taken else ""
        )
        cells["RSS MB"] = f"{cold['peak_rss_mb']:.0f}" + (f" ({PATH_LABELS[taken['rss']]})" if "rss" in taken else "")
    return cells


def table_rows(report: dict) -> list[dict]:
    """One row per run for a table: target, threads, stream p50/p99 µs, B1xT100/B64xT100 µs with speed-ups, cold
    start ms, RSS MB, GFLOP/s (fraction of peak), parity (deployable or not); a note for unsupported targets.
    PyTorch eager's row is the baseline (the faster of its two paths per shape, each figure naming the path
    taken), followed by one row per path (torch.backends.mkldnn on / off) with its own times and its ratio to the
    baseline."""
    rows = []
    for r in report["runs"]:
        target = f"{r['runtime']} {r['variant']}"
        if r.get("status") != "ok":
            rows.append({"target": target, "threads": r["threads"], "note": r["reason"].split(" — ")[0]})
            continue
        taken = r.get("baseline_path", {})
        row = {"target": target + (" (faster path)" if taken else ""), "threads": r["threads"]}
        row |= _time_cells(r["streaming"], r["grid"], r["speedup_vs_torch"], r.get("cold", {}), taken)
        row["GFLOP/s (peak %)"] = f"{r['roofline']['gflops']:.1f} ({r['roofline']['fraction_of_peak'] * 100:.0f}%)"
        row["parity"] = r.get("verdict", "deployable" if r["deployable"] else "not-deployable")
        rows.append(row)
        for name, path in r.get("paths", {}).items():
            rows.append(
                {"target": f"{target} · {PATH_LABELS[name]}", "threads": r["threads"]}
                | _time_cells(path["streaming"], path["grid"], path["speedup_vs_torch"], path.get("cold", {}), {})
            )
    return rows


def to_markdown(report: dict) -> str:
    """table_rows as a Markdown table, with the model's size and how to read the speed-ups under it."""
    rows = table_rows(report)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    m = report["model"]
    lines.append("")
    lines.append(
        f"Model: input {m['input_size']}, hidden {m['hidden_size']}, {m['num_layers']} layers — "
        f"{m['flops_per_step'] / 1e6:.2f} MFLOP per sequence-step. Speed-ups (×) are PyTorch eager time / "
        "target time, measured interleaved in the same run."
    )
    if any("paths" in r for r in report["runs"]):
        lines.append("")
        lines.append(
            "PyTorch eager is timed on both of its CPU LSTM paths, torch.backends.mkldnn on (oneDNN's LSTM, "
            "PyTorch's default) and off (ATen's own), interleaved with the others; its baseline row takes the "
            "faster of the two at each shape (named beside each figure), and every speed-up divides by that. "
            "The rows under it give each path's own times and its ratio to the baseline."
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> Path:
    """Write a PNG to `out`, atomically: bars of speed-ups against PyTorch eager (stream p50, B1xT100, B64xT100)
    and, beside them where PyTorch was timed on both paths, each path's time per shape (µs, log scale) with the
    one the baseline took hatched and marked. Returns out."""
    from lstm_edge.atomic import atomic_write_bytes
    from lstm_edge.plots import png_bytes, pyplot

    plt = pyplot()

    runs = [r for r in report["runs"] if r.get("status") == "ok" and r["runtime"] != "torch"]
    torch_runs = [r for r in report["runs"] if r.get("status") == "ok" and "paths" in r]
    metrics = ["stream_p50", "B1xT100", "B64xT100"]
    if torch_runs:
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    else:
        fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(metrics))
    xs = np.arange(len(runs))
    for k, m in enumerate(metrics):
        ax.bar(xs + k * width, [r["speedup_vs_torch"].get(m, 0) for r in runs], width, label=m)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(xs + width)
    ax.set_xticklabels([f"{r['runtime']}\n{r['variant']}\nt={r['threads']}" for r in runs], fontsize=7)
    ax.set_ylabel("speed-up vs PyTorch eager (×)")
    ax.set_title(f"{report['bundle']['name']}: speed against PyTorch eager (faster path per shape), same run")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if torch_runs:
        _plot_torch_paths(bx, torch_runs, metrics)
    fig.tight_layout()
    return atomic_write_bytes(Path(out), png_bytes(fig))


def _plot_torch_paths(ax, torch_runs: list[dict], metrics: list[str]) -> None:
    """PyTorch eager's two paths side by side per shape and thread setting, in µs; the baseline's pick hatched."""

    def us(run: dict, metric: str) -> float | None:
        if metric == "stream_p50":
            return run["streaming"]["p50"]
        return run["grid"][metric]["median_us"] if metric in run["grid"] else None

    groups = [(r, m) for r in torch_runs for m in metrics if us(r, m) is not None]
    names = list(TORCH_PATHS)
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        for g, (r, m) in enumerate(groups):
            t = us(r["paths"][name], m)
            picked = r["baseline_path"].get(m) == name
            ax.bar(
                g + k * width,
                t,
                width,
                color=f"C{k}",
                hatch="//" if picked else None,
                edgecolor="k" if picked else None,
            )
            ax.annotate(f"{t:.0f}" + (" ✓" if picked else ""), (g + k * width, t), ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(groups)) + width * (len(names) - 1) / 2)
    ax.set_xticklabels([f"{m}\nt={r['threads']}" for r, m in groups], fontsize=7)
    ax.set_ylabel("PyTorch eager µs per call")
    ax.set_title("PyTorch eager by path (✓ hatched: the baseline's pick)")
    from matplotlib.patches import Patch  # plain swatches: the first group's bar may be the hatched one

    ax.legend(handles=[Patch(color=f"C{k}", label=PATH_LABELS[n]) for k, n in enumerate(names)], fontsize=7)
    ax.grid(axis="y", alpha=0.3)


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
    Raises LstmEdgeError for an unknown workload, or when no measured target passes parity.
    """
    if workload not in ("streaming", "batch"):
        raise LstmEdgeError(f"unknown workload {workload!r}", "use --auto streaming or --auto batch")
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

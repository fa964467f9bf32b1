"""How bench times: model FLOPs and weights, the machine's peak, streaming and grid rounds interleaved across
targets, and the cold start in a fresh process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np

from lstm_edge.bench.targets import TORCH_PATHS, BenchConfig, Target
from lstm_edge.bundle import Bundle
from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.isolated import failure, run_python


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


def measure_peak_gflops(threads: int) -> dict[str, float]:
    """A machine peak for the roofline line, in GFLOP/s: the best of 12 float32 1024² GEMMs (torch's oneDNN/MKL)
    on `threads` threads (this sets torch's thread count), by wall time and by process CPU time.

    Returns {"wall": GFLOP/s, "cpu": GFLOP/s}: a GEMM that lost time slices to other processes is slow by wall time,
    not by CPU time, so the CPU peak is the one a loaded machine does not drag down (at 1 thread; with more, CPU
    time sums the threads and "cpu" is GFLOP/s per CPU-second)."""
    import torch  # deferred: only bench's roofline needs it, and only when timing

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    wall = cpu = float("inf")
    for _ in range(12):
        c0, t0 = time.process_time(), time.perf_counter()
        a @ b
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    flop = 2 * 1024**3
    return {"wall": flop / wall / 1e9, "cpu": flop / max(cpu, 1e-9) / 1e9}


def median_us(fn: Callable[[], object], n: int) -> float:
    """Median wall time of n calls of fn(), in µs (for the benchmark scripts' side-by-side figures)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """Times in seconds as µs percentiles: p50, p90, p99, p999, mean, and the count n."""
    us = np.asarray(samples_s) * 1e6
    return {
        "p50": float(np.percentile(us, 50)),
        "p90": float(np.percentile(us, 90)),
        "p99": float(np.percentile(us, 99)),
        "p999": float(np.percentile(us, 99.9)),
        "mean": float(us.mean()),
        "n": int(us.size),
    }


def step_input(config: ModelConfig) -> np.ndarray:
    """One streaming step's input at B=1 for a model in `config`'s form: float32 [1, F] in [0, 1), or one int64
    token id [1] for a token model. Raises nothing."""
    if config.vocab_size:
        return np.array([config.vocab_size // 2], np.int64)
    return np.random.default_rng(0).random((1, config.input_size), dtype=np.float32)


def time_streaming(live: list[Target], config: ModelConfig, steps: int, bar) -> None:
    """Time `steps` single steps at B=1 (step_input: in the form of the model in `config`) of every live target,
    interleaved 50 steps at a time, into its samples["stream"]: wall-time percentiles per step (µs), and cpu_us /
    wall_chunk_us, the process CPU time and wall time per step of a 50-step chunk (medians over chunks, µs); `bar`
    advances once per round."""
    x = step_input(config)
    streams = {t.key: t.runner.stream() for t in live}
    for t in live:  # warm-up
        with t.flags():
            for _ in range(30):
                streams[t.key].step(x)
    chunk = 50
    samples: dict[str, list[float]] = {t.key: [] for t in live}
    chunks: dict[str, list[tuple[float, float]]] = {t.key: [] for t in live}  # (wall, CPU) s per step, per chunk
    perf, cpu = time.perf_counter, time.process_time
    for _ in range(max(1, steps // chunk)):
        for t in live:  # interleaved: every runner sees the same machine state, chunk by chunk
            step = streams[t.key].step
            out = samples[t.key]
            with t.flags():  # set once a chunk, outside the timed calls: its cost is not PyTorch's
                c0, w0 = cpu(), perf()  # CPU time a chunk at a time: a clock read per step would cost ~1 µs
                for _ in range(chunk):
                    t0 = perf()
                    step(x)
                    out.append(perf() - t0)
                chunks[t.key].append(((perf() - w0) / chunk, (cpu() - c0) / chunk))
        bar.update(1)
    for t in live:
        wall, cpu_s = np.median(np.asarray(chunks[t.key]), axis=0)
        t.samples["stream"] = percentiles(samples[t.key]) | {
            "cpu_us": float(cpu_s * 1e6),  # per step, median over chunks
            "wall_chunk_us": float(wall * 1e6),  # the same chunks' wall time per step: the ratio's other side
        }


def grid_input(config: ModelConfig, B: int, T: int, rng: np.random.Generator) -> np.ndarray:
    """One grid point's input for a model in `config`'s layout: B sequences of T steps, float32 [B, T, F] in [0, 1)
    — [T, B, F] for a time-major model (batch_first False), so that "B…xT…" names the real batch and length —
    or int64 token ids [B, T] (or [T, B]) in 0..vocab_size-1 for a token model. Raises nothing."""
    if config.vocab_size:
        x = rng.integers(0, config.vocab_size, (B, T), dtype=np.int64)
    else:
        x = rng.random((B, T, config.input_size), dtype=np.float32)
    return x if config.batch_first else np.ascontiguousarray(x.swapaxes(0, 1))


def time_grid(live: list[Target], config: ModelConfig, cfg: BenchConfig, bar) -> None:
    """Time whole-sequence runs of every live target at each cfg.batches × cfg.seqs point (grid_input: in the
    layout of the model in `config`), interleaved call by call, into its samples["B…xT…"] (median_us,
    sequences_per_s, steps_per_s, reps: wall time; cpu_us: the median process CPU time of a call); `bar` advances
    per point."""
    rng = np.random.default_rng(1)
    for B in cfg.batches:
        for T in cfg.seqs:
            x = grid_input(config, B, T, rng)
            times: dict[str, list[float]] = {t.key: [] for t in live}
            cpu: dict[str, list[float]] = {t.key: [] for t in live}
            for t in live:
                with t.flags():
                    t.runner.run(x)  # warm-up at this shape
            spent = dict.fromkeys(times, 0.0)
            for _ in range(cfg.max_reps):
                for t in live:
                    with t.flags():
                        c0, t0 = time.process_time(), time.perf_counter()
                        t.runner.run(x)
                        dt = time.perf_counter() - t0
                        cpu[t.key].append(time.process_time() - c0)
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
                    "cpu_us": float(np.median(cpu[t.key])) * 1e6,
                }
            bar.update(1)


COLD_START_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import lstm_edge
t1 = time.perf_counter()
r = lstm_edge.load(sys.argv[1], provider=sys.argv[2], variant=sys.argv[3], threads=int(sys.argv[4]),
                   self_check=sys.argv[5] == "check")  # its pass is cached by then: the open a user sees next
if len(sys.argv) > 7:  # PyTorch eager's LSTM path; its runner imported torch, so no import time moves here
    import torch
    torch.backends.mkldnn.set_flags(sys.argv[7] == "on", None, None, None)
F, ids = r.source.input_size, bool(r.source.config.vocab_size)  # a token model reads int64 ids: [B, T], a step [1]
def zeros(B, T):
    return np.zeros((B, T), np.int64) if ids else np.zeros((B, T, F), np.float32)
if sys.argv[6] == "stream":  # the first answer a streaming user waits for: one step
    s = r.stream()
    x = np.zeros(1, np.int64) if ids else np.zeros(F, np.float32)
    s.step(x)
    t2 = time.perf_counter()
    for _ in range(200):
        s.step(x)
else:  # a model that cannot stream: the first answer is a whole sequence (B1, T1)
    r.run(zeros(1, 1))
    t2 = time.perf_counter()
r.run(zeros(64, 100))  # [64, 100] read as [T, B] by a time-major model: the same work for the RSS
# VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still carries the parent's high-water mark.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"import_s": t1 - t0, "cold_start_s": t2 - t1, "peak_rss_mb": hwm / 1024}))
"""


def cold_start(bundle: Bundle, t: Target, threads: int, streams: bool = True) -> dict:
    """In a fresh isolated process (lstm_edge.isolated: `python -I`, an empty working folder): import, create the
    session, run the first step (where the model cannot stream, `streams` False: the first whole sequence, B1·T1);
    then peak RSS after real work; for PyTorch eager on the target's torch.backends.mkldnn path.
    Returns {"import_s", "cold_start_s", "peak_rss_mb"}, medians of 3 processes. Raises LstmEdgeError where the child fails: the runner opened in this process, so
    a failure there is a real problem, not a row to pass over."""
    path = [("on" if TORCH_PATHS[t.torch_path] else "off")] if t.torch_path else []
    runs = []
    for _ in range(3):
        check = "check" if t.runner is not None and t.runner.options.self_check else "no-check"
        mode = "stream" if streams else "run"
        args = [str(bundle.root.resolve()), t.provider, t.variant, str(threads), check, mode, *path]
        out = run_python(COLD_START_SCRIPT, args)
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

"""Wall time beside CPU time in bench (issue 25 item 7): the fields exist, the load flag fires on a synthetic pair
that disagrees and stays quiet on one that agrees, the peak fraction never exceeds 1. Never a timed assertion."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from lstm_edge.bench import BenchConfig, Target, baseline_samples, bench, table_notes
from lstm_edge.bench.baseline import roofline, speedups
from lstm_edge.bench.cputime import LOAD_NOTE, WALL_OVER_CPU_LIMIT, capped_fraction, load_check, time_basis
from lstm_edge.bench.report import gflops_cell

BENCH_SCHEMA = json.loads(resources.files("lstm_edge").joinpath("schemas/bench.schema.json").read_text())
# A loaded machine's pair: the stream chunk took 3× its CPU time by the wall clock; the grid point agrees.
LOADED = {
    "stream": {"p50": 310.0, "cpu_us": 100.0, "wall_chunk_us": 300.0},
    "B1xT100": {"median_us": 1000.0, "cpu_us": 950.0, "steps_per_s": 1e5},
}


def test_load_flag_fires_where_wall_and_cpu_disagree():
    check = load_check(LOADED, threads=1)
    assert check["wall_over_cpu"] == pytest.approx({"stream_p50": 3.0, "B1xT100": 1000 / 950})
    assert check["inflated"] == ["stream_p50"] and check["note"] == LOAD_NOTE and not check["cpu_sums_threads"]
    quiet = load_check({"B1xT100": {"median_us": 1000.0, "cpu_us": 1000.0 / WALL_OVER_CPU_LIMIT * 1.01}}, threads=2)
    assert quiet["inflated"] == [] and "note" not in quiet and quiet["cpu_sums_threads"]


def test_speedups_divide_cpu_time_at_one_thread_and_wall_time_above():
    assert (time_basis(1), time_basis(2)) == ("cpu", "wall")
    fast = {
        "stream": {"p50": 100.0, "cpu_us": 50.0, "wall_chunk_us": 100.0},
        "B1xT100": {"median_us": 100.0, "cpu_us": 95.0},
    }
    assert speedups(LOADED, fast, "cpu") == pytest.approx({"stream_p50": 2.0, "B1xT100": 10.0})
    assert speedups(LOADED, fast, "wall") == pytest.approx({"stream_p50": 3.1, "B1xT100": 10.0})
    # PyTorch's faster path is picked on the same clock: by wall one path, by CPU time the other
    on = Target(
        "torch", "fp32", baseline=True, torch_path="mkldnn_on", samples={"B1xT1": {"median_us": 90.0, "cpu_us": 80.0}}
    )
    off = Target("torch", "fp32", baseline=True, torch_path="mkldnn_off", samples={"B1xT1": {"median_us": 95.0, "cpu_us": 60.0}})  # fmt: skip
    assert baseline_samples([on, off], "wall")[1] == {"B1xT1": "mkldnn_on"}
    assert baseline_samples([on, off], "cpu")[1] == {"B1xT1": "mkldnn_off"}


def test_fraction_of_peak_is_capped_and_flagged():
    assert capped_fraction(2.0, 1.0) == (1.0, True) and capped_fraction(0.5, 1.0) == (0.5, False)
    # 1e5 steps/s × 1e5 FLOPs = 10 GFLOP/s against a load-dragged peak of 5
    line = roofline(LOADED, "B1xT100", 100_000, {"wall": 5.0, "cpu": 5.0}, "cpu")
    assert line["fraction_of_peak"] == 1.0 and line["capped"] and line["fraction_raw"] > 1
    assert line["basis"] == "cpu" and line["gflops"] == pytest.approx(100 / 950e-6 * 1e5 / 1e9)
    assert roofline(LOADED, "B1xT100", None, {"wall": 5.0, "cpu": 5.0}, "cpu")["fraction_of_peak"] is None


def test_table_note_says_when_wall_time_was_inflated():
    report = {"load": {"flagged": True, "runs": ["cpu int8 threads 1: B1xT100"], "limit": 1.5, "note": LOAD_NOTE}}
    (line,) = table_notes(report)
    assert line.startswith(LOAD_NOTE) and "cpu int8 threads 1: B1xT100" in line
    assert table_notes({"load": {"flagged": False, "runs": [], "limit": 1.5}}) == []
    # at 1 thread the × divide CPU time while the µs shown are wall: the table says so
    ran = {"runs": [{"status": "ok", "threads": 1}], "load": {"flagged": False, "runs": [], "limit": 1.5}}
    assert table_notes(ran) == ["× = the baseline's time / this target's, by process CPU time at 1 thread (the µs "
                                "are wall time)"]  # fmt: skip


def test_bench_report_carries_cpu_time_for_every_figure(small_bundle):
    cfg = BenchConfig(providers=("cpu",), variants=("fp32",), threads=("1",), batches=(1, 2), seqs=(1, 5),
                      stream_steps=100, min_time=0.0, max_reps=3, cold_start=False, progress=False)  # fmt: skip
    report = bench(small_bundle, cfg)
    jsonschema.validate(json.loads(json.dumps(report)), BENCH_SCHEMA)
    assert set(report["load"]) >= {"flagged", "runs", "limit"}
    for run in report["runs"]:
        assert run["streaming"]["cpu_us"] > 0 and run["streaming"]["wall_chunk_us"] > 0
        assert all(g["cpu_us"] >= 0 for g in run["grid"].values())
        assert set(run["load"]["wall_over_cpu"]) <= set(run["speedup_vs_torch"])
        assert run["speedup_basis"] == "cpu" and set(run["speedups_by_clock"]) == {"wall", "cpu"}
        assert run["roofline"]["basis"] == "cpu" and 0 < run["roofline"]["fraction_of_peak"] <= 1
        assert {"gflops_wall", "peak_gflops_wall", "capped", "fraction_raw"} <= set(run["roofline"])


def test_roofline_cell_says_capped_and_unknown():
    capped = {"variant": "fp32", "roofline": {"gflops": 39.0, "fraction_of_peak": 1.0, "capped": True}}
    assert gflops_cell(capped) == "39.0 (capped: 100%)"
    assert (
        gflops_cell({"variant": "fp32", "roofline": {"gflops": 9.0, "fraction_of_peak": 0.3, "capped": False}})
        == "9.0 (30%)"
    )
    assert gflops_cell({"variant": "fp32", "roofline": {"gflops": None}}) == "unknown"  # a whole graph's FLOPs unknown

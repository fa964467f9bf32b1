"""bench on a tiny model: structure of the JSON, ratios present, outputs written. No timing assertions."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lstm_edge.bench import BenchConfig, bench, flops_per_step, weight_count
from lstm_edge.cli import main
from lstm_edge.config import ModelConfig


def test_bench_report_structure(small_bundle):
    cfg = BenchConfig(
        providers=("cpu", "tract"),
        threads=("1",),
        batches=(1, 2),
        seqs=(1, 5),
        stream_steps=100,
        min_time=0.0,
        max_reps=3,
        cold_start=True,
        progress=False,
    )
    report = bench(small_bundle, cfg)
    runs = {(r["runtime"], r["variant"]): r for r in report["runs"]}
    assert ("torch", "fp32") in runs and ("cpu", "fp32") in runs and ("tract", "fp32") in runs
    r = runs[("cpu", "fp32")]
    assert r["status"] == "ok"
    assert {"p50", "p90", "p99", "p999", "real_time_factor"} <= set(r["streaming"])
    assert set(r["grid"]) == {"B1xT1", "B1xT5", "B2xT1", "B2xT5"}
    assert {"sequences_per_s", "steps_per_s", "median_us"} <= set(r["grid"]["B2xT5"])
    assert {"stream_p50", "B2xT5", "cold_start", "rss"} <= set(r["speedup_vs_torch"])
    assert r["cold"]["peak_rss_mb"] > 0 and r["cold"]["cold_start_s"] > 0
    assert 0 < r["roofline"]["fraction_of_peak"] and r["roofline"]["weight_bytes"] > 0
    assert runs[("torch", "fp32")]["speedup_vs_torch"]["stream_p50"] == 1.0


def test_bench_cli_writes_outputs(small_bundle, tmp_path):
    r = CliRunner().invoke(
        main,
        [
            "bench",
            str(small_bundle),
            "--quick",
            "--threads",
            "1",
            "--providers",
            "cpu",
            "--no-cold-start",
            "--auto",
            "streaming",
            "--json",
            str(tmp_path / "b.json"),
            "--markdown",
            str(tmp_path / "b.md"),
            "--plot",
            str(tmp_path / "b.png"),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["auto"]["parity"] == "pass" and report["auto"]["runtime"] in ("torch", "cpu")
    assert "speed-ups" in (tmp_path / "b.md").read_text().lower()
    assert (tmp_path / "b.png").stat().st_size > 5000
    assert "fastest for streaming" in r.output


def test_flops_and_weights_from_config():
    c = ModelConfig(input_size=100, hidden_size=256, num_layers=2, output_size=1)
    # 2 layers × 4 gates × 256 × (in + 256) MACs × 2 FLOPs, plus gate math and the head
    assert flops_per_step(c) > 2 * 4 * 256 * (356 + 512)
    assert weight_count(c) == 4 * 256 * (100 + 256 + 2) + 4 * 256 * (256 + 256 + 2) + 256 + 1


def test_bad_threads_exit_2(small_bundle):
    r = CliRunner().invoke(main, ["bench", str(small_bundle), "--threads", "zero"])
    assert r.exit_code == 2 and "--threads" in r.output

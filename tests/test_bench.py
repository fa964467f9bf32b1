"""bench on a tiny model: structure of the JSON, ratios present, outputs written. No timing assertions."""

from __future__ import annotations

import json

import pytest
import torch.backends.mkldnn as mkldnn
from click.testing import CliRunner

from lstm_edge.bench import (
    TORCH_PATHS,
    BenchConfig,
    Target,
    baseline_samples,
    bench,
    flops_per_step,
    mkldnn_enabled,
    weight_count,
)
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
    assert [(r["runtime"], r["variant"]) for r in report["runs"]].count(("torch", "fp32")) == 1  # one baseline run

    # PyTorch eager: both oneDNN paths measured at every shape; the baseline is the faster one, shape by shape.
    base = runs[("torch", "fp32")]
    paths = base["paths"]
    assert set(paths) == set(TORCH_PATHS) == {"mkldnn_on", "mkldnn_off"}
    assert paths["mkldnn_on"]["mkldnn"] is True and paths["mkldnn_off"]["mkldnn"] is False
    for p in paths.values():
        assert set(p["grid"]) == set(base["grid"]) and p["streaming"]["n"] == base["streaming"]["n"] > 0
        assert p["cold"]["cold_start_s"] > 0
    # at 1 thread every comparison is by process CPU time (bench.cputime): the faster path, and the speed-ups
    assert r["speedup_basis"] == base["speedup_basis"] == "cpu"
    p50 = {k: p["streaming"]["cpu_us"] for k, p in paths.items()}
    assert base["streaming"]["cpu_us"] == min(p50.values())
    assert base["baseline_path"]["stream_p50"] == min(p50, key=p50.get)
    for point, g in base["grid"].items():
        med = {k: p["grid"][point]["cpu_us"] for k, p in paths.items()}
        assert g["cpu_us"] == min(med.values()) and base["baseline_path"][point] == min(med, key=med.get)
        assert r["speedup_vs_torch"][point] == pytest.approx(min(med.values()) / r["grid"][point]["cpu_us"])
        assert r["speedups_by_clock"]["cpu"][point] == r["speedup_vs_torch"][point]
        assert r["speedups_by_clock"]["wall"][point] == pytest.approx(g["median_us"] / r["grid"][point]["median_us"])
        # each path against the baseline: 1 where it was taken, ≤ 1 where not
        assert max(p["speedup_vs_torch"][point] for p in paths.values()) == 1.0
    assert r["speedup_vs_torch"]["stream_p50"] == pytest.approx(min(p50.values()) / r["streaming"]["cpu_us"])
    colds = {k: p["cold"]["cold_start_s"] for k, p in paths.items()}
    assert base["cold"]["cold_start_s"] == min(colds.values())
    assert base["baseline_path"]["cold_start"] == min(colds, key=colds.get)
    assert base["cold"]["peak_rss_mb"] == min(p["cold"]["peak_rss_mb"] for p in paths.values())


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
    md = (tmp_path / "b.md").read_text()
    assert "speed-ups" in md.lower()
    # the baseline row names the path each figure came from, and each path has its own row
    assert "torch fp32 (faster path)" in md and "torch fp32 · mkldnn on" in md and "torch fp32 · mkldnn off" in md
    assert "torch.backends.mkldnn" in md
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


def test_each_torch_path_is_timed_with_its_flag_and_the_flags_are_restored(small_bundle, monkeypatch):
    """Every PyTorch call bench times runs with its path's torch.backends.mkldnn state (seen inside the real
    runner's call), and every oneDNN flag is as it was afterwards (here a non-default state, to tell)."""
    from lstm_edge.runtimes.torch_runner import TorchRunner

    seen: dict[int, set[bool]] = {}
    real = TorchRunner._run

    def recording(self, x, h0, c0):
        seen.setdefault(id(self), set()).add(mkldnn.enabled)
        return real(self, x, h0, c0)

    monkeypatch.setattr(TorchRunner, "_run", recording)
    cfg = BenchConfig(
        providers=("cpu",),
        variants=("fp32",),
        threads=("1",),
        batches=(2,),
        seqs=(3,),
        stream_steps=50,
        min_time=0.0,
        max_reps=3,
        cold_start=False,
        progress=False,
    )
    before = mkldnn.set_flags(False, True, None, None)  # off and deterministic: not the defaults, to tell
    try:
        report = bench(small_bundle, cfg)
        after = (mkldnn.enabled, mkldnn.deterministic)
    finally:
        mkldnn.set_flags(*before)
    assert after == (False, True)
    assert sorted(seen.values(), key=min) == [{False}, {True}]  # two runners, one path each
    assert set(report["runs"][0]["paths"]) == {"mkldnn_on", "mkldnn_off"}


def test_mkldnn_enabled_sets_one_flag_and_restores_all():
    before = mkldnn.set_flags(True, True, None, None)
    try:
        with pytest.raises(RuntimeError), mkldnn_enabled(False):
            assert not mkldnn.enabled
            assert mkldnn.deterministic  # untouched, unlike torch.backends.mkldnn.flags(enabled=False)
            raise RuntimeError("restored on an exception too")
        assert mkldnn.enabled and mkldnn.deterministic
    finally:
        mkldnn.set_flags(*before)


def test_baseline_takes_the_faster_target_per_shape():
    on = Target("torch", "fp32", baseline=True, torch_path="mkldnn_on")
    off = Target("torch", "fp32", baseline=True, torch_path="mkldnn_off")
    on.samples = {"stream": {"p50": 400.0, "p99": 900.0}, "B1xT1": {"median_us": 90.0}, "B8xT9": {"median_us": 5.0}}
    off.samples = {"stream": {"p50": 100.0, "p99": 300.0}, "B1xT1": {"median_us": 90.5}, "B8xT9": {"median_us": 7.0}}
    samples, taken = baseline_samples([on, off])
    assert samples == {"stream": off.samples["stream"], "B1xT1": {"median_us": 90.0}, "B8xT9": {"median_us": 5.0}}
    assert taken == {"stream_p50": "mkldnn_off", "B1xT1": "mkldnn_on", "B8xT9": "mkldnn_on"}
    cpu = Target("cpu", "fp32", baseline=True, samples=off.samples)  # a bundle without a checkpoint: one baseline
    assert baseline_samples([cpu]) == (off.samples, {})

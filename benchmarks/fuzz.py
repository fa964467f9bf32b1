"""The long fuzz run: the suite's hypothesis targets (lstm_edge.fuzzing) for a wall-clock budget.

    .venv/bin/python benchmarks/fuzz.py --minutes 10

Any exception other than LstmEdgeError is a crash: hypothesis shrinks it and this script exits 1.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import lstm_edge
from lstm_edge import fuzzing as ft

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "adding"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    runner = lstm_edge.load(SHIPPED, provider="cpu")
    good_manifest = json.loads((SHIPPED / "manifest.json").read_text())
    budget = args.minutes * 60 / 4
    targets = {
        "checkpoint bytes": (ft.checkpoint_bytes, ft.check_checkpoint),
        "checkpoint dicts": (ft.checkpoint_dicts(), ft.check_checkpoint),
        "manifest": (ft.manifests(good_manifest), lambda m, tmp: ft.check_manifest(m, tmp, SHIPPED)),
        "input files": (ft.input_files, lambda spec, tmp: ft.check_input(spec, tmp, runner)),
    }
    total = 0
    for name, (strategy, check) in targets.items():
        count = fuzz_one(strategy, check, budget)
        total += count
        print(f"{name}: {count} inputs, no crash", flush=True)
    print(f"fuzzed {total} inputs in {args.minutes:.1f} minutes: only clear LstmEdgeErrors")


def fuzz_one(strategy, check, seconds: float) -> int:
    """Batches of fresh random examples until the time is spent (a batch ends normally, so hypothesis
    reports only real failures, shrunk)."""
    count = 0
    end = time.monotonic() + seconds

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def batch(data):
        nonlocal count
        count += 1
        with tempfile.TemporaryDirectory() as tmp:
            check(data, Path(tmp))

    while time.monotonic() < end:
        batch()
    return count


if __name__ == "__main__":
    main()

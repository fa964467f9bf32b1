"""Issue 25 item 5: the pipeline at the seed's size (input 100, hidden 256, 2 layers), each stage in a fresh
process as a user runs it, timed by wall clock and by the child's CPU time (user + system, from
`resource.getrusage(RUSAGE_CHILDREN)`), with the load average beside each.

    .venv/bin/python benchmarks/pipeline.py [--out benchmarks/results/pipeline.json]

Stages: export, quantize --data (dynamic int8, static int8 calibrated, fp16), codegen fp32 and int8 (each with its
host build and check, `make host`), verify --quick (every runtime installed). CPU seconds are what to compare across machines under load; wall seconds on a quiet
machine are what the issue's targets name (export ≤ 5 s, quantize ≤ 15 s, codegen ≤ 15 s, verify --quick ≤ 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lstm_edge.environment import environment
from lstm_edge.isolated import python_argv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_size import seed_checkpoint_and_data  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "artifacts" / "bench-pipeline"
# codegen's target covers the C generation and its host build (`make host`: compile the check program and run it)
TARGETS_S = {"export": 5.0, "quantize": 15.0, "codegen fp32": 15.0, "codegen int8": 15.0, "verify --quick": 60.0}


def timed(stage: str, *args: str, then: list[str] | None = None) -> dict:
    """Run `lstm-edge ARGS` in a fresh process (and the command `then` after it, counted in the stage); their wall
    and CPU seconds and the 1-minute load before them."""
    print("$ lstm-edge", " ".join(args), *(["&&", *then] if then else []), flush=True)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(python_argv("-m", "lstm_edge.cli", *args), capture_output=True, text=True)
    if p.returncode in (0, 1) and then:
        p = subprocess.run(then, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode not in (0, 1):  # 1: a variant over budget, which quantize's report shows
        sys.exit(f"{stage} failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    row = {"stage": stage, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1min": round(load, 2)}
    row["target_s"] = TARGETS_S[stage]
    print(f"  {stage}: wall {wall:.2f} s, CPU {cpu:.2f} s (load {load:.2f}; target {TARGETS_S[stage]} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pipeline.json"))
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    seed_checkpoint_and_data(WORK)  # the same model and data as benchmarks/seed_size.py
    b = str(WORK / "seed")
    for c in ("c", "c8"):
        shutil.rmtree(WORK / c, ignore_errors=True)  # a C folder from before codegen tagged its folders
    rows = [
        timed("export", "export", str(WORK / "seed.pt"), "--out", b, "--force"),
        timed("quantize", "quantize", b, "--data", str(WORK / "data.npz")),
        timed(
            "codegen fp32", "codegen", b, "--out", str(WORK / "c"), then=["make", "-s", "-C", str(WORK / "c"), "host"]
        ),
        timed(
            "codegen int8",
            *("codegen", b, "--out", str(WORK / "c8"), "--precision", "int8"),
            then=["make", "-s", "-C", str(WORK / "c8"), "host"],
        ),
        timed("verify --quick", "verify", b, "--quick"),
    ]
    report = {"schema": "lstm-edge/pipeline", "model": "input 100, hidden 256, 2 layers", "rows": rows}
    report["environment"] = environment()
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

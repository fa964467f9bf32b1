"""What the self-check at load costs (issue 24 item 1): open without it, first open with it, cached open.

    .venv/bin/python benchmarks/self_check_cost.py [--reps 5] [--providers cpu,tract,openvino,c] [--no-seed]

On the shipped model (models/adding: 2→64×2) and at the seed's size (input 100, hidden 256, 2 layers: a random-weight
model exported here, since the check's cost does not depend on training), for each runtime installed: the median
wall and process CPU time of open_runner with self_check off ("plain"), with an empty self-check cache ("first": the
golden cases run, the streaming case one step per call) and with the pass cached ("cached": a lookup), side by side
in one run. Each rep opens in this process; the c runner's compiled library stays cached between reps (its build is
the c runner's own cost, not the check's). Figures go to benchmarks/results/self_check_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def seed_bundle(where: Path) -> Path:
    """A random-weight model at the seed's size, exported (fp32 only) into `where`/seed."""
    import torch  # deferred: only the seed-size bundle needs torch here

    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=100, hidden_size=256, num_layers=2, output_size=1, task="seed")).eval()
    out = where / "seed"
    t = time.perf_counter()
    export_bundle(model, out, ExportConfig(name="seed"))
    print(f"exported the seed-size bundle in {time.perf_counter() - t:.1f}s", flush=True)
    return out


def measure(bundle: Path, provider: str, reps: int) -> dict:
    """Median (wall, CPU) of plain, first and cached opens of `bundle` on `provider`, fp32."""
    from lstm_edge.runtimes import open_runner
    from lstm_edge.runtimes.self_check import cache_home

    def open_close(check: bool) -> None:
        open_runner(bundle, provider, self_check=check).close()

    open_close(False)  # warm-up: imports, and the c runner's build
    runs = {"plain": [], "first": [], "cached": []}
    for _ in range(reps):
        runs["plain"].append(timed(lambda: open_close(False)))
        shutil.rmtree(cache_home() / "self-check", ignore_errors=True)
        runs["first"].append(timed(lambda: open_close(True)))
        runs["cached"].append(timed(lambda: open_close(True)))
    return {
        k: {"wall_ms": 1e3 * statistics.median(w for w, _ in v), "cpu_ms": 1e3 * statistics.median(c for _, c in v)}
        for k, v in runs.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--providers", default="cpu,tract,openvino,c")
    ap.add_argument("--no-seed", action="store_true", help="the shipped model only")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="self-check-cost-"))
    os.environ["LSTM_EDGE_CACHE"] = str(work / "cache")  # never the user's own cache
    from lstm_edge.environment import available_providers, cpu_model, versions

    avail = available_providers()
    providers = [p for p in args.providers.split(",") if avail.get(p) is None]
    bundles = {"adding (shipped, 2→64×2)": ROOT / "models" / "adding"}
    if not args.no_seed:
        bundles["seed size (100→256×2)"] = seed_bundle(work)
    rows = []
    print(f"{'bundle':28} {'runtime':9} {'plain ms':>14} {'first open ms':>16} {'cached open ms':>16}  (wall / CPU)")
    for name, path in bundles.items():
        for p in providers:
            m = measure(path, p, args.reps)
            rows.append({"bundle": name, "provider": p, **m})
            cell = {k: f"{v['wall_ms']:.1f} / {v['cpu_ms']:.1f}" for k, v in m.items()}
            print(f"{name:28} {p:9} {cell['plain']:>14} {cell['first']:>16} {cell['cached']:>16}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"cpu": cpu_model(), "versions": versions(), "reps": args.reps, "rows": rows}
    (RESULTS / "self_check_cost.json").write_text(json.dumps(doc, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

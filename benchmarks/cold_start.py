"""Cold start: a new process → its first result, for bare ONNX Runtime and for `lstm-edge run` (issue 25 item 4).

Contenders, each a fresh process per round, interleaved in rotating rounds (so load drifts hit them alike):

- bare ORT: `python -c` that imports numpy and onnxruntime, opens model.onnx and runs x once;
- `lstm-edge run BUNDLE --input x.npy` (ORT CPU, fp32, the manifest's sha256 check included);
- `lstm-edge run BUNDLE --input x.npy --provider c` (the C library for this bundle × machine already built: one
  warm-up call first builds it if it is missing).

Wall time (perf_counter around the child) beside the child's CPU time (resource.getrusage(RUSAGE_CHILDREN), user
+ sys): on a loaded machine wall time swings with the load, CPU time much less. Medians, and each contender's
ratio to bare ORT on both.

Children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed), as an installed package runs: pip writes
.pyc files at install, an editable checkout on its first run; without them every lstm-edge module is compiled
from source at each start while numpy's and onnxruntime's are not. `--tree LABEL=DIR` adds the `run` contenders
for another source checkout (its lstm_edge/ first on sys.path, runtimes/ and export/ mapped as pyproject maps
them), e.g. the main branch beside this one, in the same interleaved rounds.

    .venv/bin/python benchmarks/cold_start.py [BUNDLE] [--rounds N] [--tree before=/tmp/main-checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

BARE_ORT = """
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
L, H = int(sys.argv[3]), int(sys.argv[4])
h = np.zeros((L, x.shape[0], H), np.float32)
print(s.run(None, {"x": x, "h0": h, "c0": h})[0])
"""


# `lstm-edge` from a source checkout: lstm_edge.runtimes / lstm_edge.export live in its top-level folders.
FROM_TREE = """
import sys
sys.path.insert(0, sys.argv[1])
import lstm_edge
lstm_edge.__path__.append(sys.argv[1])
from lstm_edge.cli import main
sys.argv = ["lstm-edge", *sys.argv[2:]]
main()
"""
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one child process run to completion; raises CalledProcessError if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-c", action="store_true", help="leave out --provider c (no C compiler here)")
    ap.add_argument("--tree", action="append", default=[], help="LABEL=DIR: also time lstm-edge from that checkout")
    args = ap.parse_args()

    bundle = Path(args.bundle)
    config = json.loads((bundle / "manifest.json").read_text())["config"]
    L, H, F = config["num_layers"], config["hidden_size"], config["input_size"]
    cli = str(Path(sys.executable).with_name("lstm-edge"))
    with tempfile.TemporaryDirectory() as tmp:
        x = Path(tmp) / "x.npy"
        np.save(x, np.random.default_rng(0).random((1, 100, F), dtype=np.float32))
        bare = [sys.executable, "-c", BARE_ORT, str(bundle / "model.onnx"), str(x), str(L), str(H)]
        contenders = {"bare ORT (python -c)": bare}
        trees = [("", [cli])] + [
            (f" [{label}]", [sys.executable, "-c", FROM_TREE, str(Path(d).resolve())])
            for label, d in (t.split("=", 1) for t in args.tree)
        ]
        for label, prog in trees:
            run = [*prog, "run", str(bundle), "--input", str(x)]
            contenders[f"lstm-edge run (ORT){label}"] = run
            if not args.no_c:
                contenders[f"lstm-edge run --provider c{label}"] = [*run, "--provider", "c"]
        for cmd in contenders.values():  # warm the page cache, and build the C library once if it is missing
            timed(cmd)
        names = list(contenders)
        walls: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            for n in names[r % len(names) :] + names[: r % len(names)]:  # rotating order
                w, c = timed(contenders[n])
                walls[n].append(w)
                cpus[n].append(c)
    load = os.getloadavg()
    print(f"cold start, new process → first result; {args.rounds} rounds, interleaved; load {load[0]:.1f}")
    print(f"python {sys.version.split()[0]}, bundle {bundle}, x [1, 100, {F}]")
    print("| contender | wall ms (median) | CPU ms (median) | wall / bare ORT | CPU / bare ORT |")
    print("|---|---|---|---|---|")
    w0, c0 = median(walls[names[0]]), median(cpus[names[0]])
    for n in names:
        w, c = median(walls[n]), median(cpus[n])
        print(f"| {n} | {w * 1e3:.0f} | {c * 1e3:.0f} | {w / w0:.2f}× | {c / c0:.2f}× |")


if __name__ == "__main__":
    main()

"""How long `lstm-edge` takes to refuse bad input: wall and process CPU time per case, and the heavy modules loaded.

Each case runs `python -m lstm_edge.cli ...` in a fresh process (what a user's shell does); the child reports its own
CPU time (resource.getrusage of the children) and the heavy modules in sys.modules at exit. Run from the repo root:

    .venv/bin/python benchmarks/cli_refusal.py [--repeat 3] [--against CHECKOUT PYTHON]

Prints one row per case: the median wall seconds, the child's CPU seconds, the exit code and which of torch, onnx,
onnxruntime, matplotlib, numpy the refusal imported. A refusal is meant to stay under 1 s wall on a quiet machine.
--against runs every case in another checkout too (with its venv's python), interleaved, and prints both side by
side with the ratio of CPU times: `--against /path/to/main /path/to/main/.venv/bin/python`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "onnx", "onnxruntime", "matplotlib", "numpy")
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\nHEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules) + '\\n'))\n"
    "sys.argv = ['lstm-edge'] + {args!r}\n"
    "from lstm_edge.cli import main\n"
    "main()\n"
)
CASES = {
    "run missing.onnx": ["run", "missing.onnx", "--input", "x.npy"],
    "export nonexistent.pt": ["export", "nonexistent.pt"],
    "run --provider nope": ["run", "models/adding", "--provider", "nope", "--input", "x.npy"],
    "run --chunk 0": ["run", "models/adding", "--chunk", "0", "--stream", "--input", "x.npy"],
    "verify missing/": ["verify", "missing-bundle"],
    "bench --rate -1": ["bench", "models/adding", "--rate", "-1"],
    "verify --providers nope": ["verify", "models/adding", "--providers", "nope"],
    "quantize missing/": ["quantize", "missing-bundle"],
    "codegen --precision int4": ["codegen", "models/adding", "--out", "/tmp/x-c", "--precision", "int4"],
    "train --epochs 0": ["train", "--epochs", "0", "--out", "/tmp/x.pt"],
    "score missing/": ["score", "missing-bundle", "--input", "x.npy", "--output", "/tmp/p.parquet"],
    "quantize --mode bogus": ["quantize", "models/adding", "--mode", "bogus"],
    "codegen missing/": ["codegen", "missing-bundle", "--out", "/tmp/x-c"],
    "bundle missing/": ["bundle", "missing-bundle", "--target", "python", "--out", "/tmp/x-b"],
    "report missing/": ["report", "missing-bundle", "--out", "/tmp/x.html"],
    "lint missing.onnx": ["lint", "missing.onnx"],
    "import missing.onnx": ["import", "missing.onnx", "--out", "/tmp/x-i"],
    "lstm-edge --help": ["--help"],
}


def one(args: list[str], python: str = sys.executable, cwd: str = ".") -> tuple[float, float, int, str]:
    """(wall s, child CPU s, exit code, heavy modules) of one fresh `lstm-edge ARGS` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(
        [python, "-c", PROBE.format(heavy=HEAVY, args=args)], capture_output=True, text=True, check=False, cwd=cwd
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    heavy = p.stderr.rsplit("HEAVY=", 1)[-1].strip() if "HEAVY=" in p.stderr else "?"
    return wall, cpu, p.returncode, heavy or "-"


def main() -> None:
    """Print one row per case."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", nargs=2, metavar=("CHECKOUT", "PYTHON"), help="compare with another checkout")
    a = ap.parse_args()
    n = a.repeat
    print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, {n} runs per case (median)")
    if not a.against:
        print(f"{'case':<28} {'wall s':>7} {'cpu s':>7} {'exit':>4}  heavy modules imported")
        for name, args in CASES.items():
            runs = [one(args) for _ in range(n)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"{name:<28} {wall:7.2f} {cpu:7.2f} {runs[0][2]:>4}  {runs[0][3]}")
        return
    where, python = a.against
    print(
        f"{'case':<28} {'other wall':>10} {'cpu':>6} {'this wall':>10} {'cpu':>6} {'cpu ratio':>9}  heavy: other → this"
    )
    for name, args in CASES.items():
        pairs = [(one(args, python, where), one(args)) for _ in range(n)]  # interleaved: the load hits both alike
        ow, oc = (statistics.median(p[0][k] for p in pairs) for k in (0, 1))
        tw, tc = (statistics.median(p[1][k] for p in pairs) for k in (0, 1))
        print(
            f"{name:<28} {ow:10.2f} {oc:6.2f} {tw:10.2f} {tc:6.2f} {oc / tc:8.1f}×  {pairs[0][0][3]} → {pairs[0][1][3]}"
        )


if __name__ == "__main__":
    main()

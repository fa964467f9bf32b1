"""`make demo`: the main job on the embedded default, each step the command a user would type."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from lstm_edge.checkpoint import read_checkpoint
from lstm_edge.data import adding_problem
from lstm_edge.isolated import python_argv

SHIPPED = Path("models/adding")
WORK = Path("artifacts/demo")


def sh(*args: str, check: bool = True) -> int:
    """Print and run `lstm-edge ARGS` in an isolated child; exit with its code on failure when `check`, else return
    the code."""
    print(f"\n$ lstm-edge {shlex.join(args)}", flush=True)
    rc = subprocess.call(python_argv("-m", "lstm_edge.cli", *args))  # -I: nothing imported from the working folder
    if check and rc != 0:
        sys.exit(rc)
    return rc


def main() -> None:
    """The demo end to end: train (unless a model ships), export, lint, quantize, codegen, run, bench, embed, verify;
    exits with the first failing step's code, except where a step's failure is part of the story."""
    WORK.mkdir(parents=True, exist_ok=True)
    ckpt = SHIPPED / "model.pt"
    if not ckpt.is_file():
        ckpt = WORK / "adding.pt"
        sh("train", "--task", "adding", "--seq-len", "100", "--out", str(ckpt))
    else:
        m = read_checkpoint(ckpt)["metrics"]
        print(
            f"shipped model {ckpt}: validation MSE {m['val_mse']:.2e}, test MSE {m['test_mse']:.2e} "
            f"(predict-the-mean baseline {m['baseline_mse']:.3f})"
        )
    bundle, embed, x = WORK / "adding", WORK / "embed", WORK / "x.npy"
    np.save(x, adding_problem(3, 100, seed=5)[0])
    sh("export", str(ckpt), "--out", str(bundle), "--force")
    sh("lint", str(bundle / "model.onnx"))
    # Exit 1 here means a variant is over its budget: the report says which, and the demo goes on. On the shipped
    # model ORT's int8 is (its uint8 h floor, see README); the int8 C just below is the deployable int8.
    sh("quantize", str(bundle), check=False)
    sh("codegen", str(bundle), "--precision", "int8", "--out", str(WORK / "c-int8"), "--force")
    sh("run", str(bundle), "--provider", "cpu", "--variant", "int8", "--input", str(x))
    sh("run", str(bundle), "--provider", "tract", "--input", str(x), "--stream", "--chunk", "1")
    sh(
        "bench",
        str(bundle),
        "--quick",
        "--threads",
        "1",
        "--no-cold-start",
        "--auto",
        "streaming",
        "--markdown",
        str(WORK / "bench.md"),
        "--plot",
        str(WORK / "bench.png"),
    )
    for target in ("python", "node", "web"):
        sh("bundle", str(bundle), "--target", target, "--out", str(embed / target), "--force", check=False)
    print(f"""
Embedding bundles are in {embed}/:
  python: cd {embed}/python && python example.py
  node:   cd {embed}/node && ONNXRUNTIME_NODE_INSTALL=skip npm install && npm test
  web:    cd {embed}/web && python3 -m http.server 8000   then open http://localhost:8000/""")
    sh(
        "verify",
        str(bundle),
        "--json",
        str(WORK / "verify.json"),
        "--markdown",
        str(WORK / "verify.md"),
        "--plots",
        str(WORK / "plots"),
        check=False,
    )
    print(f"\nReports: {WORK}/verify.md, {WORK}/bench.md, {WORK}/plots/, {bundle}/quantization.md")


if __name__ == "__main__":
    main()

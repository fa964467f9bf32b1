"""`make demo`: the main job on the embedded default, each step the command a user would type, ending with one
HTML report and one line per deployable variant.

Exit codes: 0 when every step did what it should (a quantized variant over its budget is a finding quantize prints,
not a failure); otherwise the first failing step's code (1 a parity failure, 2 bad input).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from lstm_edge.checkpoint import read_checkpoint
from lstm_edge.data import adding_problem
from lstm_edge.isolated import python_argv
from lstm_edge.verify_report import as_bound

SHIPPED = Path("models/adding")
WORK = Path("artifacts/demo")


def sh(*args: str) -> None:
    """Print and run `lstm-edge ARGS` in an isolated child; exit with its code when it fails."""
    print(f"\n$ lstm-edge {shlex.join(args)}", flush=True)
    rc = subprocess.call(python_argv("-m", "lstm_edge.cli", *args))  # -I: nothing imported from the working folder
    if rc != 0:
        sys.exit(rc)


def deployable_lines(verify: dict) -> list[str]:
    """One line per variant that passed verify on at least one runtime (status "pass": inside its bound and not
    marked not deployable by quantize), naming those runtimes and the worst max scaled error beside its bound, and
    the runtimes where the same variant is not deployable (the c runtime's int8 is its own int8 C, judged by its own
    budget, while ORT's int8 graph may be over quantize's)."""
    passed: dict[str, list[dict]] = {}
    refused: dict[str, list[str]] = {}
    for r in verify["results"]:
        if r["status"] == "pass":
            passed.setdefault(r["variant"], []).append(r)
        elif r["status"] == "not-deployable":
            refused.setdefault(r["variant"], []).append(r["runtime"])
    lines = []
    for variant, results in passed.items():
        worst = max(  # the case closest to its bound, as verify's table names it
            ((o["max_scaled"], o["tolerance"], r["runtime"]) for r in results for c in r["cases"]
             for o in c["outputs"].values()),
            default=None,
            key=lambda t: t[0] / t[1],
        )  # fmt: skip
        where = ", ".join(r["runtime"] for r in results)
        figure = f"; worst max scaled error {worst[0]:.2e} ({worst[2]}, {as_bound(worst[1])})" if worst else ""
        others = f"; not deployable on {', '.join(refused[variant])}" if variant in refused else ""
        lines.append(f"  {variant:<12} deployable on {where}{figure}{others}")
    return lines


def embed_hints(embed: Path) -> str:
    """How to run each embedding bundle; the python one with this interpreter (it has lstm-edge installed, which
    the python target needs: a bare `python` may not)."""
    return f"""
Embedding bundles are in {embed}/:
  python: cd {embed}/python && {Path(sys.executable).absolute()} example.py
  node:   cd {embed}/node && ONNXRUNTIME_NODE_INSTALL=skip npm install && npm test
  web:    cd {embed}/web && python3 -m http.server 8000   then open http://localhost:8000/"""


def main() -> None:
    """The demo end to end: train (unless a model ships), export, lint, quantize, codegen, run, bench, embed, verify
    (its demo-sized matrix), report; exits with the first failing step's code."""
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
    # On the shipped model ORT's int8 is over its budget (its uint8 h floor, see docs/quantize.md): quantize prints
    # that as a finding and goes on; the int8 C just below is the deployable int8.
    sh("quantize", str(bundle))
    sh("codegen", str(bundle), "--precision", "int8", "--out", str(WORK / "c-int8"), "--force")
    sh("run", str(bundle), "--provider", "cpu", "--variant", "int8", "--input", str(x))
    sh("run", str(bundle), "--provider", "tract", "--input", str(x), "--stream", "--chunk", "1")
    bench = ["--quick", "--threads", "1", "--no-cold-start", "--auto", "streaming", "--json", str(WORK / "bench.json")]
    sh("bench", str(bundle), *bench, "--markdown", str(WORK / "bench.md"), "--plot", str(WORK / "bench.png"))
    for target in ("python", "node", "web"):
        sh("bundle", str(bundle), "--target", target, "--out", str(embed / target), "--force")
    verify_json = WORK / "verify.json"
    sh("verify", str(bundle), "--demo", "--json", str(verify_json), "--markdown", str(WORK / "verify.md"))
    report = WORK / "report.html"
    sh("report", str(bundle), "--verify", str(verify_json), "--bench", str(WORK / "bench.json"), "--out", str(report))
    print(embed_hints(embed))
    print(f"\nReport: {report.absolute()}  (one page: model card, verdicts, parity, speed, quantization, embedding)")
    print("Deployable variants:")
    print("\n".join(deployable_lines(json.loads(verify_json.read_text()))))


if __name__ == "__main__":
    main()

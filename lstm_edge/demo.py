"""`make demo`: the main job on the embedded default, each step the command a user would type."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

SHIPPED = Path("models/adding")
WORK = Path("artifacts/demo")


def sh(*args: str, check: bool = True) -> int:
    print(f"\n$ lstm-edge {shlex.join(args)}", flush=True)
    rc = subprocess.call([sys.executable, "-m", "lstm_edge.cli", *args])
    if check and rc not in (0,):
        sys.exit(rc)
    return rc


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    ckpt = SHIPPED / "model.pt"
    if not ckpt.is_file():
        ckpt = WORK / "adding.pt"
        sh("train", "--task", "adding", "--seq-len", "100", "--out", str(ckpt))
    else:
        from lstm_edge.checkpoint import read_checkpoint

        m = read_checkpoint(ckpt)["metrics"]
        print(
            f"shipped model {ckpt}: validation MSE {m['val_mse']:.2e}, test MSE {m['test_mse']:.2e} "
            f"(predict-the-mean baseline {m['baseline_mse']:.3f})"
        )
    bundle = WORK / "adding"
    sh("export", str(ckpt), "--out", str(bundle), "--force")
    sh("lint", str(bundle / "model.onnx"))
    for step in _later_steps(bundle):
        sh(*step, check=False)


def _later_steps(bundle: Path) -> list[tuple[str, ...]]:
    x = WORK / "x.npy"
    import numpy as np

    from lstm_edge.data import adding_problem

    np.save(x, adding_problem(3, 100, seed=5)[0])
    return [
        ("quantize", str(bundle)),
        ("run", str(bundle), "--provider", "cpu", "--variant", "int8", "--input", str(x)),
        ("run", str(bundle), "--provider", "tract", "--input", str(x), "--stream", "--chunk", "1"),
        (
            "verify",
            str(bundle),
            "--json",
            str(WORK / "verify.json"),
            "--markdown",
            str(WORK / "verify.md"),
            "--plots",
            str(WORK / "plots"),
        ),
    ]


if __name__ == "__main__":
    main()

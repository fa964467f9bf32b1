"""Issue 14's table, at the seed's size: the textbook model (nn.LSTM(100, 256, 2) + Linear(256, 10) on the last
step) saved every usual way, each exported by `lstm-edge export` in a fresh process. Prints a Markdown table: the
exit code, what the command printed (recognized block or its one error line), wall and CPU seconds of the whole
process, and the bundle's `run` (ORT CPU) against the user's forward (max scaled error, B=3, T=50).

    .venv/bin/python benchmarks/intake_rows.py [--out benchmarks/results/intake_rows.md]

CPU seconds (user + sys of the child) are the figure to compare on a shared machine; wall time includes waiting.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CLASS = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(100, 256, 2, batch_first=True)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])
"""
SAVE = """
if __name__ == "__main__":
    import sys

    torch.manual_seed(0)
    model = Net().eval()
    how = sys.argv[1]
    x = torch.randn(2, 6, 100)
    if how == "state_dict":
        torch.save(model.state_dict(), "state_dict.pt")
    elif how == "tutorial":
        opt = torch.optim.Adam(model.parameters())
        torch.save({"epoch": 3, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(),
                    "loss": 0.1}, "tutorial.pt")
    elif how == "lightning":
        torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": 1}, "lightning.ckpt")
    elif how == "dataparallel":
        torch.save(torch.nn.DataParallel(model).state_dict(), "dataparallel.pt")
    elif how == "whole":
        torch.save(model, "whole.pt")
    elif how == "script":
        torch.jit.script(model).save("script.pt")
    elif how == "trace":
        torch.jit.trace(model, x).save("trace.pt")
    elif how == "pt2":
        torch.export.save(torch.export.export(model, (x,)), "model.pt2")
    elif how == "safetensors":
        from safetensors.torch import save_file
        save_file(model.state_dict(), "model.safetensors")
    elif how == "lstm-edge":
        from lstm_edge.checkpoint import save_checkpoint
        from lstm_edge.model import LSTMModel, ModelConfig
        ours = LSTMModel(ModelConfig(100, 256, 2, output_size=10))
        ours.lstm.load_state_dict(model.lstm.state_dict())
        ours.head.load_state_dict(model.fc.state_dict())
        save_checkpoint(ours, "lstm-edge.pt")
"""

ROWS = [
    ("`torch.save(model.state_dict(), …)`", "state_dict", "state_dict.pt", []),
    ("tutorial dict (`model_state_dict`, `optimizer_state_dict`, …)", "tutorial", "tutorial.pt", []),
    ("Lightning-style `{'state_dict': {'model.lstm…'}}`", "lightning", "lightning.ckpt", []),
    ("DataParallel `module.` prefix", "dataparallel", "dataparallel.pt", []),
    (
        "`torch.save(model)`, class in the training script",
        "whole",
        "whole.pt",
        ["--trust-pickle", "--code", "train.py"],
    ),
    (
        "same, class in `usermodel.py` beside it, run from that folder",
        "usermodel",
        "whole_usermodel.pt",
        ["--trust-pickle"],
    ),
    ("`torch.jit.script(model).save(…)`", "script", "script.pt", []),
    ("`torch.jit.trace(model, x).save(…)`", "trace", "trace.pt", []),
    ("`torch.export.save(…, 'model.pt2')`", "pt2", "model.pt2", ["--trust-pickle"]),
    ("`torch.export.save(…, 'model.pt2')` without --trust-pickle", None, "model.pt2", []),
    ("safetensors", "safetensors", "model.safetensors", []),
    ("lstm-edge's own checkpoint (baseline)", "lstm-edge", "lstm-edge.pt", []),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    exe = Path(sys.executable).with_name("lstm-edge")
    work = Path(tempfile.mkdtemp(prefix="intake-rows-"))
    (work / "train.py").write_text(CLASS + SAVE)
    (work / "usermodel.py").write_text(CLASS)
    (work / "save_usermodel.py").write_text(
        "import torch\nfrom usermodel import Net\n\ntorch.manual_seed(0)\ntorch.save(Net().eval(), 'whole_usermodel.pt')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _, how, _, _ in ROWS:
        if how == "usermodel":
            subprocess.run([sys.executable, "save_usermodel.py"], cwd=work, check=True, env=env)
        elif how:
            subprocess.run([sys.executable, "train.py", how], cwd=work, check=True, env=env, capture_output=True)
    sys.path.insert(0, str(work))
    from train import Net

    import lstm_edge

    torch.manual_seed(0)
    user = Net().eval()
    x = torch.randn(3, 50, 100)
    with torch.no_grad():
        want = user(x).numpy()
    lines = [
        "| how the user saved it | exit | what `lstm-edge export` says | wall s | CPU s | run vs forward |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, file, flags in ROWS:
        out = work / f"bundle-{file}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(
            [str(exe), "export", file, "--out", str(out), "--force", *flags], cwd=work, capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        said = [ln.strip() for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and not ln.startswith("warning")]
        text = " / ".join(said[:2]) if r.returncode == 0 else said[-1]
        err = "—"
        if r.returncode == 0:
            y, _ = lstm_edge.load(out, provider="cpu").run(x.numpy())
            err = f"{float(np.max(np.abs(y - want) / np.maximum(1, np.abs(want)))):.1e}"
        lines.append(f"| {label} | {r.returncode} | {text.replace('|', '/')} | {wall:.1f} | {cpu:.1f} | {err} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()

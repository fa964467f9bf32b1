"""The C of a GRU and of token-id models (issue 26 item 5) against ONNX Runtime's fp32, on the host and on an emulated
Cortex-M4F (qemu), with the library's code size.

    .venv/bin/python benchmarks/c_gru_tokens.py [--work DIR] [--json benchmarks/results/c_gru_tokens.json]

Models, built as users build them (a pickled module, `lstm-edge export model.pt --trust-pickle --code models.py`),
weights from torch.manual_seed (untrained): a keyword-spotting GRU (40 MFCC → GRU 64 ×2 → 10 classes, last step),
Embedding(100, 16) → LSTM(32) → 4 classes (last step), Embedding(100, 16) → GRU(32) ×2 → 100 (every step).
For each, codegen's check program is rendered with the bundle's golden inputs and ORT CPU's fp32 outputs as the
expected values and a bound of 1 (so that it reports, never fails), then built and run by the generated Makefile
(host: cc -O2; qemu: arm-none-eabi-gcc -O2 for the MPS2 AN386 board). The figure is its "max scaled error"
|got − want| / max(1, |want|) over y and h_n (and C_n) of every case, whole, step by step and batched.
.text: `make size` (arm-none-eabi-size of NAME.c compiled for the Cortex-M4F, -O2), the library alone.
Task metric: a GRU (digits' 8 pixels → GRU 32 × 2 → 10 classes) trained here for 40 epochs (Adam 3e-3, batch 64,
seed 0) on the digits task's train split, exported, and judged by codegen's int8_task_metric (the int8 C's bit-exact
simulation against the fp32 model on the 179 held-out test sequences, quantize's budget).
Deterministic: one run is the result.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from click.testing import CliRunner

import lstm_edge
from lstm_edge.cli import main as cli
from lstm_edge.codegen import CodegenConfig, prepare, render

MODELS_PY = """
import torch
from torch import nn


class Kws(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(40, 64, 2, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class TokLstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.fc(out[:, -1])


class TokGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.gru = nn.GRU(16, 32, 2, batch_first=True)
        self.fc = nn.Linear(32, 100)

    def forward(self, ids):
        out, _ = self.gru(self.emb(ids))
        return self.fc(out)
"""
MODELS = ("Kws", "TokLstm", "TokGru")


def export(work: Path) -> dict[str, Path]:
    """{model: bundle}, each pickled whole and exported through the CLI with --trust-pickle --code."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "models.py").write_text(MODELS_PY)
    sys.path.insert(0, str(work))
    import models  # the user's file, imported from --work as `python train.py` would

    out = {}
    for i, name in enumerate(MODELS):
        torch.manual_seed(i)
        torch.save(getattr(models, name)().eval(), work / f"{name}.pt")
        args = [str(work / f"{name}.pt"), "--trust-pickle", "--code", str(work / "models.py"), "--out"]
        res = CliRunner().invoke(cli, ["export", *args, str(work / f"b_{name}")])
        assert res.exit_code == 0, res.output
        out[name] = work / f"b_{name}"
    return out


def against_ort(bundle: Path, precision: str, folder: Path) -> None:
    """Write the C and a check program whose expected outputs are ORT CPU's fp32 for the golden inputs."""
    prep = prepare(bundle, CodegenConfig(precision=precision, prefix="m"))
    ort = lstm_edge.load(bundle, provider="cpu")
    for case in prep["cases"]:
        state = (case["h0"], case["c0"]) if "c0" in case else (case["h0"],)
        y, got = ort.run(case["x"], state)
        case.update(zip(("y", "hn", "cn"), (y, *got), strict=False))
    files = render(prep, precision, against="ONNX Runtime CPU fp32 on the golden inputs", tolerance=1.0)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def run(folder: Path, target: str) -> float:
    """The check program's max scaled error on `target` (host | qemu)."""
    done = subprocess.run(["make", "-C", str(folder), target], capture_output=True, text=True, timeout=600)
    m = re.search(r"max scaled error (\S+)", done.stdout)
    assert done.returncode == 0 and m, done.stdout + done.stderr
    return float(m.group(1))


def text_size(folder: Path) -> int:
    """.text of NAME.c for the Cortex-M4F (make size)."""
    done = subprocess.run(["make", "-C", str(folder), "size"], capture_output=True, text=True, timeout=300)
    line = [ln for ln in done.stdout.splitlines() if ln.split()[:1] and ln.split()[0].isdigit()][0]
    return int(line.split()[0])


def digits_gru(work: Path) -> dict:
    """Train the digits GRU (see the module docstring), export it, and return codegen's int8 task metric."""
    from lstm_edge.codegen import int8_task_metric  # deferred: only this measurement needs it
    from lstm_edge.data import TaskSpec, held_out  # deferred: as above
    from lstm_edge.export import ExportConfig, export_bundle  # deferred: as above
    from lstm_edge.model import LSTMModel, ModelConfig  # deferred: as above

    torch.manual_seed(0)
    X, y = held_out(TaskSpec.recorded("digits", None), "train", 5000)
    flat = X.reshape(-1, X.shape[2])
    cfg = ModelConfig(input_size=X.shape[2], hidden_size=32, num_layers=2, output_size=10, family="gru",
                      task="digits", kind="classification", x_mean=flat.mean(0).tolist(),
                      x_std=(flat.std(0) + 1e-6).tolist(), x_min=flat.min(0).tolist(), x_max=flat.max(0).tolist())  # fmt: skip
    model = LSTMModel(cfg)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(40):
        perm = torch.randperm(len(Xt))
        for i in range(0, len(Xt), 64):
            loss = torch.nn.functional.cross_entropy(model(Xt[perm[i : i + 64]])[0], yt[perm[i : i + 64]])
            opt.zero_grad()
            loss.backward()
            opt.step()
    bundle = export_bundle(model.eval(), work / "gru_digits", ExportConfig(name="gru_digits")).bundle
    return int8_task_metric(prepare(bundle, CodegenConfig(precision="int8")))


def main() -> None:
    """Measure every model × precision; print one line each and optionally write --json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="folder for bundles and builds (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="c_gru_tokens-"))
    rows = []
    for name, bundle in export(work).items():
        for precision in ("fp32", "int8"):
            folder = work / f"c_{name}_{precision}"
            against_ort(bundle, precision, folder)
            row = {"model": name, "precision": precision, "host": run(folder, "host"), "qemu": run(folder, "qemu"),
                   "text_bytes": text_size(folder)}  # fmt: skip
            rows.append(row)
            print(f"{name:8s} {precision}: vs ORT fp32 host {row['host']:.3e}  qemu {row['qemu']:.3e}  "
                  f".text {row['text_bytes']} B")  # fmt: skip
    metric = digits_gru(work)
    print(f"digits GRU int8 C: {metric['name']} {metric['fp32']:.2f} (fp32) -> {metric['int8']:.2f} (int8), "
          f"drop {metric['drop']:.2f} on {metric['samples']} held-out sequences")  # fmt: skip
    if a.json:
        a.json.write_text(json.dumps({"scaled_error": rows, "digits_gru_int8_metric": metric}, indent=1) + "\n")


if __name__ == "__main__":
    main()

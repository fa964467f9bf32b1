"""Issue 26's table, each model at the issue's own size: saved whole (torch.save(model)) with its class in a file, then
`lstm-edge export model.pt --trust-pickle --code models.py` in a fresh process, as a user runs it. Prints a Markdown
table: exit code, the route (the manifest's reference kind and exporter, streaming or not, or the one error line),
CPU and wall seconds of the export process, and `lstm-edge run` (ORT CPU) against the user's forward at B=3, T=41
(a shape no trace saw): max scaled error (|a-b| / max(1, |b|), lstm_edge.tolerances.scaled_error).

    .venv/bin/python benchmarks/user_models.py [--out benchmarks/results/user_models.md] [--rows conv,two_lstms]

Weights are random (seed 0), not trained: export's route and error do not depend on training. CPU seconds (user + sys
of the child) are the figure to compare on a shared machine; wall time includes waiting for the cores.
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

import numpy as np
import torch

MODELS = '''
import torch
from torch import nn


class ConvFrontEnd(nn.Module):
    """Activity recognition: Conv1d 9→32→32 + ReLU, LSTM(32, 64), Linear(64, 6) on the last step."""
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(9, 32, 5, padding=2), nn.Conv1d(32, 32, 5, padding=2)
        self.lstm, self.fc = nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 6)

    def forward(self, x):
        z = torch.relu(self.conv2(torch.relu(self.conv1(x.transpose(1, 2))))).transpose(1, 2)
        return self.fc(self.lstm(z)[0][:, -1])


class TwoLSTMs(nn.Module):
    """Two nn.LSTM modules, 64→128 then 128→32, Linear(32, 10) on the last step."""
    def __init__(self):
        super().__init__()
        self.a, self.b, self.fc = nn.LSTM(64, 128, batch_first=True), nn.LSTM(128, 32, batch_first=True), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.b(self.a(x)[0])[0][:, -1])


class NormHead(nn.Module):
    """LSTM(40, 128) → LayerNorm → Dropout → Linear(128, 10) on the last step."""
    def __init__(self):
        super().__init__()
        self.lstm, self.norm = nn.LSTM(40, 128, batch_first=True), nn.LayerNorm(128)
        self.drop, self.fc = nn.Dropout(0.2), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(self.drop(self.norm(self.lstm(x)[0][:, -1])))


class AutoEncoder(nn.Module):
    """LSTM autoencoder: encoder LSTM(8, 32), its last h repeated over T, decoder LSTM(32, 8)."""
    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.LSTM(8, 32, batch_first=True), nn.LSTM(32, 8, batch_first=True)

    def forward(self, x):
        h = self.enc(x)[0][:, -1:]
        return self.dec(h.expand(-1, x.shape[1], -1))[0]


class TimeMajor(nn.Module):
    """nn.LSTM(6, 16) time-major (batch_first=False), Linear(16, 3) on every step."""
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(6, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


class CellLoop(nn.Module):
    """nn.LSTMCell(20, 64) stepped in a Python loop, Linear(64, 5) on the last h."""
    def __init__(self):
        super().__init__()
        self.cell, self.fc = nn.LSTMCell(20, 64), nn.Linear(64, 5)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 64)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.fc(h)


class Packed(nn.Module):
    """Bidirectional LSTM(12, 32) classifier over pack_padded_sequence: forward(x, lengths)."""
    def __init__(self):
        super().__init__()
        self.lstm, self.fc = nn.LSTM(12, 32, batch_first=True, bidirectional=True), nn.Linear(64, 4)

    def forward(self, x, lengths):
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(p)
        return self.fc(torch.cat([h[-2], h[-1]], 1))


class KeywordGRU(nn.Module):
    """Keyword spotter: MFCC [B, T, 40] → GRU(40, 64) ×2 → Linear(64, 12) on the last step."""
    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(40, 64, 2, batch_first=True), nn.Linear(64, 12)

    def forward(self, x):
        return self.fc(self.gru(x)[0][:, -1])


class TokenLSTM(nn.Module):
    """Token input: Embedding(1000, 32) → LSTM(32, 64) → Linear(64, 1000) on every step."""
    def __init__(self):
        super().__init__()
        self.emb, self.lstm, self.fc = nn.Embedding(1000, 32), nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 1000)

    def forward(self, x):
        return self.fc(self.lstm(self.emb(x))[0])
'''

# row key → (class, input width (0: token ids), time-major, what the table called it)
ROWS = {
    "conv": ("ConvFrontEnd", 9, False, "Conv1d ×2 + ReLU → LSTM → Linear (activity, [B, T, 9])"),
    "two_lstms": ("TwoLSTMs", 64, False, "two nn.LSTM modules 64→128→32 → Linear"),
    "norm": ("NormHead", 40, False, "LSTM → LayerNorm → Dropout → Linear"),
    "autoencoder": ("AutoEncoder", 8, False, "LSTM autoencoder 8→32→8"),
    "time_major": ("TimeMajor", 6, True, "time-major nn.LSTM(6, 16), head on every step"),
    "cell_loop": ("CellLoop", 20, False, "nn.LSTMCell(20, 64) in a Python loop"),
    "packed": ("Packed", 12, False, "bidirectional LSTM, forward(x, lengths) with pack_padded_sequence"),
    "gru_kws": ("KeywordGRU", 40, False, "GRU keyword spotter 40 → GRU 64 ×2 → Linear 12"),
    "tokens": ("TokenLSTM", 0, False, "Embedding(1000, 32) → LSTM(32, 64) → Linear on every step"),
}


def _cli(*argv: str) -> tuple[int, str, float, float]:
    """(exit code, stdout + stderr, wall s, CPU s of the child) of `lstm-edge ARGV` in a fresh process."""
    exe = Path(sys.executable).parent / "lstm-edge"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    p = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.returncode, p.stdout + p.stderr, wall, cpu


def measure(key: str, work: Path) -> dict:
    """One row: save the model, export it through the CLI, run the bundle (and, where it streams, `run --stream`)
    against the forward at B=3, T=41 (lengths 41, 20, 3 for a model that takes them)."""
    cls, width, time_major, kind = ROWS[key]
    sys.path.insert(0, str(work))
    import models  # noqa: PLC0415 — the user's file, written into `work` by main()

    torch.manual_seed(0)
    model = getattr(models, cls)().eval()
    torch.save(model, work / f"{key}.pt")
    out = work / key
    code, text, wall, cpu = _cli(
        "export", str(work / f"{key}.pt"), "--trust-pickle", "--code", str(work / "models.py"), "--out", str(out)
    )
    row = {"row": key, "model": kind, "exit": code, "export_wall_s": round(wall, 2), "export_cpu_s": round(cpu, 2)}
    if code != 0:
        return row | {"route": text.strip().splitlines()[-1][:300]}
    manifest = json.loads((out / "manifest.json").read_text())
    ref = manifest.get("reference", {})
    row["route"] = f"{ref.get('kind')}, {ref.get('exporter')}, streaming {manifest.get('streaming')}"
    shape = (41, 3, width) if time_major else (3, 41) if width == 0 else (3, 41, width)
    x = torch.randint(0, 1000, shape) if width == 0 else torch.randn(shape)
    takes_lengths = any(p["name"] == "lengths" for p in manifest["io"]["inputs"])
    lengths = torch.tensor([41, 20, 3]) if takes_lengths else None  # a padded batch of mixed lengths
    np.savez(work / "x.npz", x=x.numpy(), **({"lengths": lengths.numpy()} if takes_lengths else {}))
    with torch.no_grad():
        want = (model(x) if lengths is None else model(x, lengths)).numpy().astype(np.float64)
    modes = {"run_vs_forward": []} | ({"stream_vs_forward": ["--stream"]} if manifest.get("streaming") else {})
    for name, flags in modes.items():
        args = ("run", str(out), "--input", str(work / "x.npz"), "--output", str(work / "y.npy"), "-q", *flags)
        code, text, _, _ = _cli(*args)
        if code != 0:
            return row | {"run": text.strip()[:300]}
        got = np.load(work / "y.npy").astype(np.float64)
        row[name] = float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/user_models.md")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated keys of ROWS")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "models.py").write_text(MODELS)
        for key in args.rows.split(","):
            rows.append(measure(key, work))
            print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()[0]
    lines = [
        f"Issue 26 rows at their own size; load average {load:.1f}, {os.cpu_count()} cores; "
        f"{Path('/proc/cpuinfo').read_text().split('model name')[1].split(':')[1].splitlines()[0].strip()}",
        "",
        "| model | exit | route (reference, exporter, streaming) or refusal | export CPU s (wall) | run vs forward "
        "| run --stream vs forward |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = f"{r['run_vs_forward']:.1e}" if "run_vs_forward" in r else r.get("run", "—")
        streamed = f"{r['stream_vs_forward']:.1e}" if "stream_vs_forward" in r else "—"
        route = r["route"].replace("|", "/")
        lines.append(
            f"| {r['model']} | {r['exit']} | {route} | {r['export_cpu_s']} ({r['export_wall_s']}) | {err} | {streamed} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"load": load, "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

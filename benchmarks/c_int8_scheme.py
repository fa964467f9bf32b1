"""What the `c` int8 scheme costs in task metric, against fp32 and ORT's int8, and why its cell is float.

    .venv/bin/python benchmarks/c_int8_scheme.py [BUNDLE] [--samples 2000] [--json OUT]

On held-out task data (the same draw quantize evaluates on): the model's fp32 metric; the int8 C itself (through the
`c` runner: the real compiled code); ORT's dynamic int8 (lstm_edge.int8_sim, equal to ORT to ~1e-7); and two other
forms of this scheme, simulated bit for bit like the C: gate math with exact sigmoid/tanh instead of the table,
and a TFLite-Micro-style int16 cell state (power-of-two scale covering the largest |C| seen in fp32 on calibration
data). Deterministic (no timing), so one run is the figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.c_int8_sim import forward as sim_forward
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint
from lstm_edge.codegen import CodegenConfig, input_range, prepare
from lstm_edge.data import TaskSpec, held_out, metric
from lstm_edge.int8_sim import OrtDynamicInt8


def _batched(fn, X: np.ndarray, batch: int = 500) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([fn(torch.from_numpy(X[i : i + batch])) for i in range(0, len(X), batch)])


def measure(bundle_path: str, samples: int) -> dict:
    bundle = Bundle.open(bundle_path)
    model, config = load_checkpoint(bundle.checkpoint())
    model.eval()
    spec = TaskSpec.recorded(config.task, read_checkpoint(bundle.checkpoint()).get("training"))
    X, y = held_out(spec, "test", samples)
    X_cal = held_out(spec, "train", 256)[0]
    kind = config.kind
    rows: dict[str, float] = {}
    rows["fp32 (PyTorch)"] = metric(kind, _batched(lambda x: model(x)[0].numpy(), X), y)[1]
    c8 = lstm_edge.load(bundle.root, provider="c", variant="int8")
    rows["int8 C (this scheme, compiled)"] = metric(kind, c8.run(X)[0], y)[1]
    params = prepare(bundle.root, CodegenConfig(precision="int8"))["params"]
    rows["  same, simulated"] = metric(kind, _batched(lambda x: sim_forward(params, x)[0].numpy(), X), y)[1]
    rows["  with exact sigmoid/tanh instead of the table"] = metric(
        kind, _batched(lambda x: sim_forward(params, x, exact_gates=True)[0].numpy(), X), y
    )[1]
    # TFLite Micro's int16 cell: a power-of-two scale 2^k / 32768 covering the largest |C| of fp32 on calibration data
    with torch.no_grad():
        gate = model.gate_form()
        xs = (torch.from_numpy(X_cal) - gate.x_mean) / gate.x_std
        state, c_max = None, [0.0] * config.num_layers
        for t in range(xs.shape[1]):  # step by step: the largest |C| at any step, not only the last
            _, state = gate.lstm(xs[:, t : t + 1], state)
            c_max = [max(m, float(state[1][k].abs().max())) for k, m in enumerate(c_max)]
    cell_scale = [2.0 ** math.ceil(math.log2(max(m, 1e-6))) / 32768 for m in c_max]
    rows[f"  with an int16 cell (scales 2^{[round(math.log2(s * 32768)) for s in cell_scale]}/32768)"] = metric(
        kind, _batched(lambda x: sim_forward(params, x, cell_scale=cell_scale)[0].numpy(), X), y
    )[1]
    ort = OrtDynamicInt8()
    if not (config.x_min and config.x_max):  # the deployed int8 variant is input-equalized with the recorded range
        config.x_min, config.x_max, _ = input_range(bundle)
    rows["ORT dynamic int8, input-equalized (simulated, = ORT to ~1e-7)"] = metric(
        kind, _batched(lambda x: ort.forward(model, x)[0].numpy(), X), y
    )[1]
    base = rows["fp32 (PyTorch)"]
    name = "mse" if kind == "regression" else "accuracy"
    change = {
        k: (v / base - 1) * 100 if kind == "regression" else v - base for k, v in rows.items() if k != "fp32 (PyTorch)"
    }
    return {
        "bundle": str(bundle.root),
        "metric": name,
        "samples": int(len(X)),
        "seq_len": spec.seq_len,
        "values": rows,
        "change": change,
        "change_unit": "% relative" if kind == "regression" else "accuracy points",
        "cell_max_abs": c_max,
        "input_range": prepare(bundle.root, CodegenConfig(precision="int8"))["range_note"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="models/adding")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    r = measure(a.bundle, a.samples)
    print(f"{r['bundle']}: {r['metric']} on {r['samples']} held-out sequences (T={r['seq_len']})")
    for k, v in r["values"].items():
        extra = f"  ({r['change'][k]:+.2f} {r['change_unit']})" if k in r["change"] else ""
        print(f"  {k:<58} {v:.5g}{extra}")
    print(f"  max |C| in fp32 on calibration data, per layer: {[round(c, 2) for c in r['cell_max_abs']]}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()

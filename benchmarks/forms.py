"""Issue 15's figures: for each recurrent form users ship, max scaled error at T=1000 on every local runtime and
precision against the float64 PyTorch rebuild, and export time at the seed's size.

    .venv/bin/python benchmarks/forms.py [--out benchmarks/results/forms.md] [--hidden 64] [--seq 1000]

Each form is LSTMModel(config) with PyTorch's default initialization (the rebuild equals the user's module: see
tests/test_forms.py). Inputs: model_inputs (random initial state; lengths mixed within the batch, including 1 and T;
token ids including both edges of the table). A runtime that refuses a form is listed with its one-line reason.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lstm_edge.config import ModelConfig
from lstm_edge.data import model_inputs
from lstm_edge.errors import LstmEdgeError, first_line
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.model import LSTMModel
from lstm_edge.runtimes import open_runner
from lstm_edge.tolerances import scaled_error

RUNTIMES = ("torch", "cpu", "openvino", "tract")
VARIANTS = ("fp32", "int8", "fp16")


def forms(F: int, H: int) -> dict[str, ModelConfig]:
    base = {"input_size": F, "hidden_size": H, "num_layers": 2, "output_size": 4}
    return {
        "LSTM (seed form)": ModelConfig(**base),
        "bidirectional LSTM": ModelConfig(**base, bidirectional=True),
        "time-major LSTM, head every step": ModelConfig(**base, batch_first=False, head="sequence"),
        "LSTM without bias": ModelConfig(**base, bias=False),
        "GRU": ModelConfig(**base, family="gru"),
        "bidirectional GRU": ModelConfig(**base, family="gru", bidirectional=True),
        "token ids → Embedding(5000) → LSTM": ModelConfig(**base, vocab_size=5000),
        "LSTM, variable lengths": ModelConfig(**base, lengths=True),
        "LSTM with projection (Scan)": ModelConfig(**base, proj_size=H // 2),
    }


def measure(config: ModelConfig, root: Path, seq: int) -> dict[tuple[str, str], str]:
    from lstm_edge.export.quantize import QuantizeConfig, quantize_bundle

    torch.manual_seed(0)
    bundle = export_bundle(LSTMModel(config).eval(), root, ExportConfig(name="form")).bundle
    notes = {}
    try:
        notes.update(quantize_bundle(bundle, QuantizeConfig(progress=False)).skipped)
    except LstmEdgeError as e:  # ParityError (over budget) still writes the variants
        notes["quantize"] = first_line(e, 120)
    inputs = model_inputs(config, 4, seq, True, 7)
    feeds = dict(zip(config.input_names, inputs, strict=True))
    state = tuple(feeds[n] for n in config.state_shapes)
    with open_runner(bundle, "torch", float64=True) as ref:
        want = ref.run(feeds["x"], state, feeds.get("lengths"))
    want = (want[0], *want[1])
    cells = {}
    for provider in RUNTIMES:
        for variant in VARIANTS:
            if provider == "torch" and variant != "fp32":
                continue
            if variant in notes:  # not made, and why (e.g. fp16 of the Scan form)
                cells[(provider, variant)] = "not made: " + notes[variant].split(":")[0]
                continue
            try:
                with open_runner(bundle, provider, variant=variant) as r:
                    y, st = r.run(feeds["x"], state, feeds.get("lengths"))
                cells[(provider, variant)] = (
                    f"{max(float(scaled_error(a, b).max()) for a, b in zip((y, *st), want, strict=True)):.1e}"
                )
            except LstmEdgeError as e:
                cells[(provider, variant)] = "refused: " + e.problem.split(", so ")[0]
    return cells


def export_seconds(config: ModelConfig, root: Path) -> float:
    torch.manual_seed(0)
    start = time.perf_counter()
    export_bundle(LSTMModel(config).eval(), root, ExportConfig(name="seed"))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args()
    lines = [
        f"Max scaled error |Δ|/max(1,|ref|) over y and the final state at T={args.seq}, B=4, random initial state, "
        f"against the float64 PyTorch rebuild (F=16, H={args.hidden}, 2 layers, PyTorch's default init).",
        "",
        "| form | " + " | ".join(f"{p} {v}" for p in RUNTIMES for v in VARIANTS if p != "torch" or v == "fp32") + " |",
        "|---|" + "---|" * (1 + 3 * (len(RUNTIMES) - 1)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, config) in enumerate(forms(16, args.hidden).items()):
            cells = measure(config, Path(tmp) / f"f{k}", args.seq)
            row = [cells[(p, v)] for p in RUNTIMES for v in VARIANTS if p != "torch" or v == "fp32"]
            lines.append(f"| {name} | " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
        if not args.skip_seed:
            lines += [
                "",
                "Export time at the seed's size (input 100, hidden 256, 2 layers, head 10), whole export_bundle:",
            ]
            seed = {"input_size": 100, "hidden_size": 256, "num_layers": 2, "output_size": 10}
            for name, kw in (("LSTM", {}), ("bidirectional LSTM", {"bidirectional": True}), ("GRU", {"family": "gru"})):
                s = export_seconds(ModelConfig(**seed, **kw), Path(tmp) / f"seed-{name}")
                lines.append(f"- {name}: {s:.2f} s")
                print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

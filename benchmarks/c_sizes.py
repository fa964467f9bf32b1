"""Flash and RAM of the generated C on a Cortex-M4F, from arm-none-eabi-size, and what fits in 256 KB of flash.

    .venv/bin/python benchmarks/c_sizes.py [--json OUT]

For the shipped adding model (2 → 64 × 2) and the seed's size (100 → 256 × 2, random weights): the model library
alone (NAME.c compiled -O2 for -mcpu=cortex-m4 -mfpu=fpv4-sp-d16: text = code + const weights = flash, data + bss =
RAM, which is 0: the state struct is the caller's, its size given too) and the whole check program (.elf: newlib,
printf, golden vectors). Then, at 2 layers, the largest hidden size whose library fits in 256 KB (262,144 bytes)
of flash, per precision and for input 2 and 100: predicted from the weight count plus the code measured here, then
confirmed by compiling that size and the next. Deterministic: one run is the figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from lstm_edge.codegen import CodegenConfig, generate
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.model import LSTMModel, ModelConfig

ARM = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-O2"]
FLASH = 256 * 1024


def arm_size(path: Path) -> dict:
    out = subprocess.run(["arm-none-eabi-size", str(path)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


def random_bundle(root: Path, F: int, H: int, name: str) -> Path:
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(input_size=F, hidden_size=H, num_layers=2, task="size")).eval()
    out = root / name
    export_bundle(model, out, ExportConfig(name=name))
    return out


def library_size(bundle: Path, precision: str, work: Path, elf: bool = False) -> dict:
    g = generate(
        bundle, work / f"{bundle.name}-{precision}", CodegenConfig(precision=precision, prefix="m", force=True)
    )
    obj = g.out / "m_m4.o"
    subprocess.run([*ARM, "-c", "-o", str(obj), str(g.out / "m.c")], check=True)
    r = {"library": arm_size(obj)}
    if elf:
        subprocess.run(["make", "-s", "-C", str(g.out), "cortex-m4"], check=True, capture_output=True)
        r["check_elf"] = arm_size(g.out / "m_check.elf")
    shutil.rmtree(g.out)
    return r


def weight_bytes(F: int, H: int, precision: str, L: int = 2, O: int = 1) -> int:
    """Constant bytes the generated library holds (weights, scales, biases, normalization, table)."""
    rows, n_w, f_in = 4 * H, 0, F
    for _ in range(L):
        n_w += rows * (f_in + H)
        f_in = H
    if precision == "fp32":
        return 4 * (n_w + L * rows + O * H + O + 2 * F + 2 * O)
    return n_w + O * H + 4 * (3 * L * rows + 2 * O + 2 * F + 2 * O + 1) + 4 * 513


def state_bytes(H: int, precision: str, L: int = 2) -> int:
    return L * H * (8 if precision == "fp32" else 6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    report: dict = {"models": {}, "fits_256k": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = {
            "adding (2→64×2)": Path("models/adding"),
            "seed size (100→256×2)": random_bundle(root, 100, 256, "seed"),
        }
        for name, bundle in models.items():
            for precision in ("fp32", "int8"):
                r = library_size(bundle, precision, root, elf=True)
                report["models"][f"{name} {precision}"] = r
            f32, i8 = (report["models"][f"{name} {p}"]["library"]["flash"] for p in ("fp32", "int8"))
            report["models"][f"{name} int8"]["flash_vs_fp32"] = i8 / f32
        for F in (2, 100):
            for precision in ("fp32", "int8"):
                probe = library_size(random_bundle(root, F, 32, f"p{F}-{precision}"), precision, root)["library"][
                    "flash"
                ]
                code = probe - weight_bytes(F, 32, precision)  # code and padding, nearly independent of H
                H = max(h for h in range(4, 2048) if weight_bytes(F, h, precision) + code <= FLASH)
                sizes = {}
                for h in (H, H + 1):
                    sizes[h] = library_size(random_bundle(root, F, h, f"h{F}-{h}-{precision}"), precision, root)[
                        "library"
                    ]["flash"]
                best = H if sizes[H] <= FLASH else H - 1
                report["fits_256k"][f"input {F}, {precision}"] = {
                    "largest_hidden": best if sizes[H + 1] > FLASH else None,
                    "flash_at_largest": sizes[H],
                    "flash_at_next": sizes[H + 1],
                    "state_ram_bytes": state_bytes(best, precision),
                }
    for name, r in report["models"].items():
        lib, elf = r["library"], r["check_elf"]
        extra = f"  ({r['flash_vs_fp32']:.3f}× fp32's flash)" if "flash_vs_fp32" in r else ""
        print(
            f"{name:<30} library flash {lib['flash']:>9,} B, RAM {lib['ram']} B{extra}; check .elf flash "
            f"{elf['flash']:,} B, RAM {elf['ram']:,} B"
        )
    for name, r in report["fits_256k"].items():
        print(
            f"256 KB flash, 2 layers, {name}: hidden ≤ {r['largest_hidden']} ({r['flash_at_largest']:,} B; next "
            f"{r['flash_at_next']:,} B); state {r['state_ram_bytes']:,} B of RAM"
        )
    if a.json:
        a.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

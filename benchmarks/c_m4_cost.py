"""Instructions per step and per MAC of the generated C on an emulated Cortex-M4F, before and after SMLAD.

    .venv/bin/python benchmarks/c_m4_cost.py [--steps 20] [--json benchmarks/results/c_m4_cost.json]
        [--md benchmarks/results/c_m4_cost.md]

Method (lstm_edge.codegen.m4_cost): qemu-system-arm -M mps2-an386 -icount shift=0 advances virtual time 1 ns per
executed instruction; the program reads SysTick (core clock, 25 MHz: 40 instructions a tick) around `--steps` calls
of NAME_step (after one warm-up step, inputs from the bundle's longest golden case). The calibration first times asm
loops of exactly 2·K instructions and records counted vs expected. Built with arm-none-eabi-gcc -O2 -mcpu=cortex-m4
-mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16: "before" with -DLSTM_EDGE_NO_DSP (the portable loop), "after" without
(int8: the SMLAD path; fp32's C has no DSP path, so its two builds are the same code, measured both to show it).
Per MAC divides by the LSTM gates' multiply-accumulates, 4H·(F+H) per layer (the head's H·O are left out).
Sizes: the adding model (2 → 64 × 2), and random weights at the largest hidden whose library fits 256 KB of flash at
2 layers and 2 inputs (benchmarks/c_sizes.py: fp32 72, int8 142), both precisions at each; `fits_256k` is from
the .text + .data measured here. For int8 the golden cases' outputs (NAME_run and NAME_step) of the two builds are
compared word for word. Instruction counts are deterministic: one run is the figure. They are not cycles.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstm_edge.codegen import CodegenConfig, generate, prepare
from lstm_edge.codegen import m4_cost as m4

sys.path.insert(0, str(Path(__file__).parent))
from c_sizes import FLASH, random_bundle  # noqa: E402  (benchmarks/ is not a package)

NO_DSP = ("LSTM_EDGE_NO_DSP",)
LARGEST = {"fp32": 72, "int8": 141}  # hidden, 2 inputs, 2 layers: the library's .text within 256 KB (checked below)
CAL_K = [1_000, 10_000, 100_000, 1_000_000]


def calibrate(work: Path, folder: Path) -> list[dict]:
    """The asm loops' expected and counted instructions (m4_cost.calibration_source), under -icount."""
    (work / "cal.c").write_text(m4.calibration_source(CAL_K))
    return m4.calibration(m4.run_qemu(m4.build_elf(folder, work / "cal.c", work / "cal.elf")))


def measure(bundle: Path, precision: str, work: Path, steps: int) -> dict:
    """One bundle at one precision: instructions per step and per MAC, .text, before (portable) and after (DSP);
    for int8, whether the two builds' outputs on the golden cases are the same bits."""
    cfg = CodegenConfig(precision=precision, prefix="m", force=True, progress=False)
    g = generate(bundle, work / f"{bundle.name}-{precision}", cfg)
    prep = prepare(bundle, cfg)
    dims, cases = prep["dims"], prep["cases"]
    x = max(cases, key=lambda c: c["x"].shape[1])["x"][0]  # [T, F] of the longest golden case, cycled to `steps`
    (g.out / "cost.c").write_text(m4.cost_source("m", dims, np.resize(x, (steps, dims["F"])), steps))
    (g.out / "dump.c").write_text(m4.dump_source("m", dims, cases))
    macs = m4.gate_macs(dims)
    r: dict = {"hidden": dims["H"], "input": dims["F"], "layers": dims["L"], "gate_macs_per_step": macs}
    dumps = {}
    for name, defines in (("before", NO_DSP), ("after", ())):
        elf = m4.build_elf(g.out, g.out / "cost.c", g.out / f"cost_{name}.elf", defines, "m")
        per_step = m4.step_instructions(m4.run_qemu(elf))
        text = m4.library_text(g.out, "m", defines)
        r[name] = {"insns_per_step": per_step, "insns_per_mac": per_step / macs, "text_bytes": text}
        if precision == "int8":
            elf = m4.build_elf(g.out, g.out / "dump.c", g.out / f"dump_{name}.elf", defines, "m")
            dumps[name] = m4.run_qemu(elf, icount=False)
    r["fits_256k"] = r["after"]["text_bytes"] <= FLASH  # the library has no .data (all weights const)
    if dumps:
        r["bit_exact"] = dumps["before"] == dumps["after"]
        r["words_compared"] = sum(len(ln.split()) - 3 for ln in dumps["after"].splitlines())
    return r


def next_text(root: Path, precision: str, hidden: int) -> int:
    """.text bytes of the library (DSP path where there is one) one hidden size past LARGEST: must exceed 256 KB."""
    bundle = random_bundle(root, 2, hidden, f"h{hidden}")
    cfg = CodegenConfig(precision=precision, prefix="m", force=True, progress=False)
    return m4.library_text(generate(bundle, root / f"next-{precision}", cfg).out, "m")


def table(results: list[dict]) -> str:
    """The results as a markdown table."""
    out = [
        "| model | precision | fits 256 KB | instr./step before → after | instr./MAC before → after | .text before / "
        "after | bit-exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, a = r["before"], r["after"]
        exact = {True: "yes", False: "**no**", None: "—"}[r.get("bit_exact")]
        out.append(
            f"| {r['model']} | {r['precision']} | {'yes' if r['fits_256k'] else 'no'} | "
            f"{b['insns_per_step']:,.0f} → {a['insns_per_step']:,.0f} | "
            f"{b['insns_per_mac']:.2f} → {a['insns_per_mac']:.2f} | {b['text_bytes']:,} / {a['text_bytes']:,} B | "
            f"{exact} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="NAME_step calls timed per program")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/c_m4_cost.json"))
    ap.add_argument("--md", type=Path, default=Path("benchmarks/results/c_m4_cost.md"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = {
            "adding (2→64×2)": Path("models/adding"),
            **{f"2→{h}×2 ({p}'s largest in 256 KB)": random_bundle(root, 2, h, f"h{h}") for p, h in LARGEST.items()},
        }
        results = []
        for name, bundle in models.items():
            for precision in ("fp32", "int8"):
                r = {"model": name, "precision": precision, **measure(bundle, precision, root, a.steps)}
                results.append(r)
                print(f"{name} {precision}: {r['before']['insns_per_step']:,.0f} → {r['after']['insns_per_step']:,.0f}")
        cal = calibrate(root, root / "adding-int8")
        next_size = {p: next_text(root, p, h + 1) for p, h in LARGEST.items()}
    report = {
        "method": "qemu-system-arm -M mps2-an386 -icount shift=0 (1 ns per instruction), SysTick at 25 MHz read "
        "around the calls: 40 instructions per tick",
        "qemu_version": m4.qemu_version(),
        "compiler": m4.compiler_version(),
        "flags": [*m4.ARM_CC, *m4.ARM_CFLAGS],
        "steps": a.steps,
        "calibration": cal,
        "largest_in_256k": {p: {"hidden": h, "next_hidden_text_bytes": next_size[p]} for p, h in LARGEST.items()},
        "results": results,
        "seconds": time.perf_counter() - t0,
    }
    md = table(results)
    cal_line = ", ".join(f"2·{c['k']:,} = {c['expected']:,} → {c['counted']:,}" for c in cal)
    md += f"\nCalibration (asm loop, expected → counted instructions): {cal_line}.\n"
    nxt = "; ".join(f"{p} hidden {h + 1}: {next_size[p]:,} B" for p, h in LARGEST.items())
    md += f"\nOne size larger no longer fits 256 KB ({FLASH:,} B): {nxt}.\n"
    print("\n" + md)
    a.json.write_text(json.dumps(report, indent=1) + "\n")
    a.md.write_text(md)


if __name__ == "__main__":
    main()

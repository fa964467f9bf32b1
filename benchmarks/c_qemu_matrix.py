"""verify's whole case matrix through the generated C, on the host and on an emulated Cortex-M4F (qemu).

    .venv/bin/python benchmarks/c_qemu_matrix.py [--bundle models/adding] [--precision fp32 int8]
        [--targets host qemu] [--quick] [--json benchmarks/results/c_qemu_matrix.json]

The cases are verify's own (lstm_edge.cases.reference_cases: B 1/4/16 × T 1/7/100/1000 × zero/random initial state,
verify's seeds, the float64 reference's answers). lstm_edge.codegen.matrix embeds them in codegen's check program
(the reference as double), builds it with the generated Makefile (host: the system cc, -O2; cortex-m4:
arm-none-eabi-gcc for the MPS2 AN386 board with codegen's start-up code and linker script) and runs it — natively,
and under qemu-system-arm -M mps2-an386 with semihosting. Each case runs whole (NAME_run: verify's "full" and
"stream:T", one call either way in the C), one step per call (NAME_step: "stream:1") and in calls of 7 steps
("stream:7"). fp32 is judged by verify's bound for the c runtime (tolerances.tolerance: FP32_ABS, scaled by
max(1, |reference|)); int8 against its bit-exact simulation (lstm_edge.c_int8_sim; C_INT8_VS_SIM = 0).
Deterministic figures (seconds aside): one run is the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lstm_edge.cases import VerifyConfig, reference_cases
from lstm_edge.codegen.matrix import MODES, TARGETS, check_matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("models/adding"))
    ap.add_argument("--precision", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--quick", action="store_true", help="verify --quick's matrix (B 1,4; T 1,7,100)")
    ap.add_argument("--work", type=Path, help="keep the generated programs here")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    cfg = VerifyConfig().quick() if a.quick else VerifyConfig()
    t0 = time.perf_counter()
    ref = reference_cases(a.bundle, cfg)  # once, for every precision
    print(f"{len(ref)} reference cases (float64) in {time.perf_counter() - t0:.0f} s")
    out = {"bundle": str(a.bundle), "matrix": {"batches": cfg.batches, "seqs": cfg.seqs}, "results": {}}
    for precision in a.precision:
        t0 = time.perf_counter()
        work = a.work / precision if a.work else None
        r = check_matrix(a.bundle, precision, tuple(a.targets), cfg, work=work, ref=ref)
        r["wall_seconds"] = time.perf_counter() - t0
        out["results"][precision] = r
        print(f"\n{precision}: against {r['against']}; {r['programs']} program(s)")
        print(f"{'case':<18}" + "".join(f"{t + ' ' + m:>14}" for t in r["targets"] for m in MODES) + "   bound")
        for k, case in enumerate(r["targets"][a.targets[0]]["cases"]):
            row = [r["targets"][t]["cases"][k] for t in r["targets"]]
            cells = "".join(f"{x[m]:>14.3e}" if x[m] is not None else f"{'—':>14}" for x in row for m in MODES)
            print(f"{case['name']:<18}{cells}   {case['tolerance']:.0e}")
        for t, v in r["targets"].items():
            print(
                f"{precision} {t}: worst {v['worst']:.3e}, cases {v['cases_passed']}, runs {v['runs_passed']}, "
                f"exit codes {sorted(set(v['exit_codes']))}, {v['seconds']:.0f} s running ({'; '.join(v['tools'])})"
            )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Instructions a generated library executes on an emulated Cortex-M4F, and its outputs as bits, under qemu.

qemu-system-arm (Debian's 7.2 here) has no TCG plugins, so the count comes from `-icount shift=0`: virtual time
advances exactly 1 ns per executed guest instruction, and the guest reads SysTick (CLKSOURCE = the core clock,
25 MHz on mps2-an386) before and after the code measured: one tick is 40 instructions. `calibration_source` times
an asm loop of exactly 2·K instructions so that the conversion is checked, not assumed. These are instructions,
not cycles: qemu models no pipeline, no wait states, no flash; every instruction counts 1 (a load as much as an add,
an instruction skipped in an IT block too).

`cost_source` writes a program that runs NAME_step n times on given inputs (after one warm-up step) and prints the
ticks; `dump_source` one that prints NAME_run's and NAME_step's outputs of every golden case as hex words, so that
two builds (the int8 SMLAD path, and -DLSTM_EDGE_NO_DSP's portable loop) can be compared bit for bit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from lstm_edge.codegen.c_literals import c_array

ARM_CC = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
ARM_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config", "enable=on,target=native"]
ICOUNT = ["-icount", "shift=0"]  # 2^0 ns of virtual time per instruction
CORE_HZ = 25_000_000  # mps2-an386's core clock, SysTick's with CLKSOURCE = 1
INSNS_PER_TICK = 10**9 // CORE_HZ  # 40 instructions per SysTick tick at shift=0

SYSTICK = """#include <stdint.h>
#include <stdio.h>
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

/* SysTick from the core clock, counting down over 24 bits, no interrupt */
static void ticks_start(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* ENABLE | CLKSOURCE (core) */
}

/* ticks from `then` (a SYST_CVR reading) to now, modulo 2^24 */
static unsigned long ticks_since(uint32_t then) { return (unsigned long)((then - SYST_CVR) & 0xFFFFFFu); }
"""


def calibration_source(ks: list[int]) -> str:
    """A program that times `subs; bne` loops of exactly 2·K instructions for each K and prints `K ticks`."""
    calls = "\n".join(
        f'    t0 = SYST_CVR;\n    spin({k}u);\n    printf("calibrate %lu %lu\\n", {k}UL, ticks_since(t0));' for k in ks
    )
    return f"""/* m4 cost calibration: a loop of exactly 2 * K instructions (subs, bne), timed by SysTick under -icount */
{SYSTICK}
static void spin(uint32_t n)
{{
    __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
}}

int main(void)
{{
    uint32_t t0;
    ticks_start();
{calls}
    return 0;
}}
"""


def cost_source(p: str, dims: dict, x: np.ndarray, steps: int) -> str:
    """A program that runs one warm-up step, then `steps` calls of NAME_step on x[steps, F] (float32), timed by
    SysTick, and prints `steps ticks` and y's last value (so that no call can be dropped)."""
    F, O = dims["F"], dims["O"]
    return f"""/* m4 cost: {steps} calls of {p}_step timed by SysTick under -icount */
{SYSTICK}
#include "{p}.h"

{c_array("float", "XS", np.asarray(x, dtype=np.float32).reshape(steps, F))}
int main(void)
{{
    {p}_state s;
    float y[{O}];
    uint32_t t0;
    unsigned long ticks;
    int t;
    {p}_reset(&s);
    {p}_step(&s, XS[0], y);
    ticks_start();
    t0 = SYST_CVR;
    for (t = 0; t < {steps}; ++t)
        {p}_step(&s, XS[t], y);
    ticks = ticks_since(t0);
    printf("steps %d ticks %lu y %.9e\\n", {steps}, ticks, (double)y[0]);
    return 0;
}}
"""


def dump_source(p: str, dims: dict, cases: list[dict]) -> str:
    """A program that prints, per golden case and batch row, NAME_run's y, h_n and C_n, then NAME_step's, as the
    hex of their float32 bits (`CASE ROW MODE word word ...`)."""
    L, H, F, O = dims["L"], dims["H"], dims["F"], dims["O"]
    arrays, rows = [], []
    for n, c in enumerate(cases):
        B, T = c["x"].shape[:2]
        for key in ("x", "h0", "c0"):
            arrays.append(c_array("float", f"C{n}_{key.upper()}", c[key].astype(np.float32).ravel()))
        rows.append(f"    {{{B}, {T}, C{n}_X, C{n}_H0, C{n}_C0}}")
    y_len = f"{max(c['x'].shape[1] for c in cases)} * {O}" if dims["head"] == "sequence" else f"{O}"
    y_n = f"k->T * {O}" if dims["head"] == "sequence" else f"{O}"
    y_at = f"y + (long)t * {O}" if dims["head"] == "sequence" else "y"
    return f"""/* m4 dump: every golden case through {p}_run and {p}_step, outputs as float32 bits in hex */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "{p}.h"

{"".join(arrays)}
typedef struct {{
    int B, T;
    const float *x, *h0, *c0;
}} dump_case;

static const dump_case CASES[] = {{
{("," + chr(10)).join(rows)}
}};

static void words(const float *v, int n)
{{
    int k;
    for (k = 0; k < n; ++k) {{
        uint32_t u;
        memcpy(&u, &v[k], 4);
        printf(" %08lx", (unsigned long)u);
    }}
}}

int main(void)
{{
    {p}_state s;
    static float h[{L} * {H}], c[{L} * {H}], y[{y_len}];
    unsigned n;
    int b, l, j, t, mode;
    for (n = 0; n < sizeof CASES / sizeof CASES[0]; ++n) {{
        const dump_case *k = &CASES[n];
        for (b = 0; b < k->B; ++b)
            for (mode = 0; mode < 2; ++mode) {{
                const float *x = k->x + (long)b * k->T * {F};
                for (l = 0; l < {L}; ++l)
                    for (j = 0; j < {H}; ++j) {{
                        h[l * {H} + j] = k->h0[(l * k->B + b) * {H} + j];
                        c[l * {H} + j] = k->c0[(l * k->B + b) * {H} + j];
                    }}
                {p}_set_state(&s, h, c);
                if (mode == 0)
                    {p}_run(&s, x, k->T, y);
                else
                    for (t = 0; t < k->T; ++t)
                        {p}_step(&s, x + (long)t * {F}, {y_at});
                {p}_get_state(&s, h, c);
                printf("%u %d %s", n, b, mode == 0 ? "run" : "step");
                words(y, {y_n});
                words(h, {L} * {H});
                words(c, {L} * {H});
                printf("\\n");
            }}
    }}
    return 0;
}}
"""


def build_elf(folder: Path, main_c: Path, out: Path, defines: tuple[str, ...] = (), library: str | None = None) -> Path:
    """Link main_c (and `library`.c from folder, when given) with codegen's start-up code and linker script for the
    MPS2 AN386 board into `out`; defines: -D flags without the -D (e.g. LSTM_EDGE_NO_DSP)."""
    sources = [str(folder / "startup_m4.c"), str(main_c)] + ([str(folder / f"{library}.c")] if library else [])
    flags = [f"-D{d}" for d in defines]
    cmd = [*ARM_CC, *ARM_CFLAGS, *flags, "--specs=rdimon.specs", "-T", str(folder / "mps2_an386.ld"), "-o", str(out)]
    subprocess.run([*cmd, *sources], check=True, capture_output=True, text=True)
    return out


def library_text(folder: Path, library: str, defines: tuple[str, ...] = ()) -> int:
    """.text bytes (code and const weights) of `library`.c alone, compiled for the Cortex-M4F (arm-none-eabi-size)."""
    obj = folder / f"{library}_m4_{'_'.join(defines) or 'default'}.o"
    flags = [f"-D{d}" for d in defines]
    subprocess.run([*ARM_CC, *ARM_CFLAGS, *flags, "-c", "-o", str(obj), str(folder / f"{library}.c")], check=True)
    out = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[1].split()[0])


def run_qemu(elf: Path, icount: bool = True, timeout: float = 300) -> str:
    """The program's stdout under qemu-system-arm -M mps2-an386 (with -icount shift=0 unless told otherwise); raises
    CalledProcessError when it exits non-zero."""
    cmd = [*QEMU, *(ICOUNT if icount else []), "-kernel", str(elf)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


def calibration(stdout: str) -> list[dict]:
    """calibration_source's lines as {k, expected (2·K), counted (ticks · INSNS_PER_TICK)}."""
    rows = [ln.split() for ln in stdout.splitlines() if ln.startswith("calibrate ")]
    return [{"k": int(k), "expected": 2 * int(k), "counted": int(t) * INSNS_PER_TICK} for _, k, t in rows]


def step_instructions(stdout: str) -> float:
    """Instructions per NAME_step call from cost_source's line (ticks · INSNS_PER_TICK / steps)."""
    line = next(ln for ln in stdout.splitlines() if ln.startswith("steps "))
    parts = line.split()
    return int(parts[3]) * INSNS_PER_TICK / int(parts[1])


def gate_macs(dims: dict) -> int:
    """Multiply-accumulates per step in the LSTM gates: 4H·(F+H) for layer 0, 4H·2H for each layer above."""
    L, H, F = dims["L"], dims["H"], dims["F"]
    return sum(4 * H * ((F if k == 0 else H) + H) for k in range(L))


def qemu_version() -> str:
    """qemu-system-arm's version line."""
    return subprocess.run([QEMU[0], "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def compiler_version() -> str:
    """arm-none-eabi-gcc's version line."""
    return subprocess.run([ARM_CC[0], "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]

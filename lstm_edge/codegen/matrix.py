"""verify's case matrix run by the generated C itself: on the host and on an emulated Cortex-M4F (qemu-system-arm,
Arm MPS2 AN386 board, semihosting).

The cases are verify's own (lstm_edge.cases.reference_cases: the same inputs, seeds and float64 reference answers).
They are embedded in check programs (codegen's NAME_check.c, built by the generated Makefile's host and cortex-m4
targets with its start-up code and linker script), each case run whole (NAME_run: verify's "full" and "stream:T",
which the c runtime serves with the same one call), one step per call (NAME_step: "stream:1") and in calls of
`chunk` steps ("stream:7"). fp32 is judged against the float64 reference (embedded as double) by verify's
tolerance for the c runtime (tolerances.tolerance, scaled by max(1, |reference|)); int8 against its bit-exact
simulation (lstm_edge.c_int8_sim) by C_INT8_VS_SIM.

Cases that do not fit the board's 4 MB of flash beside the library are split into programs, a case into groups of
its batch rows if it must be (each row runs on its own state struct, so a split changes nothing), and the results
are merged per case.

    report = check_matrix("models/adding", "fp32", targets=("host", "qemu"))

A GRU or token-id bundle is refused in one line (its C is proven by codegen's own check program, golden cases).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lstm_edge.cases import VerifyConfig, reference_cases
from lstm_edge.codegen import CodegenConfig, prepare, render, simulate_int8
from lstm_edge.errors import LstmEdgeError
from lstm_edge.tolerances import C_INT8_VS_SIM, tolerance

TARGETS = ("host", "qemu")
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config", "enable=on,target=native"]
BOARD_FLASH = 4 * 1024 * 1024  # mps2_an386.ld: 4 MB code SSRAM at 0x0 (our flash)
# Flash a check program needs beyond the library and the case data: newlib with printf and semihosting, start-up and
# the check code. Measured: the adding model's golden check .elf is 255,948 B, its library 202,489 B and its golden
# data 17 kB, so ~36 kB; 256 kB leaves room for a larger newlib.
PROGRAM_RESERVE = 256 * 1024
MODES = ("full", "step", "chunk")  # NAME_run(T), NAME_step per call, NAME_run per `chunk` steps


@dataclass
class CheckCase:
    """One case as a check program embeds it: x [B, T, F], h0/c0 [L, B, H] float32, the expected y/hn/cn (float64
    for the float64 reference, float32 for the int8 simulation), and the bound it is judged by."""

    name: str  # B{batch}_T{seq}_{state}; a part of a split case adds +{first row}
    batch: int
    seq: int
    state: str  # zero | random
    arrays: dict[str, np.ndarray]  # x, h0, c0, y, hn, cn
    tolerance: float

    @property
    def nbytes(self) -> int:
        """Bytes of the case's arrays: what it adds to a check program's flash."""
        return sum(a.nbytes for a in self.arrays.values())

    def rows(self, start: int, stop: int) -> CheckCase:
        """Batch rows start..stop-1 as a case of their own (x and y are [B, …], the states [L, B, H])."""
        a = self.arrays
        part = {k: a[k][start:stop] for k in ("x", "y")} | {k: a[k][:, start:stop] for k in ("h0", "c0", "hn", "cn")}
        return replace(self, name=f"{self.name}+{start}", batch=stop - start, arrays=part)


def matrix_cases(prep: dict, precision: str, cfg=None, ref: list | None = None) -> list[CheckCase]:
    """verify's cases for prep's bundle (lstm_edge.codegen.prepare), with what the C must reproduce: fp32, the
    float64 reference's outputs within tolerances.tolerance(fp32 entry, T, output, "c") (the smallest of y, hn, cn);
    int8, the simulation's outputs within C_INT8_VS_SIM.

    cfg: a cases.VerifyConfig (default: verify's full matrix, B 1/4/16 × T 1/7/100/1000 × zero/random state).
    ref: cases.reference_cases(bundle, cfg) when already computed (one torch float64 run per case).
    Raises LstmEdgeError when the bundle's reference cannot be opened.
    """
    bundle = prep["bundle"]
    entry = bundle.entry("fp32")
    out = []
    for rc in ref if ref is not None else reference_cases(bundle.root, cfg or VerifyConfig()):
        if precision == "fp32":
            want = rc.want
            tol = min(tolerance(entry, rc.seq, name, "c") for name in bundle.config.output_names)
        else:
            want = simulate_int8(prep["params"], rc.x, rc.h0, rc.c0)
            tol = C_INT8_VS_SIM
        state = "random" if rc.random_state else "zero"
        arrays = {"x": rc.x, "h0": rc.h0, "c0": rc.c0, **dict(zip(("y", "hn", "cn"), want, strict=True))}
        out.append(CheckCase(f"B{rc.batch}_T{rc.seq}_{state}", rc.batch, rc.seq, state, arrays, tol))
    return out


def pack(cases: list[CheckCase], budget: int | None) -> list[list[CheckCase]]:
    """Cases into programs of at most `budget` bytes of embedded data each (None: one program), in order; a case
    over the budget is split into groups of batch rows. Raises LstmEdgeError when one batch row alone is over it."""
    if budget is None:
        return [list(cases)]
    pieces = []
    for c in cases:
        if c.nbytes <= budget:
            pieces.append(c)
            continue
        per_row = c.nbytes / c.batch
        if per_row > budget:
            raise LstmEdgeError(
                f"one batch row of case {c.name} holds {per_row / 2**20:.1f} MiB of data; a check program has "
                f"{budget / 2**20:.1f} MiB of the board's flash beside the library",
                "check shorter sequences (a smaller VerifyConfig.seqs) or a smaller model",
            )
        step = int(budget // per_row)
        pieces += [c.rows(s, min(s + step, c.batch)) for s in range(0, c.batch, step)]
    groups: list[list[CheckCase]] = [[]]
    used = 0
    for c in pieces:
        if groups[-1] and used + c.nbytes > budget:
            groups.append([])
            used = 0
        groups[-1].append(c)
        used += c.nbytes
    return groups


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise LstmEdgeError(
            f"{name} is not installed", "install it: bash scripts/codegen-deps.sh (Debian packages, as root)"
        )
    return path


def _version(cmd: str) -> str:
    done = subprocess.run([cmd, "--version"], capture_output=True, text=True)
    return (done.stdout.strip().splitlines() or ["?"])[0]


def library_flash(folder: Path) -> int:
    """Flash of the model library alone on the Cortex-M4F (the Makefile's `size` target: text + data).
    Raises LstmEdgeError when `make size` fails."""
    done = subprocess.run(["make", "-s", "-C", str(folder), "size"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise LstmEdgeError(f"make size failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}", "see the Makefile")
    text, data = (int(v) for v in done.stdout.strip().splitlines()[-1].split()[:2])
    return text + data


def write_program(prep: dict, precision: str, cases: list[CheckCase], folder: Path, chunk: int, against: str) -> None:
    """codegen's folder (library, check program, Makefile, start-up, linker script) with `cases` embedded."""
    tol = min(c.tolerance for c in cases)
    embedded = [{"name": c.name, **c.arrays} for c in cases]
    files = render({**prep, "cases": embedded}, precision, against=against, tolerance=tol, chunk=chunk)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def run_program(folder: Path, prefix: str, target: str, timeout: float = 3600) -> tuple[int, str, float]:
    """Build the check program with the generated Makefile (host: NAME_check; qemu: NAME_check.elf) and run it
    (on qemu-system-arm -M mps2-an386 with semihosting). Returns (exit code, stdout, seconds the run took).
    Raises LstmEdgeError when the build fails or the run passes `timeout` seconds."""
    make_target = f"{prefix}_check" if target == "host" else "cortex-m4"
    build = subprocess.run(["make", "-s", "-C", str(folder), make_target], capture_output=True, text=True, timeout=1800)
    if build.returncode != 0:
        last = (build.stderr.strip().splitlines() or ["?"])[-1]
        raise LstmEdgeError(f"building the {target} check program failed: {last}", f"see {folder}/Makefile")
    cmd = (
        [str(folder / f"{prefix}_check")]
        if target == "host"
        else [*QEMU, "-kernel", str(folder / f"{prefix}_check.elf")]
    )
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LstmEdgeError(f"the {target} check program ran past {timeout:.0f} s", "check fewer cases") from e
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - t0


def parse_output(text: str, prefix: str) -> dict[str, list[float]]:
    """{case name: [full, step, chunk] max scaled errors} from a check program's lines."""
    line = re.compile(rf"^{re.escape(prefix)}_check: (\S+)\s+full (\S+)  step by step (\S+)(?:  chunks of \d+ (\S+))?$")
    out = {}
    for ln in text.splitlines():
        m = line.match(ln.strip())
        if m:
            out[m.group(1)] = [float(v) for v in m.groups()[1:] if v is not None]
    return out


def _lstm_only(prep: dict) -> dict:
    """prep, when its bundle is an LSTM on float inputs (verify's cases carry (h0, c0) and float x). Raises
    LstmEdgeError, one line, for a GRU or a token-id bundle, naming the golden-case check its C has instead."""
    if prep["dims"]["family"] != "lstm" or prep["dims"]["V"]:
        raise LstmEdgeError(
            "the C case matrix runs LSTMs on float inputs; this bundle is a GRU or takes token ids",
            "check its C with the golden cases instead: lstm-edge codegen BUNDLE --out C && make -C C host qemu",
        )
    return prep


def check_matrix(
    bundle_path: str | Path,
    precision: str = "fp32",
    targets: tuple[str, ...] = TARGETS,
    cfg=None,
    work: str | Path | None = None,
    chunk: int = 7,
    budget: int | None = None,
    timeout: float = 3600,
    ref: list | None = None,
) -> dict:
    """verify's matrix (cfg: a cases.VerifyConfig; default the full one) through the generated C on each target.

    Args:
        bundle_path: a bundle codegen can write (a unidirectional, batch-first LSTM).
        precision: fp32 (against the float64 reference) or int8 (against its simulation, bit for bit).
        targets: "host" (the system cc, the Makefile's CFLAGS) and/or "qemu" (arm-none-eabi-gcc, Cortex-M4F).
        work: where the program folders go (kept, for inspection); default a temporary folder, removed.
        chunk: the steps per call of the chunked mode (verify's stream:7).
        budget: bytes of case data per program; default, with qemu, the board's flash less the library's flash
            (measured with `make size`) and PROGRAM_RESERVE; host only, one program.
        timeout: seconds one program may run.
        ref: cases.reference_cases(bundle, cfg), when already computed (one computation for fp32 and int8).
    Returns {"bundle", "bundle_sha256", "precision", "against", "matrix", "programs", "library_flash", "targets":
    {target: {"cases": [{name, batch, seq, state, full, step, chunk (max scaled errors, as the C prints them: 4
    significant digits), worst, tolerance, passed}], "worst", "cases_passed", "runs_passed", "exit_codes",
    "seconds", "tools", "program_flash" (qemu: each .elf's text + data)}}}; a case whose numbers are missing from
    the output (a crash) counts as failed. Raises LstmEdgeError for a bundle codegen refuses (or a GRU or token-id
    bundle: this matrix is the LSTM's), a missing tool, a
    failed build or a run past `timeout`.
    """
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise LstmEdgeError(f"targets {', '.join(targets) or '(none)'}", f"choose from {', '.join(TARGETS)}")
    need = {"host": ("make", "cc"), "qemu": ("make", "arm-none-eabi-gcc", "arm-none-eabi-size", QEMU[0])}
    for tool in {tool for t in targets for tool in need[t]}:
        _tool(tool)
    prep = _lstm_only(prepare(bundle_path, CodegenConfig(precision=precision, prefix="mx", verify_hash=True)))
    cases = matrix_cases(prep, precision, cfg, ref)
    against = (
        "verify's float64 reference (lstm_edge.cases.reference_cases), embedded as double"
        if precision == "fp32"
        else "lstm_edge/c_int8_sim.py's outputs for verify's inputs"
    )
    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="lstm-edge-matrix-")
        work = tmp.name
    work = Path(work)
    try:
        lib_flash, budget = _flash_budget(prep, precision, cases, work, chunk, against, targets, budget)
        folders = []
        for i, group in enumerate(pack(cases, budget)):
            folder = work / f"program{i}"
            write_program(prep, precision, group, folder, chunk, against)
            folders.append(folder)
        report = {
            "bundle": str(prep["bundle"].root),
            "bundle_sha256": prep["sha256"],
            "precision": precision,
            "against": against,
            "matrix": {
                "cases": len(cases),
                "modes": {
                    "full": "NAME_run(T) (verify's full and stream:T)",
                    "step": "NAME_step per step (stream:1)",
                    "chunk": f"NAME_run per {chunk} steps (stream:{chunk})",
                },
            },
            "programs": len(folders),
            "library_flash": lib_flash,
            "targets": {},
        }
        for target in targets:
            report["targets"][target] = _run_target(cases, folders, prep["prefix"], target, timeout)
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _flash_budget(
    prep: dict,
    precision: str,
    cases: list[CheckCase],
    work: Path,
    chunk: int,
    against: str,
    targets: tuple[str, ...],
    budget: int | None,
) -> tuple[int | None, int | None]:
    """(the library's flash, bytes of case data per program): with qemu, the library is built once to measure it
    and the default budget is the board's flash less that and PROGRAM_RESERVE; host only, (None, budget).
    Raises LstmEdgeError when the library alone leaves no room on the board."""
    if "qemu" not in targets:
        return None, budget
    probe = work / "library"
    write_program(prep, precision, cases[:1], probe, chunk, against)
    lib_flash = library_flash(probe)
    if budget is None:
        budget = BOARD_FLASH - lib_flash - PROGRAM_RESERVE
        if budget <= 0:
            raise LstmEdgeError(
                f"the library alone takes {lib_flash:,} B of the board's {BOARD_FLASH:,} B of flash",
                "check a smaller model, or int8",
            )
    return lib_flash, budget


def _run_target(cases: list[CheckCase], folders: list[Path], prefix: str, target: str, timeout: float) -> dict:
    errors: dict[str, list[float]] = {}
    codes, seconds = [], 0.0
    for folder in folders:
        code, text, took = run_program(folder, prefix, target, timeout)
        codes.append(code)
        seconds += took
        for name, errs in parse_output(text, prefix).items():
            base = name.split("+")[0]
            prev = errors.get(base)
            errors[base] = errs if prev is None else [max(a, b) for a, b in zip(prev, errs, strict=True)]
    rows = []
    for c in cases:
        errs = errors.get(c.name)
        row = {"name": c.name, "batch": c.batch, "seq": c.seq, "state": c.state, "tolerance": c.tolerance}
        if errs is None or len(errs) != len(MODES):
            row |= dict.fromkeys(MODES) | {"worst": None, "passed": False}
        else:
            row |= dict(zip(MODES, errs, strict=True)) | {"worst": max(errs), "passed": max(errs) <= c.tolerance}
        rows.append(row)
    worst = max((r["worst"] for r in rows if r["worst"] is not None), default=None)
    runs_ok = sum(e <= r["tolerance"] for r in rows if r["worst"] is not None for e in (r[m] for m in MODES))
    tools = [_version("cc")] if target == "host" else [_version("arm-none-eabi-gcc"), _version(QEMU[0])]
    flash = None
    if target == "qemu":  # each check .elf's flash (text + data): what the board had to hold
        flash = []
        for folder in folders:
            size = subprocess.run(
                ["arm-none-eabi-size", str(folder / f"{prefix}_check.elf")], capture_output=True, text=True
            ).stdout.splitlines()
            flash.append(sum(int(v) for v in size[1].split()[:2]) if len(size) > 1 else None)
    return {
        "cases": rows,
        "worst": worst,
        "cases_passed": f"{sum(r['passed'] for r in rows)}/{len(rows)}",
        "runs_passed": f"{runs_ok}/{len(rows) * len(MODES)}",
        "exit_codes": codes,
        "seconds": seconds,
        "tools": tools,
        "program_flash": flash,
    }


__all__ = ["CheckCase", "MODES", "TARGETS", "check_matrix", "matrix_cases", "pack", "parse_output", "run_program"]

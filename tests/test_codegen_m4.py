"""Cortex-M4 cost (issue 25 item 6): the int8 C's SMLAD path gives the portable loop's bits under qemu (the adding
model, and a model whose K are not multiples of 4, so that the tail and unaligned weight rows are exercised), its
check program passes at 0 against the simulation, and the instruction count (qemu -icount, SysTick) is calibrated:
an asm loop of exactly 2·K instructions counts within 1% of 2·K."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lstm_edge.codegen import CodegenConfig, generate, prepare
from lstm_edge.codegen import m4_cost as m4
from tests.conftest import make_model

MISSING = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm", "arm-none-eabi-objdump") if not shutil.which(t)]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (scripts/codegen-deps.sh)")
NO_DSP = ("LSTM_EDGE_NO_DSP",)


@pytest.fixture(scope="module")
def odd_bundle(tmp_path_factory) -> Path:
    """Input 7, hidden 10: gate products over K = 7 and 10 (tails of 3 and 2, weight rows at odd addresses)."""
    from lstm_edge.export import ExportConfig, export_bundle  # torch export only where this module's tests run

    out = tmp_path_factory.mktemp("m4") / "odd"
    export_bundle(make_model(input_size=7, hidden=10, layers=2, output=2, seed=5), out, ExportConfig(name="odd"))
    return out


def _smlads(elf: Path) -> int:
    """SMLAD instructions in the program's disassembly."""
    asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    return sum("\tsmlad" in ln for ln in asm.splitlines())


@pytest.mark.parametrize("which", ["adding", "odd"])
def test_smlad_path_is_bit_exact_to_the_portable_loop(which, shipped_bundle, odd_bundle, tmp_path):
    bundle = shipped_bundle if which == "adding" else odd_bundle
    cfg = CodegenConfig(precision="int8", prefix="m", progress=False)
    g = generate(bundle, tmp_path / "gen", cfg)
    prep = prepare(bundle, cfg)
    (g.out / "dump.c").write_text(m4.dump_source("m", prep["dims"], prep["cases"]))
    dumps = {}
    for name, defines in (("dsp", ()), ("portable", NO_DSP)):
        elf = m4.build_elf(g.out, g.out / "dump.c", tmp_path / f"{name}.elf", defines, "m")
        assert (_smlads(elf) > 0) == (name == "dsp"), f"{name}: the SMLAD path is {'not ' if name == 'dsp' else ''}in"
        dumps[name] = m4.run_qemu(elf, icount=False)
    dims = prep["dims"]
    rows = sum(2 * c["x"].shape[0] for c in prep["cases"])  # run and step per batch row
    words = sum(len(ln.split()) - 3 for ln in dumps["dsp"].splitlines())
    assert len(dumps["dsp"].splitlines()) == rows and words == rows * (dims["O"] + 2 * dims["L"] * dims["H"])
    assert dumps["dsp"] == dumps["portable"]
    # and the DSP build's check program agrees with the Python simulation to the last bit
    check = m4.build_elf(g.out, g.out / "m_check.c", tmp_path / "check.elf", (), "m")
    out = m4.run_qemu(check, icount=False)
    assert "max scaled error 0.000e+00" in out and "PASS" in out


def test_instruction_count_is_calibrated(tmp_path, shipped_bundle):
    g = generate(shipped_bundle, tmp_path / "gen", CodegenConfig(precision="fp32", prefix="m"))
    (tmp_path / "cal.c").write_text(m4.calibration_source([10_000, 100_000]))
    rows = m4.calibration(m4.run_qemu(m4.build_elf(g.out, tmp_path / "cal.c", tmp_path / "cal.elf")))
    assert [r["k"] for r in rows] == [10_000, 100_000]
    for r in rows:
        assert abs(r["counted"] - r["expected"]) <= 0.01 * r["expected"], r


def test_smlad_takes_fewer_instructions_per_step(tmp_path, shipped_bundle):
    cfg = CodegenConfig(precision="int8", prefix="m", progress=False)
    g = generate(shipped_bundle, tmp_path / "gen", cfg)
    prep = prepare(shipped_bundle, cfg)
    dims, steps = prep["dims"], 4
    x = max(prep["cases"], key=lambda c: c["x"].shape[1])["x"][0][:steps]  # [steps, F] of the longest case
    (g.out / "cost.c").write_text(m4.cost_source("m", dims, x, steps))
    per_step = {
        name: m4.step_instructions(m4.run_qemu(m4.build_elf(g.out, g.out / "cost.c", tmp_path / f"{name}.elf", d, "m")))
        for name, d in (("dsp", ()), ("portable", NO_DSP))
    }
    macs = m4.gate_macs(dims)
    assert macs == 4 * 64 * (2 + 64) + 4 * 64 * (64 + 64)
    # a step does at least one instruction per gate product either way; SMLAD does two products in one
    assert macs < per_step["dsp"] < per_step["portable"], per_step

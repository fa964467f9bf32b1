"""lstm_edge.codegen.matrix: verify's own cases, with the float64 reference embedded as double, run by the generated
check program on the host and on the emulated Cortex-M4F (qemu) — whole, one step per call and in chunks — judged by
verify's tolerance; a wrong expectation fails it; int8 equals its simulation bit for bit on the board; a split into
several programs changes no figure. (benchmarks/c_qemu_matrix.py runs verify's full matrix this way.)"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lstm_edge.cases import VerifyConfig, reference_cases
from lstm_edge.codegen import CodegenConfig, prepare
from lstm_edge.codegen.matrix import check_matrix, matrix_cases, pack, parse_output, run_program, write_program
from lstm_edge.tolerances import FP32_ABS

CFG = VerifyConfig(batches=(2,), seqs=(9,))  # two of verify's cases: B=2, T=9, zero and random initial state
TOOLS = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
needs_qemu = pytest.mark.skipif(bool(TOOLS), reason=f"{', '.join(TOOLS)} not installed (scripts/codegen-deps.sh)")


@pytest.fixture(scope="module")
def prep_fp32(small_bundle) -> dict:
    return prepare(small_bundle, CodegenConfig(prefix="mx"))


def test_the_cases_are_verifys_own(prep_fp32, small_bundle):
    cases = matrix_cases(prep_fp32, "fp32", CFG)
    ref = reference_cases(small_bundle, CFG)
    assert [c.name for c in cases] == ["B2_T9_zero", "B2_T9_random"]
    for c, r in zip(cases, ref, strict=True):
        assert np.array_equal(c.arrays["x"], r.x) and np.array_equal(c.arrays["h0"], r.h0)
        assert all(
            np.array_equal(c.arrays[k], w) and w.dtype == np.float64
            for k, w in zip(("y", "hn", "cn"), r.want, strict=True)
        )
        assert c.tolerance == FP32_ABS


@pytest.mark.parametrize("target", ["host", pytest.param("qemu", marks=needs_qemu)])
def test_fp32_matrix_cases_pass_against_the_float64_reference(small_bundle, target):
    report = check_matrix(small_bundle, "fp32", targets=(target,), cfg=CFG)
    r = report["targets"][target]
    assert r["cases_passed"] == "2/2" and r["runs_passed"] == "6/6" and r["exit_codes"] == [0]
    assert 0 < r["worst"] <= FP32_ABS  # float32 against float64: never exactly equal over 9 steps
    assert {k for k in r["cases"][0] if k in ("full", "step", "chunk")} == {"full", "step", "chunk"}


@pytest.mark.parametrize("target", ["host", pytest.param("qemu", marks=needs_qemu)])
def test_a_wrong_expectation_fails(prep_fp32, target, tmp_path):
    cases = matrix_cases(prep_fp32, "fp32", CFG)
    cn = cases[1].arrays["cn"]
    cn[0, 1, 3] += 1e-4 * max(1.0, abs(cn[0, 1, 3]))  # one cell of batch row 1, past the 1e-5 bound
    write_program(prep_fp32, "fp32", cases, tmp_path, 7, "a tampered reference")
    code, out, _ = run_program(tmp_path, "mx", target, timeout=120)
    errs = parse_output(out, "mx")
    assert code == 1 and "FAIL" in out, out
    assert max(errs["B2_T9_zero"]) <= FP32_ABS and min(errs["B2_T9_random"]) > FP32_ABS


@needs_qemu
def test_int8_matrix_cases_equal_the_simulation_on_the_board(small_bundle):
    r = check_matrix(small_bundle, "int8", targets=("qemu",), cfg=CFG)["targets"]["qemu"]
    assert r["cases_passed"] == "2/2" and r["worst"] == 0.0 and r["exit_codes"] == [0]


def test_a_split_into_programs_changes_no_figure(prep_fp32):
    cases = matrix_cases(prep_fp32, "fp32", CFG)
    per_row = cases[0].nbytes // 2
    groups = pack(cases, per_row + 8)  # one batch row per program: each case in two parts
    assert [[c.name for c in g] for g in groups] == [
        ["B2_T9_zero+0"],
        ["B2_T9_zero+1"],
        ["B2_T9_random+0"],
        ["B2_T9_random+1"],
    ]
    whole = check_matrix(prep_fp32["bundle"].root, "fp32", targets=("host",), cfg=CFG)
    split = check_matrix(prep_fp32["bundle"].root, "fp32", targets=("host",), cfg=CFG, budget=per_row + 8)
    assert whole["programs"] == 1 and split["programs"] == 4
    assert whole["targets"]["host"]["cases"] == split["targets"]["host"]["cases"]

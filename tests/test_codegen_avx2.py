"""The int8 C's AVX2 paths (lstm_edge/codegen/int8_avx2.py) give the portable loops' bits, on this machine's
compiler with the c runtime's speed flags: models whose K are not multiples of 16 (the dot's tail), whose hidden is
not a multiple of 8 (the cell's scalar rest) and a GRU whose 3H is not a multiple of 4 (the dot's remaining rows).
Both builds' check programs agree with the Python simulation to the last bit."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lstm_edge.c_support import compiler
from lstm_edge.codegen import CodegenConfig, generate, prepare
from lstm_edge.codegen import m4_cost as m4
from lstm_edge.model import LSTMModel, ModelConfig
from tests.conftest import make_model


def _has_avx2() -> bool:
    try:
        return platform.machine() in ("x86_64", "AMD64") and " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _has_avx2(), reason="needs an x86-64 CPU with AVX2 (the paths under test)")
FLAGS = ["-std=c99", "-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math", "-Wall", "-Wextra", "-Werror"]


def _gru(tmp: Path) -> Path:
    """Input 19, hidden 7, 2 layers: G = 21 gate rows (a multiple of neither 4 nor 8), K = 19 and 7."""
    from lstm_edge.export import ExportConfig, export_bundle

    cfg = ModelConfig(input_size=19, hidden_size=7, num_layers=2, output_size=3, family="gru")
    out = tmp / "gru"
    export_bundle(LSTMModel(cfg).eval(), out, ExportConfig(name="gru"))
    return out


def _lstm(tmp: Path) -> Path:
    """Input 37, hidden 20: K = 37 and 20 (tails of 5 and 4 after 16-wide blocks), 20 units (8 + 8 + 4)."""
    from lstm_edge.export import ExportConfig, export_bundle

    out = tmp / "lstm"
    export_bundle(make_model(input_size=37, hidden=20, layers=2, output=3, seed=3), out, ExportConfig(name="lstm"))
    return out


def _build(folder: Path, main_c: str, exe: Path, *defines: str) -> str:
    """The program main_c with NAME.c under FLAGS (+ -D each of defines), run: its stdout."""
    cmd = [compiler(), *FLAGS, *(f"-D{d}" for d in defines), "-o", str(exe), str(folder / main_c), str(folder / "m.c")]
    subprocess.run([*cmd, "-lm"], check=True, capture_output=True, text=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_avx2_paths_give_the_portable_bits(family, tmp_path):
    bundle = (_lstm if family == "lstm" else _gru)(tmp_path)
    cfg = CodegenConfig(precision="int8", prefix="m", progress=False)
    g = generate(bundle, tmp_path / "gen", cfg)
    macros = subprocess.run(
        [compiler(), *FLAGS, "-E", "-dM", str(g.out / "m.c")], check=True, capture_output=True, text=True
    ).stdout
    assert "#define LSTM_EDGE_AVX2 1" in macros, "the AVX2 paths are not compiled with -march=native here"
    prep = prepare(bundle, cfg)
    cases = [{"c0": np.zeros_like(c["h0"])} | c for c in prep["cases"]]  # a GRU's set_state ignores c
    (g.out / "dump.c").write_text(m4.dump_source("m", prep["dims"], cases))
    avx2 = _build(g.out, "dump.c", tmp_path / "avx2")
    portable = _build(g.out, "dump.c", tmp_path / "portable", "LSTM_EDGE_NO_AVX2")
    assert avx2.count("\n") == sum(2 * c["x"].shape[0] for c in prep["cases"])  # run and step per batch row
    assert avx2 == portable
    for defines in ((), ("LSTM_EDGE_NO_AVX2",)):
        out = _build(g.out, "m_check.c", tmp_path / "check", *defines)
        assert "max scaled error 0.000e+00" in out and "PASS" in out, out

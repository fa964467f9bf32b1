"""quantize's int8 C profile (export/quant_c.py): measured with the compiled C where a compiler is found, with its
bit-exact simulation where none is, and the same to the last bit either way."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.export.quant_c import SIMULATED, CInt8Session, _scheme, compiled_int8_session
from tests.conftest import make_model

needs_cc = pytest.mark.skipif(not any(shutil.which(c) for c in ("cc", "gcc", "clang")), reason="no C compiler")


def _quantize(src: Path, dst: Path) -> dict:
    """quantize --mode dynamic on a copy of `src` at `dst`; the int8 variant's report."""
    shutil.copytree(src, dst)
    r = CliRunner().invoke(main, ["quantize", str(dst), "--mode", "dynamic"])
    assert r.exit_code == 0, r.output
    return json.loads((dst / "manifest.json").read_text())["artifacts"]["int8"]["report"]


@needs_cc
def test_quantize_measures_the_compiled_c_and_without_a_compiler_the_simulation_to_the_same_bit(
    small_bundle, tmp_path, monkeypatch
):
    """Issue 25 item 5: the simulation doubled quantize at the seed size (11.2 s of 26.9 s), so quantize runs the
    compiled C where it can. The profile it records must not depend on which measured it: the compiled C and the
    simulation agree bit for bit, so the two profiles are equal, not close. Without a compiler ($CC missing and
    nothing on PATH) quantize still records the profile, from the simulation, and says so."""
    compiled = _quantize(small_bundle, tmp_path / "compiled")
    assert compiled["c_measured_with"].startswith("compiled C (") and "-O3" in compiled["c_measured_with"]
    assert "measured with the compiled C" in (tmp_path / "compiled" / "quantization.md").read_text()

    nowhere = tmp_path / "empty-bin"
    nowhere.mkdir()
    monkeypatch.setenv("CC", str(nowhere / "no-such-cc"))
    monkeypatch.setenv("PATH", str(nowhere))
    simulated = _quantize(small_bundle, tmp_path / "simulated")
    assert simulated["c_measured_with"].startswith(SIMULATED), simulated["c_measured_with"]
    assert "no C compiler found" in simulated["c_measured_with"]
    assert "measured with the simulation" in (tmp_path / "simulated" / "quantization.md").read_text()

    assert set(compiled["c_error_profile"]) == {"1", "10", "100", "1000"}
    assert compiled["c_error_profile"] == simulated["c_error_profile"]  # exact: floats from the same bits


@needs_cc
@pytest.mark.parametrize("head", ["last", "sequence"])
def test_the_compiled_int8_c_session_equals_the_simulation_bit_for_bit(small_bundle, tmp_path, head):
    """Every output of CompiledInt8Session equals CInt8Session's, bit for bit, from zero and random states, with
    inputs past the int8 input range (clipped alike), T = 1 (the probes' shortest) and 19 rows (split over threads
    of ROWS_PER_THREAD rows or more where there are CPUs: unevenly). A GRU and token ids: tests/test_codegen_gru.py."""
    path = small_bundle  # head "last"
    if head == "sequence":
        path = export_bundle(make_model(head=head), tmp_path / "m", ExportConfig(name="m")).bundle
    b = Bundle.open(path)
    params, weights = _scheme(b, None)
    sim = CInt8Session(params, weights.embedding, b.config)
    c = b.config
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        compiled, how = compiled_int8_session(b, params, weights, Path(tmp))
    assert how.startswith("compiled C (")
    names = list(c.output_names)
    for B, T, random_state in ((1, 1, False), (5, 1, True), (4, 37, True), (3, 200, False), (19, 30, True)):
        x = (rng.normal(size=(B, T, c.input_size)) * 8).astype(np.float32)  # far past ±6 std: some clip
        s = 0.9 if random_state else 0.0
        feeds = {"x": x} | {n: (rng.uniform(-s, s, size=(c.num_layers, B, c.hidden_size))).astype(np.float32)
                            for n in c.state_shapes}  # fmt: skip
        got, want = compiled.run(names, feeds), sim.run(names, feeds)
        for name, a, w in zip(names, got, want, strict=True):
            assert a.shape == w.shape and a.dtype == w.dtype and np.array_equal(a, w), (name, B, T)

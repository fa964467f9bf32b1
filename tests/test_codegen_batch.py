"""NAME_run_batch (issue 25 item 1): the C's batched full-sequence path — the input projection for the chunk's B·T
rows as one matrix product, the recurrent step for all B rows together — gives the bits the per-row NAME_run gives,
in fp32 and in the int8 scheme, at every batch and length, with and without an initial state, for the shipped adding
model (hidden 64: full panels) and small random models (hidden 12: a narrow panel; head "sequence"); fp32 stays
within FP32_ABS of float64, int8 equals its simulation (lstm_edge.c_int8_sim) bit for bit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.codegen import CodegenConfig, generate, prepare, simulate_int8
from lstm_edge.errors import ParityError
from lstm_edge.tolerances import FP32_ABS, scaled_error
from tests.conftest import make_model

SHAPES = [(B, T) for B in (1, 3, 64) for T in (1, 17, 100)]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, shipped_bundle) -> dict[str, Path]:
    """The shipped adding model, a random 2-layer model (5 → 12 × 2, head last) and a 1-layer head-sequence one."""
    from lstm_edge.export import ExportConfig, export_bundle

    root = tmp_path_factory.mktemp("batch-bundles")
    out = {"adding": shipped_bundle}
    for name, model in (
        ("rand2", make_model(input_size=5, hidden=12, layers=2, output=2, seed=7)),
        ("seq1", make_model(input_size=3, hidden=8, layers=1, output=2, head="sequence", seed=2)),
    ):
        export_bundle(model, root / name, ExportConfig(name=name))
        out[name] = root / name
    return out


def _inputs(cfg, B: int, T: int, with_state: bool, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.5, (B, T, cfg.input_size)).astype(np.float32)
    if not with_state:
        return x, None
    h0 = rng.uniform(-0.9, 0.9, (cfg.num_layers, B, cfg.hidden_size)).astype(np.float32)
    c0 = rng.normal(0, 2, (cfg.num_layers, B, cfg.hidden_size)).astype(np.float32)
    return x, (h0, c0)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
@pytest.mark.parametrize("model", ["adding", "rand2", "seq1"])
def test_batched_run_equals_the_per_row_run_bit_for_bit(bundles, model, variant):
    cfg = Bundle.open(bundles[model]).config
    r = lstm_edge.load(bundles[model], provider="c", variant=variant)
    assert r.batched, "the library has NAME_run_batch and run() takes it"
    for n, (B, T) in enumerate(SHAPES):
        for with_state in (False, True):
            x, state = _inputs(cfg, B, T, with_state, seed=n)
            r.batched = True
            y1, (h1, c1) = r.run(x, state)
            r.batched = False
            y2, (h2, c2) = r.run(x, state)
            for got, want in ((y1, y2), (h1, h2), (c1, c2)):
                assert got.shape == want.shape and np.array_equal(got, want), (model, variant, B, T, with_state)
    r.batched = True


@pytest.mark.parametrize("model", ["adding", "rand2", "seq1"])
def test_batched_run_is_within_fp32_bounds_of_float64(bundles, model):
    ref = lstm_edge.load(bundles[model], provider="torch", float64=True)
    r = lstm_edge.load(bundles[model], provider="c")
    cfg = Bundle.open(bundles[model]).config
    for B, T in ((3, 17), (64, 100)):
        x, state = _inputs(cfg, B, T, True, seed=B + T)
        want = ref.run(x, state)
        y, (h, c) = r.run(x, state)
        for got, w in zip((y, h, c), (want[0], *want[1]), strict=True):
            assert scaled_error(got, w).max() <= FP32_ABS


def test_a_wrong_batched_path_is_caught(bundles, tmp_path, monkeypatch):
    """The comparison can fail: a library whose batched recurrent step skips the last batch row's W_h product gives
    other bits than its per-row run (and the runner's self-check on the golden cases refuses to open it)."""
    import lstm_edge.codegen as codegen  # build_library imports render from here when it builds

    monkeypatch.setenv("LSTM_EDGE_CACHE", str(tmp_path))  # a cache of its own for the tampered build

    original = codegen.render

    def tampered(prep, precision, *a, **k):
        files = original(prep, precision, *a, **k)
        name = f"{prep['prefix']}.c"
        files[name] = files[name].replace("gates_gemm(z, h, B, wh,", "gates_gemm(z, h, B - 1, wh,")
        return files

    monkeypatch.setattr(codegen, "render", tampered)
    with pytest.raises(ParityError):
        lstm_edge.load(bundles["rand2"], provider="c")
    r = lstm_edge.load(bundles["rand2"], provider="c", self_check=False)
    x, state = _inputs(Bundle.open(bundles["rand2"]).config, 3, 17, True, seed=1)
    y1 = r.run(x, state)[0]
    r.batched = False
    assert not np.array_equal(y1, r.run(x, state)[0])


@pytest.mark.parametrize("model", ["rand2", "seq1"])
def test_batched_int8_equals_its_simulation_bit_for_bit(bundles, model):
    params = prepare(bundles[model], CodegenConfig(precision="int8"))["params"]
    cfg = Bundle.open(bundles[model]).config
    x, (h0, c0) = _inputs(cfg, 64, 17, True, seed=3)
    y, (h, c) = lstm_edge.load(bundles[model], provider="c", variant="int8").run(x, (h0, c0))
    for got, want in zip((y, h, c), simulate_int8(params, x, h0, c0), strict=True):
        assert np.array_equal(got, want)


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_batched_library_compiles_for_a_cortex_m4_without_writable_data(bundles, tmp_path, precision):
    r = generate(bundles["rand2"], tmp_path / "g", CodegenConfig(precision=precision, progress=False))
    src = r.out / f"{r.prefix}.c"
    assert f"void {r.prefix}_run_batch(" in src.read_text()
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-O2"]
    flags += ["-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
    obj = tmp_path / "m4.o"
    subprocess.run(["arm-none-eabi-gcc", *flags, "-c", "-o", str(obj), str(src)], check=True)
    size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    data, bss = (int(v) for v in size.splitlines()[1].split()[1:3])
    assert data == bss == 0, size

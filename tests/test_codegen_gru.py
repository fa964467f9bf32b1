"""codegen for a GRU and for token ids (issue 26 item 5), on models built the way users save them: a pickled module
exported through the CLI (`export model.pt --trust-pickle --code models.py`). The C's check program passes on the
host and on an emulated Cortex-M4F in fp32 and int8 (the int8 bit for bit with its simulation), an id outside the
table is refused by the C itself, the GRU weight mapping matches torch.nn.GRU in float64, `verify --providers c`
passes, and a bidirectional GRU is still refused in one line."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import lstm_edge
from lstm_edge.cli import main
from lstm_edge.tolerances import FP32_ABS, scaled_error

MODELS_PY = '''
import torch
from torch import nn


class Kws(nn.Module):
    """Keyword spotting: MFCC frames [B, T, 6] → GRU x2 (hidden 5: 3H odd) → Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 5, 2, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class TokLstm(nn.Module):
    """Token ids [B, T] → Embedding(20, 4) → LSTM(4, 6) → Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.fc(out[:, -1])


class TokGru(nn.Module):
    """Token ids [B, T] → Embedding(20, 4) → GRU(4, 6) → Linear at every step (a char-LM)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.gru = nn.GRU(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 20)

    def forward(self, ids):
        out, _ = self.gru(self.emb(ids))
        return self.fc(out)
'''
MODELS = ("Kws", "TokLstm", "TokGru")
V = 20


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> dict:
    """{name: (bundle path, the user's module)}: each model pickled whole and exported through the CLI."""
    root = tmp_path_factory.mktemp("cgru")
    (root / "models.py").write_text(MODELS_PY)
    sys.path.insert(0, str(root))
    try:
        import models  # the user's file, as `python train.py` would import it

        out = {}
        for i, name in enumerate(MODELS):
            torch.manual_seed(i)
            model = getattr(models, name)().eval()
            torch.save(model, root / f"{name}.pt")
            bundle = root / f"b_{name}"
            args = [str(root / f"{name}.pt"), "--trust-pickle", "--code", str(root / "models.py"), "--out", str(bundle)]
            res = CliRunner().invoke(main, ["export", *args])
            assert res.exit_code == 0, res.output
            out[name] = (bundle, model)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("models", None)
    return out


def _codegen(bundle: Path, out: Path, precision: str) -> None:
    res = CliRunner().invoke(main, ["codegen", str(bundle), "--out", str(out), "--precision", precision])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("name", MODELS)
def test_cli_codegen_and_its_check_pass_on_the_host(user, name, precision, tmp_path):
    _codegen(user[name][0], tmp_path / "c", precision)
    done = subprocess.run(["make", "-C", str(tmp_path / "c"), "host"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "batched" in done.stdout and "step by step" in done.stdout
    if precision == "int8":  # bit for bit with lstm_edge/codegen/int8_forms.py's (or c_int8_sim's) simulation
        assert "max scaled error 0.000e+00 (tolerance 0.0e+00) PASS" in done.stdout, done.stdout
    assert ("out-of-range ids refused" in done.stdout) == name.startswith("Tok"), done.stdout


def _arm_tools() -> str | None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make") if not shutil.which(t)]
    return f"{', '.join(missing)} not found" if missing else None


@pytest.mark.skipif(_arm_tools() is not None, reason=str(_arm_tools()))
@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("name", ["Kws", "TokGru"])
def test_check_passes_on_an_emulated_cortex_m4(user, name, precision, tmp_path):
    _codegen(user[name][0], tmp_path / "c", precision)
    done = subprocess.run(["make", "-C", str(tmp_path / "c"), "qemu"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "PASS" in done.stdout, done.stdout + done.stderr


def test_gru_c_matches_torch_nn_gru_in_float64(user):
    """The weight mapping (ONNX z, r, h → r, z, n; b_hn inside the reset product) judged against the user's own
    module in float64, not against our ONNX: fp32 C within FP32_ABS, a state carried in."""
    bundle, model = user["Kws"]
    rng = np.random.default_rng(0)
    x, h0 = rng.normal(size=(3, 40, 6)).astype(np.float32), rng.normal(size=(2, 3, 5)).astype(np.float32) * 0.5
    with torch.no_grad():
        m64 = model.double()
        out, want_h = m64.gru(torch.from_numpy(x).double(), torch.from_numpy(h0).double())
        want_y = m64.fc(out[:, -1]).numpy()
        model.float()
    y, (h,) = lstm_edge.load(bundle, provider="c").run(x, (h0,))
    assert scaled_error(y, want_y).max() <= FP32_ABS and scaled_error(h, want_h.numpy()).max() <= FP32_ABS


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_the_c_itself_refuses_an_id_outside_the_table(user, variant):
    """Not only check_feeds: NAME_step / NAME_run_batch return -1 for ids -1 and V, the state untouched."""
    runner = lstm_edge.load(user["TokLstm"][0], provider="c", variant=variant)
    lib, state, y = runner.lib, runner.State(), np.zeros(2, np.float32)
    lib.lem_reset(ctypes.addressof(state))
    assert lib.lem_step(ctypes.addressof(state), 3, y.ctypes.data) == 0
    before = bytes(state)
    for bad in (-1, V, 2**31 - 1):
        assert lib.lem_step(ctypes.addressof(state), bad, y.ctypes.data) == -1
    ids = np.array([[1, 2, V]], np.int32)
    scratch = np.empty(lib.lem_run_batch_scratch(1), np.uint8)
    assert lib.lem_run_batch(ctypes.addressof(state), 1, ids.ctypes.data, 3, y.ctypes.data, scratch.ctypes.data) == -1
    assert bytes(state) == before
    with pytest.raises(lstm_edge.LstmEdgeError, match="token id 20"):  # and the runner says it in words first
        runner.run(np.array([[1, V]], np.int64))


@pytest.mark.parametrize("name", MODELS)
def test_verify_providers_c_passes(user, name):
    res = CliRunner().invoke(main, ["verify", str(user[name][0]), "--providers", "c", "--quick"])
    assert res.exit_code == 0 and "PASSED" in res.output, res.output


def test_c_streams_a_gru_and_token_ids_as_the_whole_run(user):
    for name, x in (("Kws", np.random.default_rng(1).normal(size=(2, 9, 6))), ("TokGru", np.arange(18).reshape(2, 9))):
        runner = lstm_edge.load(user[name][0], provider="c")
        whole = runner.run(x)[0]
        s = runner.stream(batch=2)
        streamed = s.feed(x, chunk=4)
        assert scaled_error(streamed, whole).max() <= FP32_ABS


def test_a_bidirectional_gru_is_still_refused_in_one_line(tmp_path):
    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    cfg = ModelConfig(input_size=3, hidden_size=4, num_layers=1, output_size=2, family="gru", bidirectional=True)
    bundle = export_bundle(LSTMModel(cfg).eval(), tmp_path / "bi", ExportConfig(name="bi")).bundle
    res = CliRunner().invoke(main, ["codegen", str(bundle), "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "bidirectional" in res.output, res.output
    assert "GRU, not an LSTM" not in res.output and not (tmp_path / "c").exists()


def test_the_lstm_case_matrix_refuses_a_gru_in_one_line(user):
    from lstm_edge.codegen.matrix import check_matrix

    with pytest.raises(lstm_edge.LstmEdgeError, match="GRU or takes token ids") as e:
        check_matrix(user["Kws"][0], "fp32", targets=("host",))
    assert "\n" not in str(e.value) and "make -C C host qemu" in e.value.fix


def test_int8_task_metric_runs_the_gru_simulation(tmp_path):
    """A GRU on a built-in task gets its int8 C judged on held-out data, as an LSTM does (codegen prints it)."""
    from lstm_edge.codegen import CodegenConfig, int8_task_metric, prepare
    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(input_size=2, hidden_size=8, num_layers=1, output_size=1, family="gru", task="adding")
    bundle = export_bundle(LSTMModel(cfg).eval(), tmp_path / "ga", ExportConfig(name="ga")).bundle
    m = int8_task_metric(prepare(bundle, CodegenConfig(precision="int8")), samples=64)
    assert m is not None and m["name"] == "mse" and m["samples"] == 64 and m["int8"] != m["fp32"], m


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not found")
def test_clang_compiles_every_form_warning_free_and_the_checks_pass(user, tmp_path):
    for name in MODELS:
        for precision in ("fp32", "int8"):
            out = tmp_path / f"{name}_{precision}"
            _codegen(user[name][0], out, precision)
            flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
            sources = [str(out / f"{name}.c"), str(out / f"{name}_check.c")]
            built = subprocess.run(
                ["clang", *flags, "-o", str(out / "check"), *sources], capture_output=True, text=True
            )
            assert built.returncode == 0, built.stderr
            done = subprocess.run([str(out / "check")], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and "PASS" in done.stdout, done.stdout


@pytest.fixture(scope="module")
def quantized(user, tmp_path_factory) -> dict[str, Path]:
    """{name: a quantized copy of the user's bundle} for the GRU and the token LSTM (`quantize`, no task data)."""
    out = {}
    for name in ("Kws", "TokLstm"):
        bundle = tmp_path_factory.mktemp("q") / name
        shutil.copytree(user[name][0], bundle)
        res = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", "dynamic"])
        assert res.exit_code == 0, res.output
        out[name] = bundle
    return out


def _int8_report(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())["artifacts"]["int8"]["report"]


def _input(name: str, path: Path) -> Path:
    """A .npy input for `run`: float frames [2, 30, 6] for the GRU, token ids [2, 30] for a token model."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, V, (2, 30)) if name.startswith("Tok") else rng.normal(size=(2, 30, 6)).astype(np.float32)
    np.save(path, x)
    return path


@pytest.mark.parametrize("name", ["Kws", "TokLstm"])
def test_quantize_records_the_int8_c_bound_and_the_c_runtime_is_held_to_it(quantized, name, tmp_path):
    """Issue 26: the c runtime serves `int8` with its own scheme, not ORT's graph. ORT has no int8 GRU, so ORT's
    int8 of a GRU quantizes the head alone and records a float-noise bound (1.3e-7 on hn), which the int8 C (~3e-3)
    missed: `run --provider c --variant int8` refused at its self-check and verify showed 0/48. quantize now records
    the C's own profile beside ORT's, and the c runtime's self-check and verify hold its int8 to it."""
    bundle = quantized[name]
    report = _int8_report(bundle)
    c, ort = report["c_error_profile"], report["error_profile"]
    assert set(c) == set(ort) == {"1", "10", "100", "1000"} and all(set(c[T]) == set(ort[T]) for T in c)
    assert all(0 < e < 0.1 for errs in c.values() for e in errs.values()), c
    if name == "Kws":  # ORT's int8 left the GRU in float: its bound says nothing of the int8 C's recurrence
        assert c["100"]["hn"] > 100 * ort["100"]["hn"], (c, ort)
    assert "the int8 C (codegen's scheme" in (bundle / "quantization.md").read_text()
    x = _input(name, tmp_path / "x.npy")
    res = CliRunner().invoke(main, ["run", str(bundle), "--provider", "c", "--variant", "int8", "--input", str(x)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["verify", str(bundle), "--quick", "--providers", "c", "--variants", "int8"])
    assert res.exit_code == 0 and "PASSED" in res.output, res.output
    assert re.search(r"^c\s+int8\s+unverified\s+48/48\s", res.output, re.M), res.output


def test_a_bundle_quantized_before_the_c_bound_keeps_orts_and_says_to_requantize(quantized, tmp_path):
    """A manifest without c_error_profile (quantized by an older lstm-edge) keeps today's bound for the c runtime,
    ORT's: the GRU's int8 C misses it, the self-check refuses naming the fix, and verify fails (an unverified variant
    outside its own bound is a failed verify)."""
    bundle = tmp_path / "old"
    shutil.copytree(quantized["Kws"], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["artifacts"]["int8"]["report"]["c_error_profile"]
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    x = _input("Kws", tmp_path / "x.npy")
    res = CliRunner().invoke(main, ["run", str(bundle), "--provider", "c", "--variant", "int8", "--input", str(x)])
    assert res.exit_code == 1 and "self-check failed" in res.output, res.output
    assert "re-run `lstm-edge quantize BUNDLE` to record it" in res.output, res.output
    res = CliRunner().invoke(main, ["verify", str(bundle), "--quick", "--providers", "c", "--variants", "int8"])
    assert res.exit_code == 1 and "FAILED" in res.output, res.output
    assert re.search(r"^c\s+int8\s+fail\s", res.output, re.M), res.output


@pytest.mark.parametrize("name", ["Kws", "TokLstm"])
def test_the_int8_c_one_step_per_call_equals_its_whole_sequence_bit_for_bit(user, shipped_bundle, name):
    """Why quantize leaves the streamed probe out of the C's profile (export/quant_c.py): h leaves a call as
    h_q / 32767 and re-enters as the same int16, c as the same float32, so stepping changes no bit."""
    from lstm_edge.bundle import Bundle
    from lstm_edge.export.quant_c import c_int8_session

    for path in (user[name][0], shipped_bundle):
        b = Bundle.open(path)
        c, session = b.config, c_int8_session(b, None)
        rng = np.random.default_rng(0)
        x = rng.integers(0, V, (3, 40)) if c.vocab_size else rng.normal(size=(3, 40, c.input_size)).astype(np.float32)
        L, H = c.num_layers, c.hidden_size
        feeds = {"x": x} | {s: (rng.normal(size=(L, 3, H)) * 0.5).astype(np.float32) for s in c.state_shapes}
        names = list(c.output_names)
        whole = session.run(names, feeds)
        for t in range(40):
            out = session.run(names, feeds | {"x": x[:, t : t + 1]})
            feeds |= dict(zip(c.state_shapes, out[1:], strict=True))
        assert all(np.array_equal(a, b_) for a, b_ in zip(whole[1:], out[1:], strict=True)), path
        assert np.array_equal(whole[0], out[0]), path  # both heads read the last step


@pytest.mark.skipif(not any(shutil.which(c) for c in ("cc", "gcc", "clang")), reason="no C compiler")
@pytest.mark.parametrize("name", MODELS)
def test_quantizes_compiled_int8_c_equals_its_simulation_bit_for_bit(user, name, tmp_path):
    """quantize measures the int8 C's profile with the compiled C where it can (export/quant_c.py): on a GRU and on
    token ids (LSTM and GRU) too, its outputs equal the simulation's to the last bit, from a random state."""
    from lstm_edge.bundle import Bundle
    from lstm_edge.export.quant_c import CInt8Session, _scheme, compiled_int8_session

    b = Bundle.open(user[name][0])
    c = b.config
    params, weights = _scheme(b, None)
    session, _ = compiled_int8_session(b, params, weights, tmp_path)
    simulated = CInt8Session(params, weights.embedding, c)
    rng = np.random.default_rng(1)
    x = rng.integers(0, V, (3, 25)) if c.vocab_size else (rng.normal(size=(3, 25, c.input_size)) * 4).astype(np.float32)
    feeds = {"x": x} | {s: rng.uniform(-0.9, 0.9, (c.num_layers, 3, c.hidden_size)).astype(np.float32)
                        for s in c.state_shapes}  # fmt: skip
    names = list(c.output_names)
    for a, w in zip(session.run(names, feeds), simulated.run(names, feeds), strict=True):
        assert a.shape == w.shape and np.array_equal(a, w), name

"""codegen: the C builds warning-free under gcc and clang, its check program passes on the host and on an emulated
Cortex-M4F (qemu), a wrong expectation makes it fail, the int8 C equals its Python simulation bit for bit (through
the `c` runner), the runner refuses a library built for another bundle, and models the C cannot express are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.cli import main
from lstm_edge.codegen import CodegenConfig, generate, prepare, simulate_int8
from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes import RunnerOptions, open_runner
from lstm_edge.tolerances import FP32_ABS, scaled_error
from tests.conftest import make_model

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
PRECISIONS = ["fp32", "int8"]


@pytest.fixture(scope="module")
def seq_bundle(tmp_path_factory) -> Path:
    """Head 'sequence', classification (no de-normalization), one layer: the other branches of the generator."""
    from lstm_edge.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("bundles") / "seqcls"
    export_bundle(
        make_model(input_size=5, hidden=12, layers=1, output=3, head="sequence", kind="classification", seed=3),
        out,
        ExportConfig(name="seqcls"),
    )
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory, shipped_bundle, seq_bundle) -> dict:
    """(bundle, precision) → (folder, prefix), generated once per module."""
    root = tmp_path_factory.mktemp("codegen")
    out = {}
    for name, bundle in (("adding", shipped_bundle), ("seqcls", seq_bundle)):
        for precision in PRECISIONS:
            r = generate(bundle, root / f"{name}-{precision}", CodegenConfig(precision=precision))
            out[(name, precision)] = (r.out, r.prefix)
    return out


def _build_and_check(folder: Path, prefix: str, cc: str, exe: Path) -> subprocess.CompletedProcess:
    subprocess.run(
        [cc, *STRICT, "-o", str(exe), str(folder / f"{prefix}.c"), str(folder / f"{prefix}_check.c")],
        check=True,
        capture_output=True,
        text=True,
    )
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("model", ["adding", "seqcls"])
def test_check_program_passes_on_the_host(generated, model, precision, cc, tmp_path):
    if not shutil.which(cc):
        pytest.skip(f"{cc} is not installed")
    folder, prefix = generated[(model, precision)]
    done = _build_and_check(folder, prefix, cc, tmp_path / "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    if precision == "int8":  # the C and its simulation agree to the last bit
        assert "max scaled error 0.000e+00" in done.stdout


def test_header_api_and_no_library_at_all(generated, tmp_path):
    folder, p = generated[("adding", "int8")]
    h = (folder / f"{p}.h").read_text()
    for decl in (f"void {p}_reset({p}_state *s);", f"void {p}_step({p}_state *s,", f"void {p}_run({p}_state *s,"):
        assert decl in h
    from lstm_edge.codegen.weights import bundle_sha256
    from tests.conftest import SHIPPED

    assert bundle_sha256(Bundle.open(SHIPPED)) in h
    src8 = (folder / f"{p}.c").read_text()
    src32 = (generated[("adding", "fp32")][0] / f"{p}.c").read_text()
    includes = lambda s: sorted(ln for ln in s.splitlines() if ln.startswith("#include"))  # noqa: E731
    # no library at all: int8 has a tanh table, fp32 its own exp; <stdint.h> only declares types. int8's SMLAD path,
    # compiled only for Arm's DSP extension, takes the compiler's intrinsics and memcpy (one load) besides; its AVX2
    # paths, compiled only for x86 with AVX2, the compiler's intrinsics.
    blocks = []
    for opening in ("#if defined(__ARM_FEATURE_DSP)", "#if defined(__AVX2__)"):
        start = src8.index(opening)
        end = src8.index("#endif", start) + len("#endif")
        blocks.append(src8[start:end])
        src8 = src8[:start] + src8[end:]
    portable8 = src8
    assert [includes(b) for b in blocks] == [
        ["#include <arm_acle.h>", "#include <string.h>"],
        ["#include <immintrin.h>"],
    ]
    assert includes(portable8) == includes(src32) == [f'#include "{p}.h"'] and "<stdint.h>" in h
    for precision in PRECISIONS:
        folder, p = generated[("adding", precision)]
        assert "malloc" not in (folder / f"{p}.c").read_text()
        obj = tmp_path / f"{precision}.o"
        subprocess.run(["gcc", *STRICT, "-c", "-o", str(obj), str(folder / f"{p}.c")], check=True)
        symbols = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout.split("\n")
        writable = [ln for ln in symbols if ln.split()[-2:-1] and ln.split()[-2] in "dDbB"]
        assert not writable, writable  # no .data or .bss: no globals that change


def test_makefile_host_target(generated, tmp_path):
    folder, prefix = generated[("seqcls", "fp32")]
    work = shutil.copytree(folder, tmp_path / "m")
    done = subprocess.run(["make", "-C", str(work), "host"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout


def test_check_program_fails_on_a_wrong_expectation(generated, tmp_path):
    folder, p = generated[("adding", "fp32")]
    work = shutil.copytree(folder, tmp_path / "bad")
    check = work / f"{p}_check.c"
    text = check.read_text()
    marker = "static const float C3_Y[1] = {\n    "
    assert marker in text
    check.write_text(text.replace(marker, marker + "0.01f + "))
    done = _build_and_check(work, p, "gcc", tmp_path / "bad_check")
    assert done.returncode == 1 and "FAIL" in done.stdout


def _arm_tools() -> str | None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    return f"{', '.join(missing)} not installed (scripts/codegen-deps.sh installs them as root)" if missing else None


@pytest.mark.skipif(_arm_tools() is not None, reason=str(_arm_tools()))
@pytest.mark.parametrize("precision", PRECISIONS)
def test_check_program_passes_on_an_emulated_cortex_m4(generated, precision, tmp_path):
    folder, p = generated[("adding", precision)]
    work = shutil.copytree(folder, tmp_path / "m4")
    build = subprocess.run(["make", "-C", str(work), "cortex-m4"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    elf = work / f"{p}_check.elf"
    qemu = [
        "qemu-system-arm",
        "-M",
        "mps2-an386",
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        str(elf),
    ]
    done = subprocess.run(qemu, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    if precision == "int8":
        assert "max scaled error 0.000e+00" in done.stdout


# ---- the `c` runner ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["adding", "seqcls"])
def test_int8_c_equals_its_simulation_bit_for_bit(model, shipped_bundle, seq_bundle):
    bundle = shipped_bundle if model == "adding" else seq_bundle
    cfg = Bundle.open(bundle).config
    rng = np.random.default_rng(5)
    B, T = 3, 300
    x = (rng.random((B, T, cfg.input_size)) * 1.2 - 0.1).astype(np.float32)  # a little beyond the range too
    h0 = rng.uniform(-0.9, 0.9, (cfg.num_layers, B, cfg.hidden_size)).astype(np.float32)
    c0 = rng.normal(0, 2, (cfg.num_layers, B, cfg.hidden_size)).astype(np.float32)
    params = prepare(bundle, CodegenConfig(precision="int8"))["params"]
    want = simulate_int8(params, x, h0, c0)
    runner = lstm_edge.load(bundle, provider="c", variant="int8")
    y, (h, c) = runner.run(x, (h0, c0))
    for got, ref in zip((y, h, c), want, strict=True):
        assert np.array_equal(got, ref)
    s = runner.stream(batch=B)
    s.state = (h0, c0)
    ys = [s.step(x[:, t]) for t in range(T)]
    assert np.array_equal(ys[-1] if cfg.head == "last" else np.concatenate(ys, axis=1), want[0])


def test_c_runner_parity_and_streaming(seq_bundle):
    """head 'sequence': full run and chunked streaming against the float64 reference (the matrix covers adding)."""
    ref = lstm_edge.load(seq_bundle, provider="torch", float64=True)
    r = lstm_edge.load(seq_bundle, provider="c")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 200, 5)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (1, 4, 12)).astype(np.float32)
    want = ref.run(x, (h0, h0))
    y, (h, c) = r.run(x, (h0, h0))
    for got, w in zip((y, h, c), (want[0], *want[1]), strict=True):
        assert scaled_error(got, w).max() <= FP32_ABS
    s = r.stream(batch=4)
    s.state = (h0, h0)
    ys = np.concatenate([s.step(x[:, t : t + 7]) for t in range(0, 200, 7)], axis=1)
    assert scaled_error(ys, want[0]).max() <= FP32_ABS
    snap = s.freeze()
    a = s.step(x[:, 0])
    s.unfreeze(snap)
    assert np.array_equal(s.step(x[:, 0]), a)


def test_library_is_cached_and_one_built_for_another_bundle_is_refused(
    shipped_bundle, seq_bundle, tmp_path, monkeypatch
):
    from lstm_edge.runtimes.c_runner import library_path

    lstm_edge.load(seq_bundle, provider="c")
    again = lstm_edge.load(seq_bundle, provider="c")
    assert again.describe()["built_now"] is False
    # A cache of its own: a process keeps a loaded library by path, so the session's cache must not see this one.
    monkeypatch.setenv("LSTM_EDGE_CACHE", str(tmp_path))
    target = library_path(Bundle.open(shipped_bundle), "fp32")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(again.library, target)  # a library whose embedded sha256 is the other bundle's
    with pytest.raises(LstmEdgeError, match="was built for bundle sha256"):
        open_runner(shipped_bundle, "c", options=RunnerOptions(variant="fp32"))


def test_c_runner_refuses_what_it_cannot_build(shipped_bundle):
    with pytest.raises(LstmEdgeError, match="fp32 or int8"):
        lstm_edge.load(shipped_bundle, provider="c", variant="fp16")
    with pytest.raises(LstmEdgeError, match="needs a bundle"):
        lstm_edge.load(shipped_bundle / "model.onnx", provider="c")


def _edited(bundle: Path, tmp_path: Path, edit) -> Path:
    dst = shutil.copytree(bundle, tmp_path / "edited")
    m = onnx.load(dst / "model.onnx")
    edit(next(n for n in m.graph.node if n.op_type == "LSTM"))
    onnx.save(m, dst / "model.onnx")
    return dst


def test_bidirectional_and_variable_lengths_are_refused_in_one_line(small_bundle, tmp_path):
    def bidirectional(node):
        node.attribute.append(onnx.helper.make_attribute("direction", "bidirectional"))

    def lengths(node):
        node.input[4] = "seq_lens"

    for edit, words in ((bidirectional, "bidirectional"), (lengths, "lengths")):
        bad = _edited(small_bundle, tmp_path / words, edit)
        with pytest.raises(LstmEdgeError, match=words):
            generate(bad, tmp_path / f"out-{words}", CodegenConfig(verify_hash=False))
        res = CliRunner().invoke(main, ["codegen", str(bad), "--out", str(tmp_path / "cli"), "--no-verify-hash"])
        assert res.exit_code == 2 and res.output.count("\n") == 1 and words in res.output
        assert not (tmp_path / "cli").exists()


def test_codegen_force_never_deletes_files_it_did_not_write(shipped_bundle, tmp_path):
    """`codegen --force` replaced the whole folder, a user's main.c inside it included: it now refuses in one line
    naming the first file it did not write (exit 2, every file kept), also under an older tag without its file list;
    the help says so."""
    out = tmp_path / "g"
    args = ["codegen", str(shipped_bundle), "--out", str(out), "--force"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert set(json.loads((out / "lstm-edge-c.json").read_text())["files"]) == {
        p.name for p in out.iterdir() if p.name != "lstm-edge-c.json"
    }
    (out / "main.c").write_text("int main(void) { return 0; }\n")
    (out / "src").mkdir()
    (out / "src" / "app.c").write_text("/* mine */\n")
    for tag in ("as written", "older, without files"):
        if tag != "as written":
            info = json.loads((out / "lstm-edge-c.json").read_text())
            del info["files"]
            (out / "lstm-edge-c.json").write_text(json.dumps(info))
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and res.output.count("\n") == 1, (tag, res.output)
        assert "holds files codegen did not write (main.c and 2 more)" in res.output and "move them" in res.output
        assert (out / "main.c").is_file() and (out / "src" / "app.c").read_text() == "/* mine */\n"
    assert "files codegen did not write" in " ".join(CliRunner().invoke(main, ["codegen", "--help"]).output.split())


def test_cli_codegen_and_run_provider_c(shipped_bundle, tmp_path):
    res = CliRunner().invoke(main, ["codegen", str(shipped_bundle), "--out", str(tmp_path / "g"), "--prefix", "kws"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "g").iterdir()} == {
        "kws.h",
        "kws.c",
        "kws_check.c",
        "Makefile",
        "startup_m4.c",
        "mps2_an386.ld",
        "lstm-edge-c.json",  # the tag that makes the folder ours to replace with --force
    }
    res = CliRunner().invoke(main, ["codegen", str(shipped_bundle), "--out", str(tmp_path / "g")])
    assert res.exit_code == 2 and "--force" in res.output
    # --force replaces codegen's own folder (it once refused its own output) and never a user's
    res = CliRunner().invoke(main, ["codegen", str(shipped_bundle), "--out", str(tmp_path / "g"), "--force"])
    assert res.exit_code == 0 and (tmp_path / "g" / "adding.h").is_file() and not (tmp_path / "g" / "kws.h").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    res = CliRunner().invoke(main, ["codegen", str(shipped_bundle), "--out", str(tmp_path / "mine"), "--force"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "not a folder lstm-edge wrote" in res.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((2, 20, 2), dtype=np.float32))
    res = CliRunner().invoke(main, ["run", str(shipped_bundle), "--provider", "c", "--input", str(x), "--stream"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("c ")
    # verify on the c runtime alone: fp16 and int8-static, which it never builds, are unsupported, not a failure
    res = CliRunner().invoke(main, ["verify", str(shipped_bundle), "--quick", "--providers", "c"])
    assert res.exit_code == 0 and "PASSED" in res.stdout and "int8-static  unsupported" in res.stdout, res.output


def test_int8_aware_fine_tuning_can_target_the_c_scheme(small_bundle):
    """train --int8-scheme c: straight-through gradients reach every weight; without grad it is the exact C arithmetic."""
    import torch

    from lstm_edge.c_int8_sim import CInt16x8, forward, params_from_model
    from lstm_edge.train import _int8_scheme

    model = make_model()
    model.config.x_min, model.config.x_max = [-3.0] * 3, [3.0] * 3
    x = torch.randn(4, 20, 3)
    y, _ = CInt16x8().forward(model, x)
    y.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.no_grad():
        exact = forward(params_from_model(model), x)[0]
        assert torch.equal(CInt16x8().forward(model, x)[0], exact)
    assert isinstance(_int8_scheme("c"), CInt16x8)
    with pytest.raises(LstmEdgeError, match="int8-scheme"):
        _int8_scheme("tflite")
    res = CliRunner().invoke(main, ["train", "--int8-scheme", "x", "--out", "m.pt"])
    assert res.exit_code == 2 and "--int8-scheme" in res.output


def test_int8_c_is_judged_on_held_out_data_and_the_shipped_model_passes(shipped_bundle, small_bundle):
    """codegen --precision int8 states the int8 C's task metric against fp32 (quantize's budget, its held-out
    split): the shipped adding model was fine-tuned for this scheme (train --from --int8-scheme c), so it must be
    deployable; a bundle without task data gets no verdict rather than a made-up one."""
    from lstm_edge.codegen import int8_task_metric, prepare
    from lstm_edge.tolerances import MSE_RELATIVE_DROP

    m = int8_task_metric(prepare(shipped_bundle, CodegenConfig(precision="int8")), samples=128)
    assert m["name"] == "mse" and m["samples"] == 128 and m["budget"] == MSE_RELATIVE_DROP
    assert m["drop"] == pytest.approx(m["int8"] / m["fp32"] - 1)
    assert m["deployable"] and m["drop"] <= MSE_RELATIVE_DROP, m
    assert int8_task_metric(prepare(small_bundle, CodegenConfig(precision="int8"))) is None  # task "custom"
    # verify takes the `c` int8 verdict from this judgement, not from quantize's verdict on ORT's int8
    from lstm_edge.bundle import Bundle
    from lstm_edge.codegen import c_int8_verdict

    assert c_int8_verdict(Bundle.open(small_bundle)) == "unverified"


def test_c_runner_with_a_cached_build_imports_neither_torch_nor_the_generator(shipped_bundle, tmp_path):
    """Issue 25 item 4: `run --provider c` with a library cached for this bundle × machine opens it without torch,
    onnx or lstm_edge.codegen (and so without compiling)."""
    from tests.test_runtimes import fresh_run

    assert lstm_edge.load(shipped_bundle, provider="c").describe()["library"]  # built (or found) in this session
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 20, 2), dtype=np.float32))
    assert fresh_run("run", shipped_bundle, "--input", tmp_path / "x.npy", "--provider", "c") == []

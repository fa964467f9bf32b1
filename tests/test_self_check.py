"""Self-check at load (issue 24 item 1): a runner answers only where it reproduced its bundle's golden cases.

The tampered bundle is the shipped one with two gate blocks of the first LSTM's W swapped in model.onnx and the
manifest re-signed: every hash still matches, so only running the model shows it is wrong.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

import lstm_edge
from lstm_edge.cli import main
from lstm_edge.errors import ParityError
from lstm_edge.runtimes.self_check import (
    CACHED,
    PASSED,
    SKIPPED,
    UNAVAILABLE,
    cache_key,
    entry_path,
    golden_cases,
    measure,
    refusal,
)
from lstm_edge.targets.common import TEMPLATES

# A tampered bundle fails the same way as a faulty runtime: the words say what disagrees and how to tell which
# (verify), never that the runtime "computes wrongly" (a new user's trial read that of a bundle they had altered).
REFUSAL = ("self-check failed", "onnxruntime", "answers for the fp32 variant", "disagree with its golden case",
           "max scaled error", "> bound", "lstm-edge verify", "corrupt bundle", "--no-self-check")  # fmt: skip


def _swap_gates(path) -> None:
    """Swap gate blocks 0 and 2 (i and f) of the first LSTM's W in the .onnx at `path`."""
    model = onnx.load(path)
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    init = next(i for i in model.graph.initializer if i.name == lstm.input[1])
    w = numpy_helper.to_array(init).copy()  # [D, 4H, F]
    H = w.shape[1] // 4
    w[:, 0:H], w[:, 2 * H : 3 * H] = w[:, 2 * H : 3 * H].copy(), w[:, 0:H].copy()
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, path)


def tamper(bundle, variant: str = "fp32") -> None:
    """_swap_gates on the variant's file, then the manifest re-signed (its sha256 and size), so every hash still
    matches."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    path = bundle / manifest["artifacts"][variant]["path"]
    _swap_gates(path)
    data = path.read_bytes()
    manifest["artifacts"][variant].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A fresh user cache for this test alone."""
    monkeypatch.setenv("LSTM_EDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "self-check"


@pytest.fixture()
def tampered(bundle_copy, cache):
    tamper(bundle_copy)
    return bundle_copy


@pytest.fixture()
def x_file(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (2, 20, 2)).astype(np.float32))
    return tmp_path / "x.npy"


def _refused(r) -> None:
    assert r.exit_code == 1, r.output
    line = r.stderr.strip().splitlines()[-1]
    assert all(w in line for w in REFUSAL), line
    assert "b1_t" in line or "b2_t" in line or "b3_t" in line  # names the golden case


@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_run_refuses_a_tampered_bundle(tampered, x_file, stream):
    r = CliRunner().invoke(main, ["run", str(tampered), "--input", str(x_file), *stream])
    _refused(r)
    assert r.stdout == ""  # nothing printed as a result


def test_a_not_deployable_fp16_runs_with_a_note_and_a_tampered_one_is_refused(bundle_copy, x_file, cache):
    """The shipped fp16 variant is over the fp16 bound (quantize measured 0.128 at T=1000 and marked it not
    deployable): it was refused as if corrupt (golden b1_t100_random streamed cn 2.49e-2 > 1e-2). It is held to its
    own measured worst instead, runs with a note naming the verdict — and two swapped gate blocks are still refused."""
    r = CliRunner().invoke(main, ["run", str(bundle_copy), "--variant", "fp16", "--stream", "--input", str(x_file)])
    assert r.exit_code == 0 and "note: quantize marked fp16 not-deployable" in r.stderr, r.output
    tamper(bundle_copy, "fp16")
    r = CliRunner().invoke(main, ["run", str(bundle_copy), "--variant", "fp16", "--input", str(x_file)])
    assert r.exit_code == 1 and "self-check failed" in r.stderr and "fp16 variant" in r.stderr, r.output


def test_run_without_self_check_answers_and_says_so(tampered, x_file):
    r = CliRunner().invoke(main, ["run", str(tampered), "--input", str(x_file), "--no-self-check"])
    assert r.exit_code == 0 and "y (2, 1)" in r.stdout, r.output
    assert "self-check skipped (--no-self-check)" in r.stderr
    r = CliRunner().invoke(main, ["run", str(tampered), "--input", str(x_file), "--no-self-check", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["runtime"]["self_check"] == SKIPPED


def test_run_records_the_check_in_json(bundle_copy, x_file, cache):
    r = CliRunner().invoke(main, ["run", str(bundle_copy), "--input", str(x_file), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["runtime"]["self_check"] == PASSED, r.output


def test_api_refuses_a_tampered_bundle(tampered):
    with pytest.raises(ParityError) as e:
        lstm_edge.load(tampered)
    assert all(w in str(e.value) for w in REFUSAL), e.value
    r = lstm_edge.load(tampered, self_check=False)
    assert r.describe()["self_check"] == SKIPPED
    y, _ = r.run(np.zeros((1, 5, 2), np.float32))
    assert y.shape == (1, 1)


def test_score_refuses_a_tampered_bundle(tampered, x_file, tmp_path):
    out = tmp_path / "pred.parquet"
    r = CliRunner().invoke(main, ["score", str(tampered), "--input", str(x_file), "--output", str(out)])
    _refused(r)
    assert not out.exists() and r.stdout == ""
    doc = tmp_path / "score.json"  # a file, not `--json -`: stdout-only JSON is quiet, so no warning line
    args = ["score", str(tampered), "--input", str(x_file), "--output", str(out), "--no-self-check", "--json", str(doc)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and out.is_file(), r.output
    assert json.loads(doc.read_text())["self_check"] == SKIPPED and "self-check skipped" in r.stderr


def test_bench_refuses_a_tampered_bundle(tampered, tmp_path):
    report = tmp_path / "bench.json"
    args = ["bench", str(tampered), "--providers", "cpu", "--variants", "fp32", "--threads", "1", "--quick"]
    args += ["--no-cold-start", "--json", str(report)]
    r = CliRunner().invoke(main, args)
    _refused(r)
    assert not report.exists() and r.stdout == ""
    r = CliRunner().invoke(main, [*args, "--no-self-check"])
    assert r.exit_code == 0 and "self-check skipped" in r.stderr, r.output
    doc = json.loads(report.read_text())
    assert doc["self_check"] == SKIPPED
    assert {run["describe"]["self_check"] for run in doc["runs"] if run["runtime"] == "cpu"} == {SKIPPED}


def test_second_open_is_a_cache_lookup(bundle_copy, cache):
    assert lstm_edge.load(bundle_copy).describe()["self_check"] == PASSED
    entries = list(cache.glob("*.json"))
    assert len(entries) == 1
    record = json.loads(entries[0].read_text())
    assert record["worst"]["error"] <= record["worst"]["bound"] and record["cases"] == 4
    assert lstm_edge.load(bundle_copy).describe()["self_check"] == CACHED
    assert list(cache.glob("*.json")) == entries and json.loads(entries[0].read_text()) == record
    # another runtime setting is another key: checked again, recorded beside the first
    assert lstm_edge.load(bundle_copy, threads=1).describe()["self_check"] == PASSED
    assert len(list(cache.glob("*.json"))) == 2


def test_cache_key_follows_the_bundle_hash(bundle_copy, tmp_path, cache):
    other = tmp_path / "other"
    shutil.copytree(bundle_copy, other)
    tamper(other)
    with lstm_edge.load(bundle_copy, self_check=False) as a, lstm_edge.load(other, self_check=False) as b:
        ka, kb = cache_key(a, "cpu"), cache_key(b, "cpu")
    assert ka["files"] != kb["files"] and entry_path(ka) != entry_path(kb)
    assert ka["runtime"] == kb["runtime"] and ka["machine"] == kb["machine"]
    lstm_edge.load(bundle_copy)  # the untampered bundle's pass ...
    with pytest.raises(ParityError):  # ... is not the tampered one's
        lstm_edge.load(other)
    assert entry_path(ka).is_file() and not entry_path(kb).exists()


def test_a_cached_pass_is_never_read_for_a_changed_model_under_no_verify_hash(bundle_copy, cache):
    """--no-verify-hash: the manifest no longer vouches for the file, so the key hashes the opened file itself."""
    opts = {"verify_hash": False}
    assert lstm_edge.load(bundle_copy, **opts).describe()["self_check"] == PASSED
    _swap_gates(bundle_copy / "model.onnx")  # not re-signed: only --no-verify-hash opens it
    with pytest.raises(ParityError):
        lstm_edge.load(bundle_copy, **opts)


def test_bare_onnx_has_nothing_to_check(shipped_bundle, cache):
    r = lstm_edge.load(shipped_bundle / "model.onnx")
    assert r.describe()["self_check"] == UNAVAILABLE


def test_python_target_refuses_in_the_same_words(tampered, x_file, tmp_path):
    """The Python app folder's example.py opens the model through lstm_edge.load: same check, same line, exit 1."""
    out = tmp_path / "app"
    # bundle itself refuses to package it (the same check on ORT CPU), nothing written ...
    r = CliRunner().invoke(main, ["bundle", str(tampered), "--target", "python", "--out", str(out)])
    assert r.exit_code == 1 and "self-check failed" in r.stderr and not out.exists(), r.output
    # ... and a folder packaged unchecked refuses when it runs
    r = CliRunner().invoke(main, ["bundle", str(tampered), "--target", "python", "--out", str(out), "--no-verify-hash"])
    assert r.exit_code == 0, r.output
    ex = subprocess.run([sys.executable, "example.py"], cwd=out, capture_output=True, text=True)
    assert ex.returncode == 1 and "PASS" not in ex.stdout, ex.stdout + ex.stderr
    line = ex.stderr.strip().splitlines()[-1]
    run = CliRunner().invoke(main, ["run", str(tampered), "--input", str(x_file)])
    assert line == run.stderr.strip().splitlines()[-1]  # the same words as `lstm-edge run`


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_node_and_web_targets_refuse_in_the_same_words(tampered):
    """templates/parity.mjs (npm test and the web page) words a failed check as runtimes.self_check does, from the
    same measured rows of the tampered bundle."""
    with lstm_edge.load(tampered, self_check=False) as r:
        rows = measure(r, "cpu", golden_cases(r.source))
    grouped: dict = {}
    for row in rows:
        g = grouped.setdefault((row["case"], row["mode"]), {"errors": {}, "tolerance": {}})
        g["errors"][row["output"]], g["tolerance"][row["output"]] = row["error"], row["bound"]
    result = {"rows": [{"case": c, "mode": m, **g} for (c, m), g in grouped.items()]}
    worst = max(rows, key=lambda w: w["error"] / w["bound"])
    script = (
        f"import {{ refusal }} from {json.dumps((TEMPLATES / 'parity.mjs').as_uri())};"
        f"console.log(refusal({json.dumps(result)}, 'onnxruntime-node 1.20.0 (cpu)', 'fp32', 'adding'));"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == refusal("onnxruntime-node 1.20.0 (cpu)", "fp32", "adding", worst)


def test_shipped_fp16_loads_held_to_its_measured_worst(shipped_bundle, cache):
    """The shipped fp16 variant (not deployable: quantize measured 0.128 over the fp16 bound 1e-2 at T=1000) streamed
    one step per call reaches cn 2.5e-2 on the golden streaming case; it was refused at load as if corrupt. Its
    self-check now holds it to its measured worst (tolerances.tolerance), and it loads."""
    runner = lstm_edge.load(shipped_bundle, variant="fp16")
    assert runner.describe()["self_check"] in (PASSED, CACHED)


def test_bench_lists_a_default_variant_that_fails_as_refused(bundle_copy, tmp_path, cache):
    """With the bundle's variants by default, an fp16 that fails its check (two gate blocks swapped, re-signed) is a
    refused row (nothing timed), not an exit: the fp32 and the variants asked for by name are what refuse the whole
    bench."""
    tamper(bundle_copy, "fp16")
    report = tmp_path / "bench.json"
    args = ["bench", str(bundle_copy), "--providers", "cpu", "--threads", "1", "--quick", "--no-cold-start"]
    r = CliRunner().invoke(main, [*args, "--json", str(report)])
    assert r.exit_code == 0, r.output
    runs = {run["variant"]: run for run in json.loads(report.read_text())["runs"] if run["runtime"] == "cpu"}
    assert runs["fp16"]["status"] == "refused" and runs["fp16"]["reason"].startswith("self-check failed")
    assert runs["fp32"]["describe"]["self_check"] in (PASSED, CACHED)
    assert "self-check failed" in r.stdout  # the table's note for the fp16 row
    r = CliRunner().invoke(main, [*args, "--variants", "fp16"])
    assert r.exit_code == 1 and "fp16 variant" in r.stderr


def test_verify_quiet_still_prints_its_failure(tampered):
    """The tampered bundle fails verify (fp32 against the checkpoint); under -q the table is hidden, but the failure
    gets one line on stderr naming the runtime × variant and its error, exit 1 — a new user's `verify -q` printed
    nothing at all."""
    args = ["verify", str(tampered), "--quick", "--providers", "cpu", "--variants", "fp32"]
    loud = CliRunner().invoke(main, args)
    assert loud.exit_code == 1 and "FAILED" in loud.stdout, loud.output
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert quiet.exit_code == 1 and quiet.stdout == "", quiet.output
    line = quiet.stderr.strip()
    assert "\n" not in line and line.startswith("error: verify FAILED: cpu fp32 fail") and "bound" in line, line

"""`lstm-edge bundle --target http`: the folder's check.py passes, server.py answers as lstm_edge.load does (also from
several threads at once), refuses bad requests in one line, and will not serve a model that fails its self-check."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import lstm_edge
from lstm_edge.targets import write_target
from tests.test_self_check import REFUSAL, tamper


@pytest.fixture(scope="module")
def folders(shipped_bundle, tmp_path_factory) -> dict[str, Path]:
    """The http folder of the shipped bundle, fp32 and int8."""
    root = tmp_path_factory.mktemp("http")
    return {v: write_target(shipped_bundle, "http", root / v, variant=v) for v in ("fp32", "int8")}


class Server:
    """server.py of a folder, started on a free port; stopped on exit."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", "--port", "0", *args],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("serving"), line
        self.url = line.split()[-1]

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def post(self, body: bytes | dict, path: str = "/v1/predict") -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data), timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_check_py_passes_every_golden_case(folders, variant):
    r = subprocess.run([sys.executable, "check.py"], cwd=folders[variant], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    cases = json.loads((folders[variant] / "golden" / "index.json").read_text())["cases"]
    assert len(re.findall(r"^PASS ", r.stdout, re.M)) == len(cases) and "FAIL" not in r.stdout, r.stdout
    health = json.loads(re.search(r"^server http://\S+: (\{.*\})$", r.stdout, re.M).group(1))
    assert health["variant"] == variant and health["self_check"] in ("passed", "cached"), health


def test_check_py_fails_on_a_wrong_golden_output(folders, tmp_path):
    """check.py compares at the recorded bound: a golden cn moved by 0.01 (1000× the fp32 bound) fails, exit 1 —
    found by server.py's own self-check, or (where this bundle × runtime passed it before: the pass is cached) by
    check.py's comparison; either way the line names the case."""
    folder = shutil.copytree(folders["fp32"], tmp_path / "f")
    case = json.loads((folder / "golden" / "index.json").read_text())["cases"][1]
    target = folder / "golden" / case["arrays"]["cn"]["file"]
    (np.fromfile(target, "<f4") + 0.01).astype("<f4").tofile(target)
    r = subprocess.run([sys.executable, "check.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "FAIL" in r.stdout and case["name"] in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_server_answers_as_the_runner_does(folders, variant):
    """POST x and a state by urllib, 8 requests at once: each answer equals lstm_edge.load(folder).run(x, state)."""
    rng = np.random.default_rng(1)
    xs = [rng.uniform(0, 1, (1 + i % 3, 5 + i, 2)).astype(np.float32) for i in range(8)]
    states = [tuple(rng.normal(0, 0.5, (2, x.shape[0], 64)).astype(np.float32) for _ in "hc") for x in xs]
    runner = lstm_edge.load(folders[variant], variant=variant)
    with Server(folders[variant]) as s:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda xs_: s.post({"x": xs_[0].tolist(), "h0": xs_[1][0].tolist(), "c0": xs_[1][1].tolist()}),
                         zip(xs, states, strict=True))
            )  # fmt: skip
        status, zero = s.post({"x": xs[0].tolist()})  # no state: zeros
    for x, state, (code, got) in zip(xs, states, answers, strict=True):
        assert code == 200, got
        y, (h, c) = runner.run(x, state)
        for name, want in (("y", y), ("hn", h), ("cn", c)):
            np.testing.assert_allclose(np.asarray(got[name], np.float32), want, rtol=0, atol=1e-6, err_msg=name)
    assert status == 200 and np.allclose(zero["y"], runner.run(xs[0])[0], rtol=0, atol=1e-6)


def test_bad_requests_get_one_line(folders):
    with Server(folders["fp32"], "--max-body", "4000") as s:
        bad = {
            b"{not json": "not JSON",
            json.dumps({"x": [[[0.5, 0.5, 0.5]]]}).encode(): "3 features but the model takes 2",
            json.dumps({"x": [[0.5, 0.5]]}).encode(): "rank 2",
            json.dumps({"x": [[[0.5, 0.5]], [[0.5]]]}).encode(): "ragged",
            json.dumps({"x": [[["a", "b"]]]}).encode(): "give x as nested lists of numbers",
            json.dumps({"x": [[[0.5, 0.5]]], "h0": [[[0.0] * 64]] * 2}).encode(): "give h0 and c0 together",
            json.dumps({"x": [[[0.5, 0.5]]], "lengths": [1]}).encode(): "this model takes no lengths",
            json.dumps({"y": 1}).encode(): 'no "x"',
        }
        for body, words in bad.items():
            code, got = s.post(body)
            assert code == 400 and words in got["error"] and "\n" not in got["error"], (body, got)
            assert " — " in got["error"] and "Traceback" not in got["error"]  # the problem, then the fix
        code, got = s.post({"x": [[[0.5, 0.5]] * 400]})  # over the 4000-byte limit
        assert code == 413 and "over the 4000 limit" in got["error"], got
        assert s.post({"x": 1}, "/v2/x")[0] == 404
        with urllib.request.urlopen(s.url + "/healthz", timeout=30) as r:
            health = json.loads(r.read())
    assert health["status"] == "ok" and health["runtime"] == "onnxruntime" and health["variant"] == "fp32"
    assert health["self_check"] in ("passed", "cached") and health["verdict"] == "deployable"


def test_nonfinite_input_is_a_400_naming_the_flag_server_py_has(folders):
    """NaN in x is refused with a 400 whose fix names --allow-nonfinite, and server.py takes that flag: started with
    it, the NaN reaches the model (a trial's 400 named a flag server.py did not have)."""
    body = b'{"x": [[[NaN, 0.5]]]}'  # JSON's non-standard literal, as Python's json writes a float('nan')
    with Server(folders["fp32"]) as s:
        code, got = s.post(body)
    assert code == 400 and "holds nan" in got["error"] and "--allow-nonfinite" in got["error"], got
    with Server(folders["fp32"], "--allow-nonfinite") as s:
        code, got = s.post(body)
    want = lstm_edge.load(folders["fp32"], allow_nonfinite=True).run(np.array([[[np.nan, 0.5]]], np.float32))[0]
    assert code == 200 and np.allclose(got["y"], want, rtol=0, atol=1e-6, equal_nan=True), (got, want)
    assert "--allow-nonfinite" in (folders["fp32"] / "README.md").read_text()


def test_readme_curl_example_works(folders):
    """The README's curl body, POSTed as curl would send it (also by curl itself where it is installed)."""
    readme = (folders["fp32"] / "README.md").read_text()
    body = re.search(r"curl -s localhost:8000/v1/predict -d '([^']+)'", readme).group(1)
    with Server(folders["fp32"]) as s:
        code, got = s.post(body.encode())
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-s", f"{s.url}/v1/predict", "-d", body], capture_output=True, text=True)
            assert json.loads(out.stdout) == got
    assert code == 200 and np.asarray(got["y"]).shape == (1, 1) and np.asarray(got["hn"]).shape == (2, 1, 64)


def test_tampered_model_is_never_served(folders, tmp_path, monkeypatch):
    """Gate blocks i and f swapped in the folder's model.onnx and the manifest re-signed, so every hash matches:
    the self-check at load refuses it, and server.py exits 1 with that one line before listening."""
    monkeypatch.setenv("LSTM_EDGE_CACHE", str(tmp_path / "cache"))  # no pass cached from another test
    folder = shutil.copytree(folders["fp32"], tmp_path / "f")
    tamper(folder)  # tests/test_self_check.py: _swap_gates on model.onnx, then its sha256 and bytes re-signed
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["artifacts"]["fp32"]["sha256"] == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    r = subprocess.run(
        [sys.executable, "server.py", "--port", "0"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 1 and "serving" not in r.stdout, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert all(w in lines[0] for w in REFUSAL), lines[0]  # the words of every runtime's refusal
    assert re.search(r"b\d_t\d+_", lines[0]), lines[0]  # names the golden case it missed
    r = subprocess.run([sys.executable, "check.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "FAIL server.py exited 1" in r.stdout, r.stdout
    # the refusal offers --no-self-check: server.py has it, serves, and says the check was skipped
    p = subprocess.Popen([sys.executable, "server.py", "--port", "0", "--no-self-check"], cwd=folder,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = p.stdout.readline()
    finally:
        p.terminate()
        p.wait(timeout=30)
    assert first.startswith("serving fp32 (self-check skipped)"), first


# A forward that does more than the recognized structure (LayerNorm after the LSTM): exported whole, x → y, no state.
WHOLE_PY = """
from torch import nn


class LSTMNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.norm(out - out.mean(dim=1, keepdim=True)))  # a mean over time: no state to expose
"""


def _whole_graph_bundle(folder: Path) -> Path:
    """The user's LSTMNorm saved whole with torch.save and exported through the CLI (its forward, whole; it subtracts
    each sequence's mean over time, so chunks cannot compose and the bundle stays stateless)."""
    # torch and the CLI deferred: only this form needs them
    import torch
    from click.testing import CliRunner

    from lstm_edge.cli import main

    (folder / "models_http.py").write_text(WHOLE_PY)
    sys.path.insert(0, str(folder))
    try:
        import models_http

        torch.manual_seed(0)
        torch.save(models_http.LSTMNorm().eval(), folder / "m.pt")
        args = ["export", str(folder / "m.pt"), "--trust-pickle", "--code", str(folder / "models_http.py")]
        r = CliRunner().invoke(main, [*args, "--out", str(folder / "b")])
        assert r.exit_code == 0, r.output
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("models_http", None)
    return folder / "b"


def _recognized_bundle(folder: Path, **config) -> Path:
    """LSTMModel with `config` (tokens, time-major), exported with state I/O."""
    # torch deferred: only these forms need it
    import torch

    from lstm_edge.export import ExportConfig, export_bundle
    from lstm_edge.model import LSTMModel, ModelConfig

    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(hidden_size=8, num_layers=1, output_size=2, **config)).eval()
    export_bundle(model, folder / "b", ExportConfig(name="form"))
    return folder / "b"


# form → (its config for LSTMModel, or None: the user's forward whole; the outputs; a refused body; its words)
FORMS = {
    "whole-graph": (None, ["y"], {"h0": [[[0.0] * 8]]}, "this model takes no h0"),
    "tokens": ({"input_size": 4, "vocab_size": 11}, ["y", "hn", "cn"], {"x": [[0.5, 1.5]]}, "lists of integers"),
    "time-major": (
        {"input_size": 3, "batch_first": False, "head": "sequence"},
        ["y", "hn", "cn"],
        {"x": [[0.5, 0.5, 0.5]]},
        "rank 2",
    ),
    "gru-lengths": (
        {"input_size": 3, "family": "gru", "lengths": True, "head": "final"},
        ["y", "hn"],
        {"c0": [[[0.0] * 8]]},
        "this model takes no c0",
    ),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_other_forms_check_and_serve_the_readme_example(form, tmp_path):
    """check.py passes on each form; the README's curl body (token ids [B, T]; x [T, B, F]) answers what
    lstm_edge.load(folder).run(x) does, with y alone for a whole graph and no cn for a GRU; a body the form does not
    take is refused in one line."""
    config, outputs, bad, words = FORMS[form]
    bundle = _whole_graph_bundle(tmp_path) if config is None else _recognized_bundle(tmp_path, **config)
    folder = write_target(bundle, "http", tmp_path / "http")
    r = subprocess.run([sys.executable, "check.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr
    readme = (folder / "README.md").read_text()
    assert ("`lengths` [B]" in readme) == (form == "gru-lengths"), readme
    body = json.loads(re.search(r"/v1/predict -d '([^']+)'", readme).group(1))
    x = np.asarray(body["x"], np.int64 if form == "tokens" else np.float32)
    y, state = lstm_edge.load(folder).run(x)
    with Server(folder) as s:
        code, got = s.post(body)
        refused = s.post({**body, **bad})
    assert code == 200 and list(got) == outputs, got
    for name, want in zip(outputs, (y, *state)[: len(outputs)], strict=True):
        np.testing.assert_allclose(np.asarray(got[name], np.float32), want, rtol=0, atol=1e-6, err_msg=name)
    assert refused[0] == 400 and words in refused[1]["error"], refused

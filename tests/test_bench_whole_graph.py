"""bench on bundles that cannot stream: a whole-graph export of the user's forward (LSTM → LayerNorm → Linear, exported
the way a user does, `lstm-edge export model.pt --trust-pickle --code models.py`) and a bidirectional model. The grid,
cold start and RSS are measured, streaming is reported as not applicable, the FLOPs come from the graph. Structure
only: no timing assertions."""

from __future__ import annotations

import json
import sys
from importlib import resources

import jsonschema
import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper

from lstm_edge.bench.graph_cost import graph_cost
from lstm_edge.bench.timing import grid_input, step_input
from lstm_edge.cli import main
from lstm_edge.config import ModelConfig

# The user's model file: an LSTM → LayerNorm → Linear that subtracts each sequence's mean over time first — more than
# the recognized structure, so export takes the user's forward whole, and a mean over time cannot be computed chunk
# by chunk, so its states are not exposed (streaming: false); a bidirectional model and a token model, recognized.
MODELS_PY = """
import torch
from torch import nn


class SeqNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, batch_first=True)
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.norm(out - out.mean(dim=1, keepdim=True)))


class BiLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out)


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 6)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.fc(out)
"""
QUICK = ["--quick", "--threads", "1", "--providers", "cpu"]


def cli(*argv: str) -> str:
    """`lstm-edge ARGV…` in-process; its output, after asserting exit 0."""
    r = CliRunner().invoke(main, list(argv))
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{class name: bundle folder}: each model seeded, saved whole with torch.save, exported through the CLI."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "models27.py").write_text(MODELS_PY)
    sys.path.insert(0, str(folder))
    try:
        import models27
    finally:
        sys.path.remove(str(folder))
    out = {}
    for cls in ("SeqNorm", "BiLSTM", "Tokens"):
        torch.manual_seed(0)
        torch.save(getattr(models27, cls)().eval(), folder / f"{cls}.pt")
        cli("export", str(folder / f"{cls}.pt"), "--trust-pickle", "--code", str(folder / "models27.py"),
            "--out", str(folder / cls))  # fmt: skip
        out[cls] = folder / cls
    yield out
    sys.modules.pop("models27", None)


def test_whole_graph_bundle_benches_grid_cold_start_and_rss(exported, tmp_path):
    b = exported["SeqNorm"]
    assert json.loads((b / "manifest.json").read_text())["streaming"] is False
    out = cli("bench", str(b), *QUICK, "--variants", "fp32", "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    schema = json.loads(resources.files("lstm_edge").joinpath("schemas/bench.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["streaming"]["status"] == "not-streamable" and "stateless" in report["streaming"]["reason"]
    assert "differs from the whole sequence" in report["streaming"]["reason"]  # why its states were not exposed
    assert report["baseline"] == "ONNX Runtime CPU fp32"  # the bundle carries no PyTorch forward
    (run,) = [r for r in report["runs"] if (r["runtime"], r["variant"]) == ("cpu", "fp32")]
    assert run["status"] == "ok" and run["streaming"]["status"] == "not-streamable"
    assert set(run["grid"]) == {"B1xT1", "B1xT100", "B8xT1", "B8xT100"}
    assert "stream_p50" not in run["speedup_vs_torch"] and set(run["speedup_vs_torch"]) >= set(run["grid"])
    assert run["cold"]["cold_start_s"] > 0 and run["cold"]["peak_rss_mb"] > 0
    # LSTM 4·12·(6+12) + Linear 12·3 MACs, ×2, + 10·12 gate math; W, R, B, LayerNorm and Linear parameters
    assert report["model"]["flops_per_step"] == 2 * (48 * 18 + 36) + 120
    assert report["model"]["weights"] == 48 * 6 + 48 * 12 + 96 + 2 * 12 + 12 * 3 + 3
    assert "initializer shapes" in report["model"]["flops_basis"]
    assert "not streamable" in out and "streaming: not applicable — this bundle is stateless" in out
    # the report page reads the run without its percentiles
    cli("report", str(b), "--bench", str(tmp_path / "r.json"), "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "not streamable" in page and "Streaming not applicable" in page and "ONNX Runtime CPU fp32" in page


def test_whole_graph_int8_is_timed_and_auto_batch_chooses(exported, tmp_path):
    b = exported["SeqNorm"]
    cli("quantize", str(b), "--mode", "dynamic")
    out = cli("bench", str(b), *QUICK, "--no-cold-start", "--auto", "batch", "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    runs = {(r["runtime"], r["variant"]): r for r in report["runs"]}
    assert runs[("cpu", "int8")]["status"] == "ok" and "B8xT100" in runs[("cpu", "int8")]["grid"]
    assert report["auto"]["workload"] == "batch" and report["auto"]["parity"] == "pass"
    assert "cpu int8" in out and "ONNX Runtime CPU fp32" in out


def test_auto_streaming_is_refused_in_one_line_before_timing(exported):
    r = CliRunner().invoke(main, ["bench", str(exported["SeqNorm"]), *QUICK, "--auto", "streaming"])
    assert r.exit_code == 2 and "--auto streaming" in r.output and "--auto batch" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "bench threads" not in r.output


def test_bidirectional_bundle_benches_the_grid_against_pytorch(exported, tmp_path):
    cli("bench", str(exported["BiLSTM"]), *QUICK, "--no-cold-start", "--json", str(tmp_path / "r.json"),
        "--plot", str(tmp_path / "r.png"))  # fmt: skip
    assert (tmp_path / "r.png").stat().st_size > 5000  # PyTorch's path panel without streaming figures
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["streaming"]["status"] == "not-streamable" and "bidirectional" in report["streaming"]["reason"]
    base = report["runs"][0]
    assert base["runtime"] == "torch" and set(base["paths"]) == {"mkldnn_on", "mkldnn_off"}
    assert base["paths"]["mkldnn_on"]["streaming"]["status"] == "not-streamable"
    assert report["model"]["flops_per_step"] == 2 * (2 * 32 * (6 + 8) + 16 * 3) + 2 * 10 * 8  # both directions


def _graph(nodes, inits) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=inits))


def _init(name: str, *dims: int) -> onnx.TensorProto:
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.0] * int(torch.tensor(dims).prod()))


def test_graph_cost_counts_weight_nodes_and_names_what_it_cannot():
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], strides=[2]),
        helper.make_node("GRU", ["c", "W", "R"], ["h"], hidden_size=5),
        helper.make_node("Gemm", ["h", "fw"], ["g"]),
        helper.make_node("LayerNormalization", ["g", "ln"], ["y"]),
    ]
    inits = [_init("cw", 8, 4, 3), _init("W", 1, 15, 8), _init("R", 1, 15, 5), _init("fw", 5, 2), _init("ln", 2)]
    cost = graph_cost(_graph(nodes, inits))
    macs = 8 * 4 * 3 // 2 + 15 * (8 + 5) + 5 * 2
    assert cost["flops_per_step"] == 2 * macs + 8 * 5 and cost["uncounted"] == []
    assert cost["weights"] == 96 + 120 + 75 + 10 + 2
    # two activations multiplied (attention scores): its cost grows with T, not fixed by any initializer
    scores = helper.make_node("MatMul", ["x", "x"], ["y"], name="scores")
    cost = graph_cost(_graph([scores], []))
    assert cost["flops_per_step"] is None and cost["uncounted"] == ["scores (MatMul)"]


def test_bench_inputs_are_in_the_models_layout():
    """B×T names the real batch and length: a time-major model gets [T, B, F], a token model int64 ids."""
    rng = np.random.default_rng(0)
    assert grid_input(ModelConfig(input_size=6), 2, 5, rng).shape == (2, 5, 6)
    tm = grid_input(ModelConfig(input_size=6, batch_first=False), 2, 5, rng)
    assert tm.shape == (5, 2, 6) and tm.dtype == np.float32
    ids = grid_input(ModelConfig(input_size=4, vocab_size=11), 2, 5, rng)
    assert ids.shape == (2, 5) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 11
    # one streaming step: [1, F] features, or one id (a token model streamed float features was refused)
    assert step_input(ModelConfig(input_size=6)).shape == (1, 6)
    step = step_input(ModelConfig(input_size=4, vocab_size=11))
    assert step.shape == (1,) and step.dtype == np.int64 and 0 <= step[0] < 11


def test_token_model_streams_ids_and_cold_starts(exported, tmp_path):
    cli("bench", str(exported["Tokens"]), *QUICK, "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    run = next(r for r in report["runs"] if r["runtime"] == "cpu")
    assert run["status"] == "ok" and run["streaming"]["status"] == "measured" and run["streaming"]["n"] > 0
    assert run["cold"]["cold_start_s"] > 0 and "B8xT100" in run["grid"]

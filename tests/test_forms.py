"""The recurrent models users ship (issue 15): bidirectional, time-major, no bias, GRU, token input, variable
lengths, projection. Each row: a small user module written as a user would → the LSTMModel rebuild (equal in
float64) → the graph (mapped exactly: float64 through onnx.reference) → a bundle → every local runtime equal to the
user's forward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lstm_edge.config import ModelConfig
from lstm_edge.data import model_inputs
from lstm_edge.export import ExportConfig, export_bundle, export_onnx
from lstm_edge.export.graph import build_onnx
from lstm_edge.model import LSTMModel, forward_numpy
from lstm_edge.tolerances import FP32_ABS, MAPPING_F64, scaled_error


class LastStep(nn.Module):
    """The textbook classifier: recurrent layers, then a Linear on out[:, -1] (or on every step)."""

    def __init__(self, rnn: nn.Module, out: int, every_step: bool = False) -> None:
        super().__init__()
        self.rnn, self.every_step = rnn, every_step
        width = rnn.hidden_size if not getattr(rnn, "proj_size", 0) else rnn.proj_size
        self.fc = nn.Linear(width * (2 if rnn.bidirectional else 1), out)

    def forward(self, x):
        out, _ = self.rnn(x)
        if self.every_step:
            return self.fc(out)
        return self.fc(out[:, -1] if self.rnn.batch_first else out[-1])


class Sentiment(nn.Module):
    """nn.Embedding → nn.LSTM → Linear on token ids [B, T] (the sentiment model)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, ids):
        out, _ = self.rnn(self.emb(ids))
        return self.fc(out[:, -1])


class Padded(nn.Module):
    """Padded batches with a lengths tensor: pack_padded_sequence, head on each sequence's final state."""

    def __init__(self, bidirectional: bool = False, proj_size: int = 0) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 6, 2, batch_first=True, bidirectional=bidirectional, proj_size=proj_size)
        self.fc = nn.Linear((proj_size or 6) * (2 if bidirectional else 1), 3)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.fc(torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1])


@dataclass
class Form:
    name: str
    user: nn.Module
    config: ModelConfig


def _forms() -> list[Form]:
    torch.manual_seed(0)
    F, H = 4, 6
    cfg = lambda **kw: ModelConfig(**({"input_size": F, "hidden_size": H, "num_layers": 2, "output_size": 3} | kw))  # noqa: E731
    return [
        Form(
            "bidirectional",
            LastStep(nn.LSTM(F, H, 2, batch_first=True, bidirectional=True), 3),
            cfg(bidirectional=True),
        ),
        Form("time-major", LastStep(nn.LSTM(F, H, 2), 3, every_step=True), cfg(batch_first=False, head="sequence")),
        Form("no-bias", LastStep(nn.LSTM(F, H, 2, batch_first=True, bias=False), 3), cfg(bias=False)),
        Form("gru", LastStep(nn.GRU(F, H, 2, batch_first=True), 3), cfg(family="gru")),
        Form("tokens", Sentiment(), ModelConfig(8, 8, 1, output_size=2, vocab_size=50)),
        Form("lengths", Padded(), cfg(lengths=True, head="final")),
        Form("lengths-bidirectional", Padded(True), cfg(lengths=True, head="final", bidirectional=True)),
        Form("projection", LastStep(nn.LSTM(F, H, 2, batch_first=True, proj_size=3), 3), cfg(proj_size=3)),
        Form(
            "projection-lengths-bidirectional",
            Padded(True, proj_size=3),
            cfg(lengths=True, head="final", bidirectional=True, proj_size=3),
        ),  # fmt: skip
        Form(
            "gru-bidirectional-sequence",
            LastStep(nn.GRU(F, H, 1, bidirectional=True), 3, every_step=True),
            cfg(num_layers=1, family="gru", bidirectional=True, batch_first=False, head="sequence"),
        ),  # fmt: skip
    ]


FORMS = {f.name: f for f in _forms()}


def rebuild(form: Form) -> LSTMModel:
    """The user's weights on LSTMModel's keys (what the intake does from a state_dict)."""
    model = LSTMModel(form.config)
    names = {"rnn.": "lstm.", "fc.": "head.", "emb.": "embedding."}
    sd = {}
    for k, v in form.user.state_dict().items():
        prefix = next(p for p in names if k.startswith(p))
        sd[names[prefix] + k[len(prefix) :]] = v
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and set(missing) <= {"x_mean", "x_std", "y_mean", "y_std"}
    return model.eval()


def user_forward(form: Form, *inputs: np.ndarray, dtype=torch.float64) -> np.ndarray:
    """The user's own module on the lstm-edge inputs (state inputs are zero; the user's forward starts from zero)."""
    user = form.user.to(dtype).eval()
    x = torch.from_numpy(inputs[0])
    x = x.to(dtype) if x.is_floating_point() else x
    args = (x, torch.from_numpy(inputs[1])) if form.config.lengths else (x,)
    with torch.no_grad():
        return user(*args).numpy()


def _inputs(config: ModelConfig, B: int, T: int, seed: int = 0):
    """Zero initial state: the user's forward starts from zero."""
    return model_inputs(config, B, T, False, seed)


def _f64(inputs):
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs]


@pytest.mark.parametrize("name", FORMS)
def test_rebuild_equals_the_users_module_in_float64(name):
    form = FORMS[name]
    model = rebuild(form).double()
    for B, T in ((1, 1), (3, 9)):
        inputs = _inputs(form.config, B, T, seed=T)
        want = user_forward(form, *_f64(inputs))
        y, *state = forward_numpy(model, *_f64(inputs))
        assert y.shape == want.shape
        assert np.abs(y - want).max() <= MAPPING_F64
        assert [s.shape for s in state] == [(r, B, w) for r, w in form.config.state_shapes.values()]


@pytest.mark.parametrize("name", [n for n, f in FORMS.items() if not f.config.lengths])
def test_graph_maps_the_weights_exactly_in_float64(name):
    """onnx.reference runs the graph written in float64: ONNX LSTM (gate order), GRU (linear_before_reset=1 is
    PyTorch's formula), the Scan cell of a projection, Gather on the embedding. It ignores sequence_lens, so the
    lengths forms are checked in float32 on ONNX Runtime below."""
    form = FORMS[name]
    model = rebuild(form).double()
    proto = build_onnx(model, dtype=np.float64)
    ref = ReferenceEvaluator(proto)
    c = form.config
    for random_state in (False, True):
        inputs = _f64(model_inputs(c, 2, 7, random_state, seed=3))
        got = ref.run(list(c.output_names), dict(zip(c.input_names, inputs, strict=True)))
        want = forward_numpy(model, *inputs)
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape and np.abs(a - b).max() <= MAPPING_F64


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("forms")
    return {n: export_bundle(rebuild(f), root / n, ExportConfig(name=n)).bundle for n, f in FORMS.items()}


@pytest.mark.parametrize("name", FORMS)
def test_bundle_on_onnxruntime_equals_the_users_module(name, bundles):
    import onnxruntime as ort

    form = FORMS[name]
    c = form.config
    session = ort.InferenceSession(str(bundles[name] / "model.onnx"), providers=["CPUExecutionProvider"])
    for B, T in ((1, 1), (4, 23)):
        inputs = _inputs(c, B, T, seed=B + T)
        y = session.run(["y"], dict(zip(c.input_names, inputs, strict=True)))[0]
        assert scaled_error(y, user_forward(form, *_f64(inputs))).max() <= FP32_ABS


def test_bare_recurrent_modules_export_in_every_form():
    """nn.LSTM / nn.GRU themselves (no head): bidirectional, time-major, no bias, projection."""
    torch.manual_seed(1)
    for rnn in (
        nn.GRU(3, 4, 2, bidirectional=True),
        nn.LSTM(3, 6, 1, proj_size=2, batch_first=True),
        nn.LSTM(3, 4, bias=False),
    ):
        proto = export_onnx(rnn)
        assert {n.op_type for n in proto.graph.node} & {"LSTM", "GRU", "Scan"}


def test_an_output_axis_frozen_by_the_trace_becomes_symbolic_again():
    """Through the Python API (torch.onnx), a head at every step came out declared y ['batch', T_example, O]
    (measured: ['batch', 6, 2]). The graph here has that declaration; the exporter's fix reads the real dims."""
    from onnx import TensorProto, helper, numpy_helper

    from lstm_edge.export.torch_export import _declare_outputs

    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "frozen",
        [helper.make_tensor_value_info("x", f, ["batch", "seq", 4])],
        [helper.make_tensor_value_info("y", f, ["batch", 6, 2])],
        [numpy_helper.from_array(np.ones((4, 2), np.float32), "W")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _declare_outputs(proto, lambda b, t: {"x": np.zeros((b, t, 4), np.float32)})  # two probe runs in ORT
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [
        "batch",
        "seq",
        2,
    ]


# ---- runtimes: each form runs equal to the user's module, or refuses in one line naming the limit ----------------

RUNTIME_LIMITS = {  # (runtime, what the form needs) → the words its one-line refusal must contain (measured)
    ("openvino", "lengths"): "sequence_lens",
    ("tract", "lengths"): "sequence_lens",
}


def _limit(provider: str, config: ModelConfig) -> str | None:
    needs = "lengths" if config.lengths and not config.proj_size else ""
    return RUNTIME_LIMITS.get((provider, needs))


@pytest.mark.parametrize("provider", ["torch", "cpu", "openvino", "tract"])
@pytest.mark.parametrize("name", FORMS)
def test_every_runtime_runs_the_form_or_refuses_in_one_line(name, provider, bundles):
    from lstm_edge.errors import LstmEdgeError
    from lstm_edge.parity import available_providers
    from lstm_edge.runtimes import open_runner

    if available_providers().get(provider):
        pytest.skip(available_providers()[provider])
    form = FORMS[name]
    c = form.config
    limit = _limit(provider, c)
    if limit:
        with pytest.raises(LstmEdgeError, match=limit) as e:
            open_runner(bundles[name], provider)
        assert "\n" not in str(e.value)
        return
    with open_runner(bundles[name], provider) as runner:
        inputs = _inputs(c, 3, 17, seed=11)
        feeds = dict(zip(c.input_names, inputs, strict=True))
        y, state = runner.run(feeds["x"], None, feeds.get("lengths"))
        assert len(state) == len(c.state_shapes)
        assert scaled_error(y, user_forward(form, *_f64(inputs))).max() <= FP32_ABS
        if not c.streamable:
            with pytest.raises(LstmEdgeError, match="bidirectional"):
                runner.stream(batch=3)
            return
        if c.lengths:  # streaming feeds whole steps: every sequence at full length
            feeds["lengths"] = np.full(3, 17)
            y, state = runner.run(feeds["x"], None, feeds["lengths"])
        s = runner.stream(batch=3)
        for chunk in (1, 5):
            s.reset()
            ys = s.feed(feeds["x"], chunk)
            assert scaled_error(ys, y).max() <= FP32_ABS
            for a, b in zip(s.state, state, strict=True):
                assert scaled_error(a, b).max() <= FP32_ABS


def test_token_ids_out_of_range_and_bad_lengths_are_input_errors(bundles, tmp_path):
    """Checked by the runner before the runtime sees them: one line, CLI exit 2."""
    import json

    from click.testing import CliRunner

    from lstm_edge.cli import main
    from lstm_edge.errors import LstmEdgeError
    from lstm_edge.runtimes import open_runner

    with open_runner(bundles["tokens"], "cpu") as r:
        with pytest.raises(LstmEdgeError, match="token id 50 at index"):
            r.run(np.array([[1, 2, 50]]))
        with pytest.raises(LstmEdgeError, match="token id -1"):
            r.run(np.array([[-1, 2]]))
        with pytest.raises(LstmEdgeError, match="token ids"):
            r.run(np.zeros((1, 3, 8), np.float32))
    with open_runner(bundles["lengths"], "cpu") as r:
        x = np.zeros((2, 5, 4), np.float32)
        for bad in ([0, 5], [6, 5], [5]):
            with pytest.raises(LstmEdgeError, match="lengths"):
                r.run(x, None, np.array(bad))
    with open_runner(bundles["gru"], "cpu") as r:
        with pytest.raises(LstmEdgeError, match="state array"):
            r.run(np.zeros((1, 3, 4), np.float32), (np.zeros((2, 1, 6)), np.zeros((2, 1, 6))))
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"x": [[3, 49, 50]]}))
    res = CliRunner().invoke(main, ["run", str(bundles["tokens"]), "--input", str(path)])
    assert res.exit_code == 2 and "token id 50" in res.output and "Traceback" not in res.output
    path.write_text(json.dumps({"x": [[3, 49, 0]]}))
    res = CliRunner().invoke(main, ["run", str(bundles["tokens"]), "--input", str(path), "--stream"])
    assert res.exit_code == 0, res.output
    path.write_text(json.dumps({"x": np.zeros((2, 4, 4)).tolist(), "lengths": [4, 1]}))
    res = CliRunner().invoke(main, ["run", str(bundles["lengths"]), "--input", str(path), "--json"])
    assert res.exit_code == 0, res.output
    # a GRU takes h0 alone: a c0 in the input is refused, not read and dropped (a trial's GRU run ignored it)
    np.savez(tmp_path / "gru.npz", x=np.zeros((1, 3, 4), np.float32), h0=np.zeros((2, 1, 6), np.float32),
             c0=np.ones((2, 1, 6), np.float32))  # fmt: skip
    res = CliRunner().invoke(main, ["run", str(bundles["gru"]), "--input", str(tmp_path / "gru.npz")])
    assert res.exit_code == 2 and "holds c0, which this model does not take" in res.output, res.output
    path.write_text(json.dumps({"x": np.zeros((1, 4, 4)).tolist(), "lengths": [4]}))
    res = CliRunner().invoke(main, ["run", str(bundles["gru"]), "--input", str(path)])
    assert res.exit_code == 2 and "holds lengths" in res.output, res.output


# ---- embedding: the bundle's own self-check passes in every form --------------------------------------------------


@pytest.mark.parametrize("name", FORMS)
def test_node_bundle_checks_itself(name, bundles, tmp_path):
    import subprocess

    from lstm_edge.targets import write_target
    from tests.test_embed import NPM_DIR, _node_reason

    if _node_reason():
        pytest.skip(_node_reason())
    out = write_target(bundles[name], "node", tmp_path / "node")
    (out / "node_modules").symlink_to(NPM_DIR / "node_modules")
    r = subprocess.run(["node", "check.mjs"], cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    assert ("stream (1 step per call)" in r.stdout) == FORMS[name].config.streamable


@pytest.mark.parametrize(
    "name",
    [
        "tokens",
        pytest.param("gru", marks=pytest.mark.slow),
        pytest.param("lengths-bidirectional", marks=pytest.mark.slow),
    ],
)
def test_python_bundle_checks_itself(name, bundles, tmp_path):
    import subprocess
    import sys

    from lstm_edge.targets import write_target

    out = write_target(bundles[name], "python", tmp_path / "py")
    r = subprocess.run([sys.executable, "example.py"], cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


# ---- quantize + verify: each family's matrix (lengths mixed within a batch, token ids at the table's edges) ------


# In the default run: GRU (y/hn only) verified at fp32, and lengths with a bidirectional model quantized then verified
# (quantize measures error up to T=1000: 10-50 s a form here). Every form, quantized, with -m slow.
FAST_VERIFY = {"gru": False, "lengths-bidirectional": True}


@pytest.mark.parametrize(
    "name, quantize",
    [(n, FAST_VERIFY[n]) if n in FAST_VERIFY else pytest.param(n, True, marks=pytest.mark.slow) for n in FORMS],
)
def test_quantize_then_verify_quick_passes_and_the_report_follows_the_schema(name, quantize, bundles, tmp_path):
    import json
    import shutil
    from importlib import resources

    import jsonschema
    from click.testing import CliRunner

    from lstm_edge.cli import main

    bundle = tmp_path / name
    shutil.copytree(bundles[name], bundle)
    if quantize:
        r = CliRunner().invoke(main, ["quantize", str(bundle)])  # no task data: dynamic int8 and fp16, unverified
        assert r.exit_code == 0, r.output
    out = tmp_path / "verify.json"
    r = CliRunner().invoke(main, ["verify", str(bundle), "--quick", "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    schema = json.loads(resources.files("lstm_edge").joinpath("schemas/verify.schema.json").read_text())
    jsonschema.validate(report, schema)
    c = FORMS[name].config
    checked = [x for x in report["results"] if x["status"] in ("pass", "not-deployable", "unverified")]
    assert {x["runtime"] for x in checked} >= {"torch", "cpu"}
    made = {x["variant"] for x in report["results"]}
    if quantize:
        assert made == ({"fp32", "int8"} if c.proj_size else {"fp32", "int8", "fp16"})  # fp16 of a Scan: refused
        assert any(x["variant"] == "int8" and x["runtime"] == "cpu" and x["cases"] for x in report["results"])
    for x in checked:
        assert all(set(case["outputs"]) == set(c.output_names) for case in x["cases"])
        streamed = any(case["mode"].startswith("stream") for case in x["cases"])
        assert streamed == c.streamable
    assert bool(report["drift"]) == c.streamable


def test_manifest_records_the_spec_and_io_per_family(bundles):
    from lstm_edge.bundle import Bundle

    m = {n: Bundle.open(b).manifest for n, b in bundles.items()}
    assert m["time-major"]["io"]["layout"] == "time_major"
    assert m["time-major"]["io"]["inputs"][0]["shape"] == ["seq", "batch", 4]
    assert m["tokens"]["io"]["inputs"][0] == {"name": "x", "shape": ["batch", "seq"], "dtype": "int64"}
    assert [i["name"] for i in m["lengths"]["io"]["inputs"]] == ["x", "lengths", "h0", "c0"]
    assert [o["name"] for o in m["gru"]["io"]["outputs"]] == ["y", "hn"] and "GRU" in m["gru"]["gate_layout"]
    assert m["bidirectional"]["io"]["outputs"][1]["shape"] == [4, "batch", 6] and not m["bidirectional"]["streaming"]
    assert m["projection"]["io"]["outputs"][1]["shape"] == [2, "batch", 3] and m["projection"]["streaming"]
    assert all(ModelConfig.from_dict(x["config"]) == FORMS[n].config for n, x in m.items())


def test_quantize_refuses_what_it_cannot_make_in_one_line(bundles, tmp_path):
    """fp16 of the Scan form (ONNX Runtime segfaults opening it, measured) and static int8 outside the seed form."""
    import shutil

    from click.testing import CliRunner

    from lstm_edge.cli import main

    bundle = tmp_path / "p"
    shutil.copytree(bundles["projection"], bundle)
    for mode, words in (("fp16", "float16 Scan"), ("static", "seed's LSTM form only")):
        r = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", mode])
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output
    assert sorted(p.name for p in bundle.glob("*.onnx")) == ["model.onnx"]  # nothing half-written

"""Bring your own model: every way a PyTorch user saves the textbook model exports, runs equal to their forward, and
every refusal is one line. One test per row of the issue's table, small sizes."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import lstm_edge
from lstm_edge.cli import main
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export import export_bundle, export_onnx
from lstm_edge.intake import read_model, recognize
from lstm_edge.model import LSTMModel
from lstm_edge.tolerances import FP32_ABS, MAPPING_F64, scaled_error

F, H, L, O = 3, 5, 2, 2  # small stand-ins for the seed's 100, 256, 2, 10


class Textbook(nn.Module):
    """The issue's model: an nn.LSTM from zero state, a Linear head on the last step."""

    def __init__(self, f: int = F, h: int = H, layers: int = L, o: int = O) -> None:
        super().__init__()
        self.lstm = nn.LSTM(f, h, layers, batch_first=True)
        self.fc = nn.Linear(h, o)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


class EveryStep(Textbook):
    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out)


class Residual(Textbook):
    """More than the recognized structure: an activation and a residual the weights cannot show."""

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(torch.relu(out[:, -1]) + x[:, -1, :1])


@pytest.fixture(scope="module")
def textbook() -> Textbook:
    torch.manual_seed(0)
    return Textbook().eval()


def _export(args: list[str]) -> str:
    r = CliRunner().invoke(main, ["export", *args])
    assert r.exit_code == 0, r.output
    return r.output


def _runs_like(bundle, module: nn.Module, shapes=((1, 1), (3, 23))) -> None:
    """`run` on the bundle (ORT CPU) equals the user's forward, ≤ 1e-5 scaled."""
    runner = lstm_edge.load(bundle, provider="cpu")
    for B, T in shapes:
        x = torch.randn(B, T, F)
        y, _ = runner.run(x.numpy())
        with torch.no_grad():
            want = module(x)
        assert y.shape == tuple(want.shape)
        assert scaled_error(y, want.numpy()).max() <= FP32_ABS


def _refused(args: list[str], *needles: str) -> str:
    r = CliRunner().invoke(main, ["export", *args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _manifest(bundle) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


# ---- the table, row by row ---------------------------------------------------------------------------------
def test_bare_state_dict(textbook, tmp_path):
    torch.save(textbook.state_dict(), tmp_path / "model.pt")
    out = _export([str(tmp_path / "model.pt"), "--head", "last", "--out", str(tmp_path / "b")])
    assert "nn.LSTM at `lstm.` 3→5 ×2 layers; Linear head at `fc.` 5→2 on the last step" in out
    m = _manifest(tmp_path / "b")
    assert m["reference"]["kind"] == "rebuilt-from-state-dict" and m["streaming"] is True
    _runs_like(tmp_path / "b", textbook)
    # The rest of the pipeline, unchanged: int8 without task data (unverified, not over budget), then verify.
    r = CliRunner().invoke(main, ["quantize", str(tmp_path / "b"), "--mode", "dynamic"])
    assert r.exit_code == 0 and "unverified" in r.output, r.output
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "b"), "--quick", "--providers", "torch,cpu"])
    assert r.exit_code == 0 and "PASSED" in r.output, r.output


def test_tutorial_checkpoint_dict(textbook, tmp_path):
    opt = torch.optim.Adam(textbook.parameters())
    ckpt = {
        "epoch": 3,
        "model_state_dict": textbook.state_dict(),
        "optimizer_state_dict": opt.state_dict(),
        "loss": 0.1,
    }
    torch.save(ckpt, tmp_path / "ckpt.pt")
    out = _export([str(tmp_path / "ckpt.pt"), "--head", "last", "--out", str(tmp_path / "b")])
    assert "under 'model_state_dict'" in out
    _runs_like(tmp_path / "b", textbook)


def test_lightning_dict_and_data_parallel_prefix(textbook, tmp_path):
    lightning = {"state_dict": {f"model.{k}": v for k, v in textbook.state_dict().items()}, "epoch": 1}
    torch.save(lightning, tmp_path / "light.ckpt")
    mf = read_model(tmp_path / "light.ckpt")
    assert mf.stripped == "model." and "under 'state_dict'" in mf.where
    torch.save({f"module.{k}": v for k, v in textbook.state_dict().items()}, tmp_path / "dp.pt")
    out = _export([str(tmp_path / "dp.pt"), "--head", "last", "--out", str(tmp_path / "b")])
    assert "prefix `module.` stripped" in out
    _runs_like(tmp_path / "b", textbook)


def test_pickled_module_with_class_in_training_script(textbook, tmp_path, monkeypatch):
    """torch.save(model) from `python train.py`: the pickle names __main__.Net; --code train.py supplies it."""
    (tmp_path / "train.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        f"        self.lstm = nn.LSTM({F}, {H}, {L}, batch_first=True)\n        self.fc = nn.Linear({H}, {O})\n\n"
        "    def forward(self, x):\n        out, _ = self.lstm(x)\n        return self.fc(out[:, -1, :])\n\n\n"
        "if __name__ == '__main__':\n    raise SystemExit('training must not run on import')\n"
    )
    main_module = sys.modules["__main__"]

    class Net(Textbook):  # what `python train.py` pickles: a class whose module is __main__
        pass

    Net.__module__, Net.__qualname__ = "__main__", "Net"
    monkeypatch.setattr(main_module, "Net", Net, raising=False)
    model = Net().eval()
    model.load_state_dict(textbook.state_dict())
    torch.save(model, tmp_path / "model.pt")
    monkeypatch.delattr(main_module, "Net")
    monkeypatch.chdir(tmp_path)
    _refused(["model.pt"], "pickled Python objects", "--trust-pickle")
    _refused(["model.pt", "--trust-pickle"], "Net", "--code")
    out = _export(["model.pt", "--trust-pickle", "--code", "train.py", "--out", "b"])
    assert "pickled module" in out
    m = _manifest(tmp_path / "b")
    assert m["reference"]["kind"] == "user-forward" and "T ∈ {1, 17, 300}" in m["reference"]["detail"]
    _runs_like(tmp_path / "b", textbook)


def test_pickled_module_with_class_beside_it(textbook, tmp_path, monkeypatch):
    """Class in usermodel.py beside the file, run from that folder: importable as it is for `python`."""
    (tmp_path / "usermodel.py").write_text(
        "from torch import nn\n\n\nclass Seq(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"        self.lstm = nn.LSTM({F}, {H}, {L}, batch_first=True)\n        self.fc = nn.Linear({H}, {O})\n\n"
        "    def forward(self, x):\n        out, _ = self.lstm(x)\n        return self.fc(out)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import usermodel

    model = usermodel.Seq().eval()
    model.load_state_dict(textbook.state_dict())
    torch.save(model, tmp_path / "model.pt")
    del sys.modules["usermodel"]
    sys.path.remove(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    out = _export(["model.pt", "--trust-pickle", "--out", "b"])  # no --head: the forward says "every step"
    assert "at every step" in out
    seq = EveryStep().eval()
    seq.load_state_dict(textbook.state_dict())
    _runs_like(tmp_path / "b", seq)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript(textbook, tmp_path, how):
    scripted = torch.jit.script(textbook) if how == "script" else torch.jit.trace(textbook, torch.randn(2, 4, F))
    scripted.save(str(tmp_path / "model.pt"))
    # Its forward is code from the file (issue 24): run only when trusted; then it is the reference.
    out = _export([str(tmp_path / "model.pt"), "--trust-pickle", "--out", str(tmp_path / "b")])
    assert "TorchScript archive" in out
    assert _manifest(tmp_path / "b")["reference"]["kind"] == "user-forward"
    _runs_like(tmp_path / "b", textbook)


def test_torch_export_pt2(textbook, tmp_path):
    program = torch.export.export(textbook, (torch.randn(2, 6, F),))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    _refused([str(tmp_path / "model.pt2")], "torch.export program", "--trust-pickle")
    _export([str(tmp_path / "model.pt2"), "--trust-pickle", "--out", str(tmp_path / "b")])
    ref = _manifest(tmp_path / "b")["reference"]
    assert ref["kind"] == "user-forward" and "(2, 6, 3)" in ref["detail"]  # static in T: checked at its own shape
    _runs_like(tmp_path / "b", textbook)


def test_safetensors(textbook, tmp_path):
    from safetensors.torch import save_file

    save_file(textbook.state_dict(), str(tmp_path / "model.safetensors"))
    out = _export([str(tmp_path / "model.safetensors"), "--head", "last", "--out", str(tmp_path / "b")])
    assert "safetensors" in out
    _runs_like(tmp_path / "b", textbook)


def test_head_flag_for_a_state_dict(textbook, tmp_path):
    torch.save(textbook.state_dict(), tmp_path / "model.pt")
    out = _export([str(tmp_path / "model.pt"), "--head", "sequence", "--out", str(tmp_path / "b")])
    assert "at every step" in out
    seq = EveryStep().eval()
    seq.load_state_dict(textbook.state_dict())
    _runs_like(tmp_path / "b", seq)


# ---- the Python API ------------------------------------------------------------------------------------------------
def test_python_api_takes_a_module(textbook, tmp_path):
    r = export_bundle(textbook, tmp_path / "b")
    assert r.reference["kind"] == "user-forward" and r.streaming
    _runs_like(r.bundle, textbook)


def test_fallback_exports_the_users_forward(textbook, tmp_path):
    """A forward the rebuild does not reproduce (an activation and a residual from x) is exported whole; its LSTM's
    state is exposed (the residual reads the last step, which chunks compose), so it streams as it runs."""
    model = Residual().eval()
    model.load_state_dict(textbook.state_dict())
    r = export_bundle(model, tmp_path / "b", example_input=torch.randn(2, 6, F))
    assert r.streaming and r.reference["kind"] == "user-forward" and "differs from its forward" in r.recognized
    assert "streaming: its 2 LSTM node(s)' states as h0, c0 [2, batch, 5]" in r.recognized
    m = _manifest(r.bundle)
    assert m["streaming"] is True and [i["name"] for i in m["io"]["inputs"]] == ["x", "h0", "c0"]
    import onnx

    y_dims = [
        d.dim_param or d.dim_value
        for d in onnx.load(str(r.bundle / "model.onnx")).graph.output[0].type.tensor_type.shape.dim
    ]
    assert y_dims == ["batch", O]
    _runs_like(r.bundle, model, shapes=((1, 1), (3, 40)))
    x = np.random.default_rng(0).standard_normal((2, 9, F)).astype(np.float32)
    runner = lstm_edge.load(r.bundle)
    y, _ = runner.run(x)
    assert np.abs(runner.stream(batch=2).feed(x, chunk=4) - y).max() <= 1e-6
    # verify judges it against its ONNX in float64 (no checkpoint); quantize measures the graph against that; the
    # python and triton targets stream it (Triton's sequence batcher carries its state).
    res = CliRunner().invoke(main, ["verify", str(r.bundle), "--quick", "--providers", "cpu,openvino"])
    assert res.exit_code == 0 and "PASSED" in res.output, res.output
    res = CliRunner().invoke(main, ["quantize", str(r.bundle), "--mode", "dynamic"])
    assert res.exit_code == 0 and _manifest(r.bundle)["artifacts"]["int8"]["verdict"] == "unverified", res.output
    res = CliRunner().invoke(main, ["bundle", str(r.bundle), "--target", "python", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0 and (tmp_path / "e" / "example.py").is_file(), res.output
    res = CliRunner().invoke(main, ["bundle", str(r.bundle), "--target", "triton", "--out", str(tmp_path / "t")])
    assert res.exit_code == 0 and "sequence_batching" in next((tmp_path / "t").glob("*/config.pbtxt")).read_text()


def test_export_onnx_contract_and_known_causes():
    # A forward(x) -> y is not the stateful contract: an LstmEdgeError saying what the contract is.
    with pytest.raises(LstmEdgeError, match=r"forward\(x, \(h0, c0\)\)") as e:
        export_onnx(Textbook().eval(), torch.randn(2, 5, F))
    assert "export_bundle" in str(e.value)
    # nn.LSTM(bias=False) was a raw AttributeError: it now goes through torch.onnx and validates.
    proto = export_onnx(nn.LSTM(F, H, 1, batch_first=True, bias=False).eval())
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 1

    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(F, H, 1, batch_first=True)
            self.fc = nn.Linear(H, O)

        def forward(self, x, state):
            out, state = self.lstm(x, state)
            return self.fc(out), state

    # The second export in one process came out with seq fixed at 6, and y was declared ['batch', 6, 2].
    for _ in range(2):
        proto = export_onnx(Stateful().eval(), torch.randn(2, 6, F))
        dims = {
            vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in [*proto.graph.input, *proto.graph.output]
        }
        assert dims["x"] == ["batch", "seq", F] and dims["y"] == ["batch", "seq", O]


# ---- the recognizer ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, fields, words",
    [
        (lambda: nn.LSTM(F, H, 2, bidirectional=True), {"bidirectional": True}, "bidirectional"),
        (lambda: nn.GRU(F, H, 2), {"family": "gru"}, "nn.GRU"),
        (lambda: nn.LSTM(F, H, 1, bias=False), {"bias": False}, "no bias"),
        (lambda: nn.LSTM(F, H, 2, proj_size=2), {"proj_size": 2}, "projection 2"),
    ],
)
def test_recognizes_every_recurrent_form(make, fields, words):
    rnn = make()
    D = 2 if rnn.bidirectional else 1
    head = nn.Linear(D * (rnn.proj_size if isinstance(rnn, nn.LSTM) and rnn.proj_size else H), O)
    sd = {
        **{f"rnn.{k}": v for k, v in rnn.state_dict().items()},
        **{f"out.{k}": v for k, v in head.state_dict().items()},
    }
    rec = recognize(sd, "final")
    c = rec.config
    assert (c.input_size, c.hidden_size, c.num_layers, c.output_size, c.head) == (F, H, rnn.num_layers, O, "final")
    assert all(getattr(c, k) == v for k, v in fields.items()) and words in rec.describe()
    assert rec.recurrent_at == "rnn." and rec.head_at == "out."
    for k, v in rnn.state_dict().items():
        assert torch.equal(rec.state_dict[f"lstm.{k}"], v)


def test_recognizes_an_embedding_and_maps_the_seed_form_exactly():
    emb, lstm, fc = nn.Embedding(50, 4), nn.LSTM(4, 4, 1, batch_first=True), nn.Linear(4, 2)
    sd = {"emb.weight": emb.weight, **{f"lstm.{k}": v for k, v in lstm.state_dict().items()}}
    sd |= {f"fc.{k}": v for k, v in fc.state_dict().items()}  # width 4 = F = H: bias tells the head
    rec = recognize(sd)
    assert rec.config.vocab_size == 50 and rec.embedding_at == "emb." and rec.head_at == "fc."
    assert "Embedding at `emb.` 50×4 on token ids" in rec.describe()
    # The seed form loads into LSTMModel and computes the user's forward (float64, the mapping bound).
    torch.manual_seed(1)
    user = Textbook().double().eval()
    model = LSTMModel(recognize(user.state_dict()).config)
    model.load_state_dict(recognize(user.state_dict()).state_dict)
    x = torch.randn(3, 9, F, dtype=torch.float64)
    with torch.no_grad():
        assert (model.double()(x)[0] - user(x)).abs().max() <= MAPPING_F64


# ---- refusals: one line each ---------------------------------------------------------------------------------------
def test_refusals(textbook, tmp_path):
    sd = textbook.state_dict()
    mlp = {**sd, "fc2.weight": torch.zeros(O, O), "fc2.bias": torch.zeros(O)}
    torch.save(mlp, tmp_path / "mlp.pt")
    _refused([str(tmp_path / "mlp.pt")], "fc2.weight 2×2", "--code", "Python")
    two = {**sd, **{f"lstm2.{k}": v for k, v in nn.LSTM(H, H, 1).state_dict().items()}}
    torch.save(two, tmp_path / "two.pt")
    _refused([str(tmp_path / "two.pt")], "holds 2 recurrent stacks (at `lstm.`, `lstm2.`)")
    gru = {**{f"gru.{k}": v for k, v in nn.GRU(F, H, 1, batch_first=True).state_dict().items()}}
    gru |= {f"fc.{k}": v for k, v in nn.Linear(H, O).state_dict().items()}
    torch.save(gru, tmp_path / "gru.pt")
    # A GRU state_dict is recognized and, since the graph builder writes every form (issue 15), exported.
    r = CliRunner().invoke(main, ["export", str(tmp_path / "gru.pt"), "--head", "last", "--out", str(tmp_path / "gru")])
    assert r.exit_code == 0 and "nn.GRU at `gru.`" in r.output, r.output
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    _refused([str(tmp_path / "arrays.npz")], "NumPy .npz archive")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07" + bytes(30))
    _refused([str(tmp_path / "m.onnx")], "ONNX model", "lstm-edge run")
    _refused([str(tmp_path / "mlp.pt"), "--code", "x.py"], "--trust-pickle")
    for f in tmp_path.iterdir():
        assert f.suffix in (".pt", ".npz", ".onnx") or f.name == "gru"  # nothing half-written (gru: exported above)


def test_torchscript_that_does_more_is_refused_in_one_line(textbook, tmp_path):
    model = Residual().eval()
    model.load_state_dict(textbook.state_dict())
    torch.jit.script(model).save(str(tmp_path / "res.pt"))
    _refused([str(tmp_path / "res.pt"), "--trust-pickle"], "differs from its forward", "export_bundle(model")


def test_readme_python_api_snippet_runs_as_written(monkeypatch):
    """Pasted into a file in the repository root, the docs' Python API snippet runs."""
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "python-api.md").read_text()
    section = text[text.index("# Python API") :]
    code = section[
        section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))
    ]
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})

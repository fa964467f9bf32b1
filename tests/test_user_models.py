"""The models users have (issue 26): each row a model of a kind people ship, saved the usual way, through the CLI as a
user runs it (and the Python API where the row used it): export exits 0, `lstm-edge run` equals the user's forward
≤ 1e-5 scaled at B and T no trace saw, `verify --quick` passes. Sizes are tiny stand-ins for the issue's."""

from __future__ import annotations

import json
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
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export import export_bundle
from lstm_edge.targets.triton import check_against_onnx
from lstm_edge.tolerances import FP32_ABS, scaled_error

# The user's model file: the classes a pickle names, importable through --code (as `python train.py` saved them).
MODELS_PY = '''
import torch
from torch import nn


class ConvFrontEnd(nn.Module):
    """Activity recognition: Conv1d x2 + ReLU over [B, T, 9], an LSTM on the conv features, Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(9, 8, 3, padding=1)
        self.conv2 = nn.Conv1d(8, 6, 3, padding=1)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        z = torch.relu(self.conv2(torch.relu(self.conv1(x.transpose(1, 2))))).transpose(1, 2)
        out, _ = self.lstm(z)
        return self.fc(out[:, -1])


class TwoLSTMs(nn.Module):
    """Two separate nn.LSTM modules (the issue's 64→128 then 128→32), then Linear."""

    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTM(7, 8, batch_first=True)
        self.lstm2 = nn.LSTM(8, 5, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        a, _ = self.lstm1(x)
        b, _ = self.lstm2(a)
        return self.fc(b[:, -1])


class TimeMajor(nn.Module):
    """nn.LSTM(6, 16) time-major (batch_first=False), a head on every step: x [T, B, 6] → y [T, B, 3]."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


class LSTMNorm(nn.Module):
    """LSTM → LayerNorm → Dropout → Linear on the last step: more than the rebuild's structure (the fallback route)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, batch_first=True)
        self.norm = nn.LayerNorm(12)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.drop(self.norm(out[:, -1])))


class TimeMajorNorm(nn.Module):
    """Time-major nn.LSTM → LayerNorm → Linear at every step: x [T, B, 6] → y [T, B, 3], the fallback route."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.norm(out))


class MidStep(nn.Module):
    """A Linear on the middle step, indexed by a Python int of x's length: every trace bakes that index in."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, int(x.shape[1]) // 2])


class Autoencoder(nn.Module):
    """An LSTM autoencoder: the encoder's last h repeated over T, decoded by a second LSTM, a Linear back to F."""

    def __init__(self):
        super().__init__()
        self.enc = nn.LSTM(6, 8, batch_first=True)
        self.dec = nn.LSTM(8, 8, batch_first=True)
        self.out = nn.Linear(8, 6)

    def forward(self, x):
        _, (h, _) = self.enc(x)
        d, _ = self.dec(h[-1].unsqueeze(1).expand(-1, x.shape[1], -1))
        return self.out(d)


class CellLoop(nn.Module):
    """nn.LSTMCell (or nn.GRUCell) stepped in a Python loop over x[:, t], a Linear on the last h."""

    def __init__(self, gru=False):
        super().__init__()
        self.cell = nn.GRUCell(5, 7) if gru else nn.LSTMCell(5, 7)
        self.fc = nn.Linear(7, 3)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 7)
        for t in range(x.shape[1]):
            if isinstance(self.cell, nn.GRUCell):
                h = self.cell(x[:, t], h)
            else:
                h, c = self.cell(x[:, t], (h, c))
        return self.fc(h)


class Packed(nn.Module):
    """Bidirectional classifier over pack_padded_sequence: forward(x, lengths)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 2)

    def forward(self, x, lengths):
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(p)
        return self.fc(torch.cat([h[-2], h[-1]], 1))


class PackedNorm(nn.Module):
    """forward(x, lengths) over pack_padded_sequence with a LayerNorm on the final state: more than the rebuild."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.norm = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 2)

    def forward(self, x, lengths):
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(p)
        return self.fc(self.norm(h[-1]))


class GRUNorm(nn.Module):
    """GRU → LayerNorm → Linear at every step: a whole graph whose GRU state is exposed (h0 → hn, no cn)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 7, batch_first=True)
        self.norm = nn.LayerNorm(7)
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(self.norm(out))


class CellAttention(CellLoop):
    """The loop does more: attention over every step's h."""

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 7)
        hs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            hs.append(h)
        H = torch.stack(hs, 1)
        a = torch.softmax((H * h[:, None]).sum(-1), 1)
        return self.fc((a[..., None] * H).sum(1))
'''


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """(folder, module of the user's classes): models26.py written there and imported as the user's code."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "models26.py").write_text(MODELS_PY)
    sys.path.insert(0, str(folder))
    try:
        import models26
    finally:
        sys.path.remove(str(folder))
    yield folder, models26
    sys.modules.pop("models26", None)


def _saved(user, cls: str, tmp_path: Path) -> torch.nn.Module:
    """The model, seeded, saved whole (model.pt) and as a state_dict (sd.pt) into tmp_path."""
    torch.manual_seed(0)
    model = getattr(user[1], cls)().eval()
    torch.save(model, tmp_path / "model.pt")
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    return model


def _cli(*argv: str) -> str:
    r = CliRunner().invoke(main, list(argv))
    assert r.exit_code == 0, r.output
    return r.output


def _export_pickle(user, tmp_path: Path, out: str) -> str:
    """`lstm-edge export model.pt --trust-pickle --code models26.py`: its output with line wraps undone."""
    return _words(_cli("export", str(tmp_path / "model.pt"), "--trust-pickle", "--code", str(user[0] / "models26.py"),
                "--out", str(tmp_path / out)))  # fmt: skip


def _words(text: str) -> str:
    return " ".join(text.split())


def _runs_like(bundle: Path, model, F: int, time_major: bool = False) -> None:
    """`lstm-edge run` on the bundle equals the user's forward at B, T no trace saw, ≤ 1e-5 scaled in fp32."""
    for B, T in ((1, 1), (3, 23)):
        x = torch.randn((T, B, F) if time_major else (B, T, F))
        np.save(bundle.parent / "x.npy", x.numpy())
        _cli("run", str(bundle), "--input", str(bundle.parent / "x.npy"), "--output", str(bundle.parent / "y.npy"))
        got = np.load(bundle.parent / "y.npy")
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == want.shape and scaled_error(got, want).max() <= FP32_ABS


def _verified(bundle: Path) -> None:
    assert "PASSED" in _cli("verify", str(bundle), "--quick", "--providers", "cpu")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_conv_front_end_exports_from_the_pickle_and_the_api(user, tmp_path):
    """Row 1: the forward is called with the model's own x (Conv1d in_channels 9), not the LSTM's width (6)."""
    model = _saved(user, "ConvFrontEnd", tmp_path)
    out = _export_pickle(user, tmp_path, "b")
    assert "conv1.weight" in out and "exported its forward itself" in out
    _runs_like(tmp_path / "b", model, F=9)
    _verified(tmp_path / "b")
    # the whole graph quantizes: both Conv1d layers ConvInteger, the LSTM DynamicQuantizeLSTM, the Linear MatMulInteger
    _cli("quantize", str(tmp_path / "b"), "--mode", "dynamic")
    ops = _manifest(tmp_path / "b")["artifacts"]["int8"]["report"]["ops_after"]
    assert (ops["ConvInteger"], ops["DynamicQuantizeLSTM"], ops["MatMulInteger"]) == (2, 1, 1), ops
    _cli("bundle", str(tmp_path / "b"), "--target", "python", "--variant", "int8", "--out", str(tmp_path / "py"))
    r = export_bundle(model, tmp_path / "api", example_input=torch.randn(2, 12, 9))
    assert r.reference["kind"] == "user-forward" and r.reference["exporter"].startswith("torch.onnx")
    _runs_like(tmp_path / "api", model, F=9)
    # weights alone cannot say what the conv front-end computes: one line saying so, exit 2
    r = CliRunner().invoke(main, ["export", str(tmp_path / "sd.pt"), "--out", str(tmp_path / "sd")])
    assert r.exit_code == 2 and "conv1.weight" in r.output and "pass the module itself" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "sd").exists()


def test_two_lstm_modules_take_the_torchscript_exporter_where_dynamo_bakes_a_length(user, tmp_path):
    """Row 2: dynamo bakes T into a Reshape between the two LSTMs; the TorchScript exporter's graph validates, the
    manifest and the recognized block name it, and no raw ONNX Runtime log reaches stderr (a real process: ORT logs
    from C++)."""
    model = _saved(user, "TwoLSTMs", tmp_path)
    exe = Path(sys.executable).parent / "lstm-edge"
    p = subprocess.run(
        [str(exe), "export", str(tmp_path / "model.pt"), "--trust-pickle", "--code", str(user[0] / "models26.py"),
         "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "onnxruntime" not in p.stderr and "[E:" not in p.stderr, p.stderr
    assert "TorchScript (dynamo=False)" in _words(p.stdout)
    block = p.stdout[p.stdout.index("recognized:") : p.stdout.index("\nexported ")]
    assert max(len(line) for line in block.splitlines()) <= 100 and "(dynamo=False) —" in _words(block)  # whole words
    assert "TorchScript" in _manifest(tmp_path / "b")["reference"]["exporter"]
    _runs_like(tmp_path / "b", model, F=7)
    _verified(tmp_path / "b")
    _cli("quantize", str(tmp_path / "b"), "--mode", "dynamic")  # the TorchScript graph's weights fold to initializers
    assert _manifest(tmp_path / "b")["artifacts"]["int8"]["report"]["ops_after"]["DynamicQuantizeLSTM"] == 2
    _cli("bundle", str(tmp_path / "b"), "--target", "python", "--out", str(tmp_path / "py"))


def test_time_major_module_through_the_api_with_a_time_major_example(user, tmp_path):
    """Row 4: a [T, B, F] example and a time-major nn.LSTM: rebuilt as the time-major form (it streams), judged against
    the forward; quantize and the python target work on it."""
    model = _saved(user, "TimeMajor", tmp_path)
    r = export_bundle(model, tmp_path / "b", example_input=torch.randn(9, 2, 6))
    assert r.reference["kind"] == "user-forward" and r.streaming
    m = _manifest(tmp_path / "b")
    assert m["io"]["layout"] == "time_major" and "graph builder" in m["reference"]["exporter"]
    _runs_like(tmp_path / "b", model, F=6, time_major=True)
    _verified(tmp_path / "b")
    _cli("quantize", str(tmp_path / "b"), "--mode", "dynamic")
    _cli("bundle", str(tmp_path / "b"), "--target", "python", "--out", str(tmp_path / "py"))
    out = _export_pickle(user, tmp_path, "cli")  # the same model pickled, through the CLI
    assert "at every step" in out
    _runs_like(tmp_path / "cli", model, F=6, time_major=True)


@pytest.mark.parametrize("gru", [False, True], ids=["LSTMCell", "GRUCell"])
def test_cell_loop_rebuilt_as_one_layer_and_checked_against_the_loop(user, tmp_path, gru):
    """Row 5: the cell's weights are one recurrent layer; from the module it is validated against the user's own loop
    at T ∈ {1, 17, 300} (and so streams, quantizes, bundles); from the state_dict the loop is said to be assumed."""
    torch.manual_seed(0)
    model = user[1].CellLoop(gru).eval()
    torch.save(model, tmp_path / "model.pt")
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    out = _export_pickle(user, tmp_path, "b")
    assert f"nn.{'GRU' if gru else 'LSTM'}Cell at `cell.`" in out and "validated against that loop" in out
    # named as what it is, not as an nn.LSTM the model does not hold (a trial's first line said "nn.LSTM at cell.")
    family = "GRU" if gru else "LSTM"
    assert f"nn.{family}Cell loop at `cell.` 5→7, rebuilt as one nn.{family} layer" in out and "at `cell.` 5" in out
    assert f"nn.{family} at" not in out and "train() mode" not in out  # saved in eval(): no note
    _runs_like(tmp_path / "b", model, F=5)
    _verified(tmp_path / "b")
    assert _manifest(tmp_path / "b")["streaming"] is True
    if not gru:  # the route is the same recurrent bundle as any nn.LSTM's: one form is enough here
        _cli("quantize", str(tmp_path / "b"), "--mode", "dynamic")
        _cli("bundle", str(tmp_path / "b"), "--target", "python", "--out", str(tmp_path / "py"))
    # from weights alone the head is not guessed (issue 24): the loop reads fc(out[:, -1]), so --head last
    out = _words(_cli("export", str(tmp_path / "sd.pt"), "--head", "last", "--out", str(tmp_path / "sd")))
    assert "assuming the loop over time is the plain recurrence" in out and f"nn.{family}Cell loop at" in out
    _runs_like(tmp_path / "sd", model, F=5)


def test_a_module_saved_in_train_mode_is_exported_in_eval_with_one_note(user, tmp_path):
    """A pickled module saved in train() mode (dropout on) is exported in eval(), and export says so in one note line
    (a trial's was switched without a word)."""
    torch.manual_seed(0)
    model = user[1].CellLoop()  # train() mode: what nn.Module starts in
    torch.save(model, tmp_path / "model.pt")
    out = _cli("export", str(tmp_path / "model.pt"), "--trust-pickle", "--code", str(user[0] / "models26.py"), "--out",
               str(tmp_path / "b"))  # fmt: skip
    assert _words(out).count("exported in eval() mode: dropout off, as deployed") == 1, out
    assert "saved in train() mode" in _words(out)


def test_cell_loop_that_does_more_is_refused_in_one_line(user, tmp_path):
    torch.manual_seed(0)
    torch.save(user[1].CellAttention().eval(), tmp_path / "model.pt")
    r = CliRunner().invoke(main, ["export", str(tmp_path / "model.pt"), "--trust-pickle", "--code",
                                  str(user[0] / "models26.py"), "--out", str(tmp_path / "b")])  # fmt: skip
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]
    assert r.exit_code == 2 and len(lines) == 1 and "LSTMCell at `cell.`" in lines[0], r.output
    assert "not the plain recurrence" in lines[0] and not (tmp_path / "b").exists()


def test_forward_with_lengths_exports_the_lengths_form(user, tmp_path):
    """Row 6 (issue 26 item 4): a bidirectional classifier over pack_padded_sequence, forward(x, lengths), exports —
    its weights rebuilt as the lengths form (lengths int64 → sequence_lens), validated against the forward on padded
    batches of mixed lengths — and `run` with an input file's lengths equals the forward on a batch no trace saw;
    verify, quantize and the python target work; runtimes without sequence_lens say so."""
    model = _saved(user, "Packed", tmp_path)
    out = _export_pickle(user, tmp_path, "b")
    assert "forward(x, lengths): lengths → the graph's int64 input `lengths`" in out, out
    assert "validated in ONNX Runtime CPU at 16 unseen shapes" in out, out
    b = tmp_path / "b"
    assert [p["name"] for p in _manifest(b)["io"]["inputs"]][:2] == ["x", "lengths"]
    x, lengths = torch.randn(3, 13, 4), torch.tensor([13, 7, 2])
    np.savez(tmp_path / "xl.npz", x=x.numpy(), lengths=lengths.numpy())
    _cli("run", str(b), "--input", str(tmp_path / "xl.npz"), "--output", str(tmp_path / "y.npy"))
    with torch.no_grad():
        want = model(x, lengths).numpy()
    assert scaled_error(np.load(tmp_path / "y.npy"), want).max() <= FP32_ABS
    out = _cli("verify", str(b), "--quick")
    assert "PASSED" in out and "OpenVINO ignores sequence_lens" in out, out
    _cli("quantize", str(b))
    _cli("bundle", str(b), "--target", "python", "--variant", "int8", "--out", str(tmp_path / "py"))
    p = subprocess.run([sys.executable, "example.py"], cwd=tmp_path / "py", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr


def test_forward_with_lengths_that_does_more_is_refused_in_one_line(user, tmp_path):
    """forward(x, lengths) whose weights hold more than the rebuild (a LayerNorm): torch.onnx cannot export the
    packing, so it is refused in one line naming the lengths parameter and the cause — not exported whole, nothing
    written."""
    _saved(user, "PackedNorm", tmp_path)
    r = CliRunner().invoke(main, ["export", str(tmp_path / "model.pt"), "--trust-pickle", "--code",
                                  str(user[0] / "models26.py"), "--out", str(tmp_path / "b")])  # fmt: skip
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "forward(x, lengths) takes lengths" in lines[0] and "pack_padded_sequence" in lines[0], lines[0]
    assert not (tmp_path / "b").exists()


def test_time_major_forward_exported_whole_runs_streams_and_verifies(user, tmp_path):
    """A time-major forward that does more than the rebuild (LayerNorm) goes the whole-graph route with its LSTM's
    state exposed: the manifest declares x [seq, batch, 6] and h0/c0 [1, batch, 8]; run equals the forward; verify
    passes (zero and random state, streamed and full — a trial fed h0/c0 to a graph without them: "Invalid input
    name: h0"); an input file's h0/c0 are taken, and equal streaming on from where the first half stopped."""
    model = _saved(user, "TimeMajorNorm", tmp_path)
    out = _export_pickle(user, tmp_path, "b")
    assert "exported its forward itself" in out and "streaming: its 1 LSTM node(s)' states as h0, c0" in out
    b = tmp_path / "b"
    io = _manifest(b)["io"]
    assert io["inputs"][0]["shape"] == ["seq", "batch", 6] and io["inputs"][1]["shape"] == [1, "batch", 8]
    _runs_like(b, model, F=6, time_major=True)
    _verified(b)
    x = np.random.default_rng(0).standard_normal((10, 2, 6)).astype(np.float32)
    runner = lstm_edge.load(b)
    _, (h, c) = runner.run(x[:4])
    np.savez(tmp_path / "xs.npz", x=x[4:], h0=h, c0=c)
    _cli("run", str(b), "--input", str(tmp_path / "xs.npz"), "--output", str(tmp_path / "y.npy"))
    whole = runner.stream(batch=2).feed(x, chunk=3)
    assert scaled_error(np.load(tmp_path / "y.npy"), whole[4:]).max() <= FP32_ABS


def test_a_baked_index_that_breaks_the_graph_is_one_line(user, tmp_path):
    """A forward indexing out[:, int(T) // 2]: each exporter's graph fails in ONNX Runtime at a shape the trace did
    not see. One line naming the baked index, exit 2, nothing written — a trial got ORT's 40-line traceback, exit 1."""
    _saved(user, "MidStep", tmp_path)
    r = CliRunner().invoke(main, ["export", str(tmp_path / "model.pt"), "--trust-pickle", "--code",
                                  str(user[0] / "models26.py"), "--out", str(tmp_path / "b")])  # fmt: skip
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]
    assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output, r.output
    assert "fails in ONNX Runtime" in lines[0] and "baked in" in lines[0] and not (tmp_path / "b").exists()
    # readable whole: the problem and the fix, not ORT's messages clipped mid-way (a trial's line was ~600 chars)
    assert len(lines[0]) <= 250 and "int(T) // 2" in lines[0] and "ONNXRuntimeError" not in lines[0], lines[0]
    r = CliRunner().invoke(main, ["--debug", "export", str(tmp_path / "model.pt"), "--trust-pickle", "--code",
                                  str(user[0] / "models26.py"), "--out", str(tmp_path / "b")])  # fmt: skip
    assert r.exit_code == 2 and "ONNXRuntimeError" in r.output  # ORT's own words, under --debug


def _words_of(argv: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(main, argv)
    return r.exit_code, r.output


@pytest.mark.parametrize("cls", ["LSTMNorm", "Autoencoder"])
def test_whole_graph_route_quantizes_verifies_and_bundles(user, tmp_path, cls):
    """Row 3: the forward exported whole through torch.onnx is a first-class bundle — quantize makes int8 (every LSTM
    DynamicQuantizeLSTM, the Linear MatMulInteger) and fp16, each judged against the fp32 graph in float64 (unverified
    without data); `run --variant int8` passes its self-check and stays near the user's forward; verify --quick
    passes on every variant; the python target's example.py passes; triton gets a repository; codegen refuses in one
    line naming the node it cannot emit. LSTMNorm's LSTM state is exposed (h0/c0 → hn/cn: it streams everywhere); the
    autoencoder's cannot be (its decoder reads the encoder's last step), so it stays stateless, and says why."""
    streams = cls == "LSTMNorm"
    model = _saved(user, cls, tmp_path)
    said = _export_pickle(user, tmp_path, "b")
    assert "exported its forward itself" in said
    assert ("streaming: its 1 LSTM node(s)' states as h0, c0 [1, batch, 12]" in said) == streams, said
    assert streams or "differs from the whole sequence" in said
    b = tmp_path / "b"
    _runs_like(b, model, F=6)
    out = _words(_cli("quantize", str(b)))
    assert "skipped int8-static" in out and "against the fp32 graph in float64" in out
    m = _manifest(b)
    for v in ("int8", "fp16"):
        report = m["artifacts"][v]["report"]
        assert m["artifacts"][v]["verdict"] == "unverified"
        assert set(report["error_profile"]["1000"]) == ({"y", "hn", "cn"} if streams else {"y"})
    ops = m["artifacts"]["int8"]["report"]["ops_after"]
    assert ops["DynamicQuantizeLSTM"] == (2 if cls == "Autoencoder" else 1) and ops["MatMulInteger"] >= 1
    assert "LSTM" not in ops
    # the int8 variant: its self-check passes at the recorded bound, and it stays near the user's forward
    x = torch.randn(3, 23, 6)
    np.save(tmp_path / "x.npy", x.numpy())
    for v, bound in (("int8", 0.1), ("fp16", 1e-2)):
        _cli("run", str(b), "--variant", v, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
        with torch.no_grad():
            err = scaled_error(np.load(tmp_path / "y.npy"), model(x).numpy()).max()
        assert 0 < err <= bound, (v, err)
    out = _cli("verify", str(b), "--quick", "--providers", "cpu")
    assert "PASSED" in out and all(f"cpu       {v}" in out for v in ("fp32", "int8", "fp16")), out
    _cli("score", str(b), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.parquet"), "--variant",
         "int8")  # fmt: skip
    code, out = _words_of(["score", str(b), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "q.parquet"),
                           "--outputs", "y,hn"])  # fmt: skip
    # hn is a graph output where the state is exposed; else refused in one line, nothing written
    assert (code == 0) if streams else (code == 2 and "returns y alone" in out), out
    assert (tmp_path / "q.parquet").exists() == streams
    # the report's model card names no structure it did not recognize (a trial's said "LSTM 8→32" of a conv model)
    _cli("report", str(b), "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "not recognized: your forward, exported whole by torch.onnx" in page and "x [batch, seq, 6]" in page
    assert _manifest(b)["spec"] not in page and "--target c " not in page  # no C for a whole graph
    # what quantize measured, as it measured it: the fp32 graph in float64 — from zero state, whole sequences, for the
    # stateless graph (a trial's page said "vs PyTorch … zero and random state, streamed"); no cell-state note
    # where the graph has no cn
    how = "zero and random initial state, full and streamed" if streams else "zero state, whole sequences"
    assert f"vs the fp32 graph in float64 up to T=1000 ({how})" in page
    assert "vs PyTorch" not in page and ("cell state cn" in page) == streams
    assert streams or "example.py runs each golden case whole" in page
    h0 = np.full((1, 3, 12 if cls == "LSTMNorm" else 8), 5.0, np.float32)
    if streams:  # a state given is carried: a stream fed x in chunks ends where run over x ends
        runner = lstm_edge.load(b)
        _, (h, c) = runner.run(x.numpy())
        stream = runner.stream(batch=3)
        stream.feed(x.numpy(), chunk=5)
        assert scaled_error(stream.state[0], h).max() <= FP32_ABS and scaled_error(stream.state[1], c).max() <= FP32_ABS
    else:  # a state for a graph that takes none is refused, never dropped: a trial got the zero-state answer
        with pytest.raises(LstmEdgeError, match="takes no state"):
            lstm_edge.load(b).run(x.numpy(), (h0, h0))
        np.savez(tmp_path / "xs.npz", x=x.numpy(), h0=h0, c0=h0)
        code, out = _words_of(["run", str(b), "--input", str(tmp_path / "xs.npz")])
        assert code == 2 and "holds h0, c0, which this model does not take" in out, out
        code, out = _words_of(["run", str(b), "--input", str(tmp_path / "x.npy"), "--stream"])
        assert code == 2 and "differs from the whole sequence" in out, out
    _cli("bundle", str(b), "--target", "python", "--variant", "int8", "--out", str(tmp_path / "py"))
    index = json.loads((tmp_path / "py" / "golden" / "index.json").read_text())
    assert index["inputs"] == (["x", "h0", "c0"] if streams else ["x"])
    assert any(c["streaming"] for c in index["cases"]) == streams
    p = subprocess.run([sys.executable, "example.py"], cwd=tmp_path / "py", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr
    assert ("streamed" if streams else "ran whole sequences with int8") in p.stdout, p.stdout
    code, out = _words_of(["codegen", str(b), "--out", str(tmp_path / "c")])
    assert code == 2 and len(out.strip().splitlines()) == 1 and not (tmp_path / "c").exists(), out
    assert ("node 'node_layer_norm' (LayerNormalization)" if cls == "LSTMNorm" else "is not one the C emits") in out
    # triton: a sequence-batched repository where the model streams, else whole sequences per request
    _cli("bundle", str(b), "--target", "triton", "--variant", "int8", "--out", str(tmp_path / "t"))
    config = next((tmp_path / "t").glob("*/config.pbtxt"))
    assert ("sequence_batching" in config.read_text()) == streams
    assert check_against_onnx(config.read_text(), config.parent / "1" / "model.onnx") == []


def test_whole_graph_quantize_is_judged_on_the_task_metric_with_data(user, tmp_path):
    """With --data the variants of a whole-graph bundle get a verdict from the task metric; --mode static is refused
    in one line, nothing written (the autoencoder: stateless, so export/quant_graph.py judges it)."""
    model = _saved(user, "Autoencoder", tmp_path)
    assert "exported its forward itself" in _export_pickle(user, tmp_path, "b")
    b = tmp_path / "b"
    X = torch.randn(64, 20, 6)
    with torch.no_grad():
        y = model(X).numpy()
    np.savez(tmp_path / "d.npz", X=X.numpy(), y=y + 0.1 * np.random.default_rng(0).standard_normal(y.shape))
    before = (b / "manifest.json").read_text()
    code, out = _words_of(["quantize", str(b), "--mode", "static", "--data", str(tmp_path / "d.npz")])
    assert code == 2 and "static int8 calibrates" in out and (b / "manifest.json").read_text() == before
    _cli("quantize", str(b), "--data", str(tmp_path / "d.npz"), "--max-metric-drop", "0.5")
    m = _manifest(b)
    for v in ("int8", "fp16"):
        metric = m["artifacts"][v]["report"]["metric"]
        assert metric["fp32"] is not None and metric["variant"] is not None
        assert m["artifacts"][v]["verdict"] == "deployable", metric
    # a zero budget: the verdict follows the measured drop's sign (over budget is a finding, exit 0, kept)
    _cli("quantize", str(b), "--mode", "dynamic", "--data", str(tmp_path / "d.npz"), "--max-metric-drop", "0")
    entry = _manifest(b)["artifacts"]["int8"]
    want = "deployable" if entry["report"]["metric"]["drop"] <= 0 else "not-deployable"
    assert entry["verdict"] == want and "fp16" in _manifest(b)["artifacts"]


NODE_MODULES = Path(__file__).resolve().parent / "embed" / "npm" / "node_modules"


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "onnxruntime-node").is_dir(),
    reason="node or onnxruntime-node not installed (make embed-deps)",
)
@pytest.mark.parametrize("cls", ["LSTMNorm", "Autoencoder"])
def test_whole_graph_node_target_checks_whole_sequences(user, tmp_path, cls):
    """Row 3 in Node.js: the node target of a whole-graph bundle runs every golden case through onnxruntime-node and
    passes — streaming rows too where the state is exposed (LSTMNorm), none where there is no state to carry."""
    _saved(user, cls, tmp_path)
    _export_pickle(user, tmp_path, "b")
    _cli("bundle", str(tmp_path / "b"), "--target", "node", "--out", str(tmp_path / "node"))
    (tmp_path / "node" / "node_modules").symlink_to(NODE_MODULES)
    p = subprocess.run(["node", "check.mjs"], cwd=tmp_path / "node", capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr
    assert ("stream" in p.stdout) == (cls == "LSTMNorm"), p.stdout


def test_whole_graph_gru_streams_and_quantizes(user, tmp_path):
    """A GRU → LayerNorm exported whole exposes h0 → hn (a GRU has no cn): it streams equal to run, and quantize
    judges it against its fp32 graph in float64 through the forms' path — a trial's quantize asked the graph for a
    cn and died with ORT's traceback."""
    model = _saved(user, "GRUNorm", tmp_path)
    assert "its 1 GRU node(s)' states as h0 [1, batch, 7]" in _export_pickle(user, tmp_path, "b")
    b = tmp_path / "b"
    _runs_like(b, model, F=6)
    x = np.random.default_rng(1).standard_normal((2, 15, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    _cli("run", str(b), "--input", str(tmp_path / "x.npy"), "--stream", "--output", str(tmp_path / "ys.npy"))
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert scaled_error(np.load(tmp_path / "ys.npy"), want).max() <= FP32_ABS
    out = _words(_cli("quantize", str(b)))
    assert "against the fp32 graph in float64" in out and "Traceback" not in out
    assert _manifest(b)["artifacts"]["int8"]["verdict"] == "unverified"
    assert "PASSED" in _cli("verify", str(b), "--quick", "--providers", "cpu")

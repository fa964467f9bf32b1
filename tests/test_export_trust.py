"""Issue 24 items 5 and 6: export says what it was validated against; from weights alone the head is a guess it
will not make silently; a TorchScript forward is code and runs only when trusted. Each test is a row of the issue's
table, through the CLI as a user runs it; tiny models."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner
from torch import nn

import lstm_edge
from lstm_edge.cli import main
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export import ExportConfig, export_bundle
from lstm_edge.tolerances import FP32_ABS, scaled_error

F, H, O, V = 3, 4, 2, 7
FLAGS = ("--head last", "--head final", "--head sequence", "--head none")
REBUILT = "against the module rebuilt from your weights — your forward was not available"

BIDIRECTIONAL_CODE = """
import torch
from torch import nn


class BiFinal(nn.Module):
    '''A bidirectional classifier whose forward reads the final states of both directions.'''

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(torch.cat([h[-2], h[-1]], dim=1))
"""


class CharLM(nn.Module):
    """Token ids → Embedding → LSTM → a Linear head on every step: y [B, T, V]."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, F)
        self.lstm = nn.LSTM(F, H, batch_first=True)
        self.fc = nn.Linear(H, V)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.fc(out)


class Stateful(nn.Module):
    """forward(x, state) → (y at every step, state): the streaming model a user carries state through."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(F, H, 2, batch_first=True)
        self.out = nn.Linear(H, O)

    def forward(self, x, state=None):
        seq, state = self.gru(x, state)
        return self.out(seq), state


def _export(*args: str) -> tuple[int, list[str]]:
    r = CliRunner().invoke(main, ["export", *args])
    assert "Traceback" not in r.output, r.output
    return r.exit_code, [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]


def _refused_to_guess(path, tmp_path) -> None:
    code, lines = _export(str(path), "--out", str(tmp_path / "refused"))
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "cannot say what the Linear head" in lines[0] and all(f in lines[0] for f in FLAGS), lines[0]
    assert not (tmp_path / "refused").exists()


def _matches(bundle, forward, x: torch.Tensor) -> np.ndarray:
    y, _ = lstm_edge.load(bundle, provider="cpu").run(x.numpy())
    with torch.no_grad():
        want = forward(x)
    want = (want[0] if isinstance(want, tuple) else want).numpy()
    assert y.shape == want.shape
    assert scaled_error(y, want).max() <= FP32_ABS
    return y


def test_bidirectional_final_state_dict_is_not_guessed(tmp_path):
    """Row 2: `head last` was guessed silently (8e-2 from the user's forward) and called validated."""
    namespace: dict = {}
    exec(BIDIRECTIONAL_CODE, namespace)
    torch.manual_seed(0)
    model = namespace["BiFinal"]().eval()
    torch.save(model.state_dict(), tmp_path / "bi.pt")
    _refused_to_guess(tmp_path / "bi.pt", tmp_path)
    x = torch.randn(3, 11, F)

    code, lines = _export(str(tmp_path / "bi.pt"), "--head", "final", "--out", str(tmp_path / "final"))
    assert code == 0, lines
    said = " ".join(ln.strip() for ln in lines)  # the recognized block is wrapped at word boundaries
    assert "head final: from --head, not checked" in said and "not taken: --head last" in said, lines
    assert lines[-1].startswith("validated in ONNX Runtime CPU at ") and lines[-1].count(REBUILT) == 1, lines[-1]
    _matches(tmp_path / "final", model, x)
    manifest = json.loads((tmp_path / "final" / "manifest.json").read_text())
    assert manifest["reference"]["kind"] == "rebuilt-from-state-dict"

    (tmp_path / "bi_model.py").write_text(BIDIRECTIONAL_CODE)  # --code: its forward is run and picks the head
    code, lines = _export(
        str(tmp_path / "bi.pt"), "--trust-pickle", "--code", str(tmp_path / "bi_model.py"), "--out", str(tmp_path / "c")
    )
    assert code == 0, lines
    assert "on the final hidden state" in " ".join(ln.strip() for ln in lines), lines
    assert "against your own forward (state_dict + --code BiFinal):" in lines[-1], lines[-1]
    _matches(tmp_path / "c", model, x)


def test_char_lm_state_dict_gives_every_step_with_head_sequence(tmp_path):
    """Row 3: a char-LM's state_dict came out [B, O] (the last step) instead of [B, T, O]."""
    torch.manual_seed(1)
    model = CharLM().eval()
    torch.save(model.state_dict(), tmp_path / "lm.pt")
    _refused_to_guess(tmp_path / "lm.pt", tmp_path)
    code, lines = _export(str(tmp_path / "lm.pt"), "--head", "sequence", "--out", str(tmp_path / "b"))
    assert code == 0, lines
    ids = torch.randint(0, V, (2, 9))
    assert _matches(tmp_path / "b", model, ids).shape == (2, 9, V)


def test_stateful_state_dict_gives_every_step_with_head_sequence(tmp_path):
    """Row 3: a stateful model's state_dict, the same [B, O] for [B, T, O]; the API refuses the same way."""
    torch.manual_seed(2)
    model = Stateful().eval()
    torch.save(model.state_dict(), tmp_path / "st.pt")
    _refused_to_guess(tmp_path / "st.pt", tmp_path)
    try:
        export_bundle(tmp_path / "st.pt", tmp_path / "api")
        raise AssertionError("the API guessed the head")
    except LstmEdgeError as e:
        assert "--head sequence" in str(e)
    r = export_bundle(tmp_path / "st.pt", tmp_path / "b", ExportConfig(head="sequence"))
    assert r.reference["kind"] == "rebuilt-from-state-dict"
    assert _matches(tmp_path / "b", model, torch.randn(3, 8, F)).shape == (3, 8, O)


def test_head_none_is_accepted(tmp_path):
    """`--head none`: the Linear the weights hold is left out, and the printed recognition says so."""
    torch.manual_seed(3)
    model = CharLM().eval()
    torch.save(model.state_dict(), tmp_path / "lm.pt")
    code, lines = _export(str(tmp_path / "lm.pt"), "--head", "none", "--out", str(tmp_path / "b"))
    assert code == 0, lines
    assert "the Linear at `fc.` is not applied (head none)" in "\n".join(lines)
    ids = torch.randint(0, V, (2, 5))
    y, _ = lstm_edge.load(tmp_path / "b", provider="cpu").run(ids.numpy())
    with torch.no_grad():
        want = model.lstm(model.emb(ids))[0].numpy()
    assert scaled_error(y, want).max() <= FP32_ABS


class Writer(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.lstm = nn.LSTM(F, H, batch_first=True)
        self.fc = nn.Linear(H, O)

    def forward(self, x):
        written = torch.from_file(self.path, shared=True, size=16).fill_(65)  # used below: TorchScript keeps it
        out, _ = self.lstm(x)
        return self.fc(out[:, -1]) + 0 * written[0]


def test_torchscript_forward_runs_only_when_trusted(tmp_path):
    """Row 7: `export model.pt` (no flag) ran a TorchScript forward that creates or overwrites PATH."""
    victim = tmp_path / "victim.bin"
    torch.manual_seed(4)
    model = Writer(str(victim)).eval()
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    victim.unlink(missing_ok=True)  # scripting does not run forward; be sure

    code, lines = _export(str(tmp_path / "model.pt"), "--out", str(tmp_path / "refused"))
    assert code == 2 and "--trust-pickle to run the file's own forward" in lines[0], lines
    assert not victim.exists()

    victim.write_bytes(b"user data, keep")  # an existing file is not overwritten either
    code, lines = _export(str(tmp_path / "model.pt"), "--head", "last", "--out", str(tmp_path / "b"))
    assert code == 0, lines
    assert victim.read_bytes() == b"user data, keep"
    assert "TorchScript archive (read as weights only)" in lines[0]
    assert any("forward was not run" in ln for ln in lines)
    assert lines[-1].startswith("validated in ONNX Runtime CPU at ") and lines[-1].count(REBUILT) == 1, lines[-1]
    r = export_bundle(tmp_path / "model.pt", tmp_path / "api", ExportConfig(head="last"))
    assert r.reference["kind"] == "rebuilt-from-state-dict" and victim.read_bytes() == b"user data, keep"

    victim.unlink()  # trusted (--trust-code, the same flag as --trust-pickle): the forward runs, as asked
    code, lines = _export(str(tmp_path / "model.pt"), "--trust-code", "--out", str(tmp_path / "t"))
    assert code == 0, lines
    assert victim.read_bytes() == torch.full((16,), 65.0).numpy().tobytes()
    assert "against your own forward (TorchScript archive):" in lines[-1], lines[-1]


class _Shell:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_untrusted_torchscript_weights_are_read_as_data_only(tmp_path):
    """Without --trust-pickle a TorchScript archive is not given to torch.jit.load: its data.pkl is read by a reader
    that builds records and tensors only, so a pickled call is refused in one line and never made."""
    import pickle
    import zipfile

    marker = tmp_path / "ran"
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("evil/code/__torch__.py", "")
        z.writestr("evil/data.pkl", pickle.dumps(_Shell(marker)))
    code, lines = _export(str(tmp_path / "evil.pt"), "--head", "last", "--out", str(tmp_path / "b"))
    assert code == 2 and len(lines) == 1 and "cannot be read as data" in lines[0] and "--trust-pickle" in lines[0]
    assert not marker.exists() and not (tmp_path / "b").exists()


def test_untrusted_pt2_is_read_as_weights_only(tmp_path):
    """A .pt2 without --trust-pickle: its raw weight records, nothing unpickled, the head from --head."""
    torch.manual_seed(5)
    model = Stateful().eval()
    program = torch.export.export(model, (torch.randn(2, 6, F),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    code, lines = _export(str(tmp_path / "m.pt2"), "--out", str(tmp_path / "refused"))
    assert code == 2 and "--trust-pickle to run the file's own forward" in lines[0], lines
    code, lines = _export(str(tmp_path / "m.pt2"), "--head", "sequence", "--out", str(tmp_path / "b"))
    assert code == 0 and "torch.export program (read as weights only)" in lines[0], lines
    assert lines[-1].count(REBUILT) == 1, lines[-1]
    assert _matches(tmp_path / "b", model, torch.randn(3, 8, F)).shape == (3, 8, O)

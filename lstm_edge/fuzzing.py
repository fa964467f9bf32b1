"""Fuzz targets shared by the bounded suite (tests/hardening/test_fuzz.py) and the long run (benchmarks/fuzz.py).

Each target takes generated data and must either succeed or raise LstmEdgeError — any other exception is a crash.
Needs hypothesis (the [test] extra); nothing is written at import time.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import tempfile
from pathlib import Path

import torch
from hypothesis import strategies as st

from lstm_edge.bundle import Bundle
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lstm_edge.errors import LstmEdgeError
from lstm_edge.inputs import read_input
from lstm_edge.intake import read_model, recognize
from lstm_edge.model import LSTMModel, ModelConfig


@functools.cache
def _tiny_model() -> LSTMModel:
    """A small valid model (3 features, hidden 8, 2 layers): a short checkpoint, so mutations hit its structure."""
    torch.manual_seed(0)
    return LSTMModel(ModelConfig(input_size=3, hidden_size=8, num_layers=2, output_size=2)).eval()


@functools.cache
def good_checkpoint_bytes() -> bytes:
    """The bytes of a valid checkpoint of _tiny_model(), written once into a folder removed at once."""
    with tempfile.TemporaryDirectory(prefix="lstm-edge-fuzz-") as tmp:
        path = save_checkpoint(_tiny_model(), Path(tmp) / "good.pt")
        return path.read_bytes()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """A hypothesis strategy: `base` with 1–8 random byte flips, cuts of up to 512 bytes, or inserts of up to 64."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 512))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


# Deferred: the valid checkpoint is built at the first draw, not at import.
checkpoint_bytes = st.one_of(st.binary(max_size=2048), st.deferred(lambda: mutated(good_checkpoint_bytes())))


@st.composite
def checkpoint_dicts(draw) -> bytes:
    """Well-formed torch.save archives of ill-formed checkpoint dicts."""
    payload = {
        "format": draw(st.sampled_from(["lstm-edge/checkpoint", "other"])),
        "format_version": draw(st.integers(-1, 3)),
        "config": draw(st.one_of(json_values, st.builds(lambda: _tiny_model().config.to_dict()))),
        "state_dict": draw(
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["lstm.weight_ih_l0", "head.bias", "x"]),
                    st.builds(torch.zeros, st.integers(0, 4)),
                    max_size=3,
                ),
            )
        ),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


# A user's files (issue 14): a textbook state_dict as torch.save and safetensors bytes, and state_dicts of realistic
# names with arbitrary shapes for the recognizer.
@functools.cache
def _user_files() -> tuple[bytes, bytes]:
    from safetensors.torch import save  # deferred: the optional safetensors package, for these files only

    lstm, fc = torch.nn.LSTM(3, 4, 2, batch_first=True), torch.nn.Linear(4, 2)
    sd = {
        **{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
        **{f"fc.{k}": v for k, v in fc.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save({"epoch": 1, "model_state_dict": sd}, buf)
    return buf.getvalue(), save({k: v.contiguous() for k, v in sd.items()})


# Deferred like checkpoint_bytes: the files are built at the first draw, not at import.
model_file_bytes = st.one_of(
    st.binary(max_size=2048),
    st.deferred(lambda: mutated(_user_files()[0])),
    st.deferred(lambda: mutated(_user_files()[1])),
)
RECOGNIZER_NAMES = [
    *(
        f"lstm.{k}_l{i}{r}"
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        for i in (0, 1)
        for r in ("", "_reverse")
    ),
    "fc.weight",
    "fc.bias",
    "emb.weight",
    "weight_hh_l0",
    "x",
]
state_dicts = st.dictionaries(
    st.sampled_from(RECOGNIZER_NAMES),
    st.lists(st.integers(0, 9), max_size=3).map(lambda shape: torch.zeros(shape)),
    max_size=12,
)


def check_model_file(data: bytes, tmp: Path) -> None:
    """Read arbitrary bytes as a user's model file (and recognize its state_dict): a one-line LstmEdgeError is
    the only failure allowed; anything else escapes to the fuzz test."""
    path = tmp / "m.pt"
    path.write_bytes(data)
    try:
        mf = read_model(path)
        if mf.checkpoint is None:
            recognize(mf.state_dict)
    except LstmEdgeError:
        pass


def check_recognizer(state_dict: dict, head: str) -> None:
    """Recognize an arbitrary state_dict: a config with positive sizes, or a one-line LstmEdgeError."""
    try:
        rec = recognize(state_dict, head)
        assert rec.config.input_size > 0 and rec.config.hidden_size > 0
    except LstmEdgeError:
        pass


def check_checkpoint(data: bytes, tmp: Path) -> None:
    """Read and load arbitrary bytes as an lstm-edge checkpoint: a one-line LstmEdgeError is the only failure."""
    path = tmp / "c.pt"
    path.write_bytes(data)
    try:
        read_checkpoint(path)
        load_checkpoint(path)
    except LstmEdgeError:
        pass


@st.composite
def manifests(draw, good: dict) -> dict | object:
    """Arbitrary JSON, or the valid manifest `good` with 1-4 fields replaced by arbitrary JSON."""
    if draw(st.booleans()):
        return draw(json_values)
    m = json.loads(json.dumps(good))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(["config", "artifacts", "format_version", "name", "format"]))
        if key == "artifacts" and isinstance(m["artifacts"], dict) and draw(st.booleans()):
            variant = draw(st.sampled_from(["fp32", "int8", "checkpoint", "golden"]))
            field = draw(st.sampled_from(["path", "sha256", "precision", "report"]))
            entry = m["artifacts"].setdefault(variant, {})
            if isinstance(entry, dict):
                entry[field] = draw(json_values)
        elif key == "config" and isinstance(m["config"], dict) and m["config"] and draw(st.booleans()):
            m["config"][draw(st.sampled_from(list(m["config"])))] = draw(json_values)
        else:
            m[key] = draw(json_values)
    return m


def check_manifest(manifest, tmp: Path, source: Path) -> None:
    """Open a bundle in tmp with this manifest and copies of bundle `source`'s artifacts (copies: a symlink out of
    the bundle is refused by Bundle.locate, and every example would stop there)."""
    root = tmp / "bundle"
    root.mkdir(exist_ok=True)
    for f in ("model.onnx", "golden.npz", "model.int8.onnx"):
        if not (root / f).exists():
            shutil.copyfile(source / f, root / f)
    (root / "manifest.json").write_text(json.dumps(manifest))
    try:
        b = Bundle.open(root)
        assert b.config.hidden_size > 0
        for v in b.variants():
            b.entry(v)
            b.artifact(v)
        b.golden()
    except LstmEdgeError:
        pass


input_files = st.tuples(
    st.sampled_from([".npy", ".npz", ".csv", ".json"]),
    st.one_of(
        st.binary(max_size=512),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.lists(st.lists(st.floats(width=32), min_size=1, max_size=4), max_size=6).map(
            lambda rows: "\n".join(",".join(map(str, r)) for r in rows).encode()
        ),
    ),
)


def check_input(spec: tuple[str, bytes], tmp: Path, runner) -> None:
    """Read arbitrary bytes as a --input file (spec: suffix, bytes) and check them against `runner`: a one-line
    LstmEdgeError is the only failure allowed."""
    suffix, data = spec
    path = tmp / f"in{suffix}"
    path.write_bytes(data)
    try:
        x, state = read_input(str(path))
        runner.check_inputs(x, state)
    except LstmEdgeError:
        pass

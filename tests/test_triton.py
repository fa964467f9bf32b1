"""`lstm-edge bundle --target triton`: config.pbtxt parsed by Triton's own ModelConfig protobuf and checked against
the ONNX file; the wrapped model, driven the way Triton's sequence batcher drives it, matches our stream exactly.

Triton itself does not run here (no Docker engine on these machines); README gives the `docker run` line.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from google.protobuf import text_format

from lstm_edge.cli import main
from lstm_edge.runtimes import open_runner
from lstm_edge.targets.triton import check_against_onnx, model_config_pb2

pytest.importorskip("tritonclient", reason="tritonclient is in the test extra")


def _repo(bundle, tmp_path, variant="fp32", *extra):
    out = tmp_path / f"triton-{variant}"
    r = CliRunner().invoke(main, ["bundle", str(bundle), "--target", "triton", "--variant", variant, "--out", str(out), *extra])  # fmt: skip
    assert r.exit_code == 0, r.output
    return out / "adding"


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_config_parses_as_triton_model_config_and_matches_onnx(shipped_bundle, tmp_path, variant):
    folder = _repo(shipped_bundle, tmp_path, variant, "--max-batch", "32")
    text = (folder / "config.pbtxt").read_text()
    pb = model_config_pb2()
    cfg = text_format.Parse(text, pb.ModelConfig())  # raises on any field Triton would not know
    assert cfg.backend == "onnxruntime" and cfg.max_batch_size == 32
    assert cfg.WhichOneof("scheduling_choice") == "sequence_batching"
    sb = cfg.sequence_batching
    assert sb.WhichOneof("strategy_choice") == "oldest" and list(sb.oldest.preferred_batch_size) == [32]
    kinds = {ci.name: pb.ModelSequenceBatching.Control.Kind.Name(ci.control[0].kind) for ci in sb.control_input}
    assert kinds == {
        "START": "CONTROL_SEQUENCE_START",
        "READY": "CONTROL_SEQUENCE_READY",
        "END": "CONTROL_SEQUENCE_END",
    }
    assert [(s.input_name, s.output_name, list(s.dims)) for s in sb.state] == [
        ("h_state", "h_state_out", [2, 64]),
        ("c_state", "c_state_out", [2, 64]),
    ]
    assert all(len(s.initial_state) == 1 and s.initial_state[0].zero_data for s in sb.state)
    assert (
        cfg.instance_group[0].count == 1 and pb.ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind) == "KIND_CPU"
    )
    assert check_against_onnx(text, folder / "1" / "model.onnx") == []


def test_check_catches_a_mismatch(shipped_bundle, tmp_path):
    folder = _repo(shipped_bundle, tmp_path)
    text = (
        (folder / "config.pbtxt")
        .read_text()
        .replace("dims: [ 2, 64 ]\n      initial", "dims: [ 64, 2 ]\n      initial", 1)
    )
    problems = check_against_onnx(text, folder / "1" / "model.onnx")
    assert any("h_state" in p and "[-1, 64, 2]" in p for p in problems), problems
    both = text + "\ndynamic_batching { }\n"  # one oneof in ModelConfig: Triton's parser refuses both
    with pytest.raises(text_format.ParseError):
        text_format.Parse(both, model_config_pb2().ModelConfig())


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_wrapped_model_streams_like_our_runner(shipped_bundle, tmp_path, variant):
    """One request per chunk as the sequence batcher sends it: START with uninitialized (NaN) state first, then the
    state Triton carries. Same graph and inputs as our runner with state carried, so y is bit-identical."""
    folder = _repo(shipped_bundle, tmp_path, variant)
    sess = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 30, 2)).astype(np.float32)
    chunks = [x[:, i : i + 10] for i in range(0, 30, 10)]
    B, ones, zeros = 3, np.ones((3, 1), np.int32), np.zeros((3, 1), np.int32)
    h = np.full((B, 2, 64), np.nan, np.float32)
    c = h.copy()
    with open_runner(shipped_bundle, variant=variant) as runner:
        state = None
        for i, xc in enumerate(chunks):
            feeds = {
                "x": xc,
                "START": ones if i == 0 else zeros,
                "READY": ones,
                "END": zeros,
                "h_state": h,
                "c_state": c,
            }
            y, h, c = sess.run(["y", "h_state_out", "c_state_out"], feeds)
            want, state = runner.run(xc, state)
            assert np.array_equal(y, want)
            assert np.array_equal(h, state[0].transpose(1, 0, 2)) and np.array_equal(c, state[1].transpose(1, 0, 2))
        # a slot that is not READY keeps its state untouched
        ready = np.array([[1], [0], [1]], np.int32)
        feeds = {"x": chunks[0], "START": zeros, "READY": ready, "END": zeros, "h_state": h, "c_state": c}
        _, h2, _ = sess.run(["y", "h_state_out", "c_state_out"], feeds)
        assert np.array_equal(h2[1], h[1]) and not np.array_equal(h2[0], h[0])


def test_bad_max_batch_is_one_line(shipped_bundle, tmp_path):
    r = CliRunner().invoke(main, ["bundle", str(shipped_bundle), "--target", "triton", "--out", str(tmp_path / "t"), "--max-batch", "0"])  # fmt: skip
    assert r.exit_code == 2 and r.output.startswith("error: --max-batch 0") and not (tmp_path / "t").exists()

"""ONNX files lstm-edge did not write (issue 16): the float64 reference, running by names, lint traps, import."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.runtimes.base import RunnerOptions, resolve
from lstm_edge.runtimes.onnx_reference import OnnxReferenceRunner, double_model
from lstm_edge.tolerances import FP32_ABS, MAPPING_F64, scaled_error

F32 = TensorProto.FLOAT


def lstm_node_model(
    T="T", B="B", F=2, H=3, direction="forward", layout=0, peephole=False, seq_lens=False, state=True, seed=0
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One ONNX LSTM node as the operator's own examples write it (X [T, B, F], weights as initializers), with
    feeds for T=5, B=3 (random state)."""
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    inits = {
        "W": rng.normal(0, 0.5, (D, 4 * H, F)),
        "R": rng.normal(0, 0.5, (D, 4 * H, H)),
        "B": rng.normal(0, 0.5, (D, 8 * H)),
    }
    if peephole:
        inits["P"] = rng.normal(0, 0.5, (D, 3 * H))
    x_dims, s_dims = ([B, T, F], [B, D, H]) if layout else ([T, B, F], [D, B, H])
    ins = [helper.make_tensor_value_info("X", F32, x_dims)]
    node_in = ["X", "W", "R", "B", "seq_lens" if seq_lens else "", "h0" if state else "", "c0" if state else ""]
    if seq_lens:
        ins.append(helper.make_tensor_value_info("seq_lens", TensorProto.INT32, [B]))
    if state:
        ins += [helper.make_tensor_value_info(n, F32, s_dims) for n in ("h0", "c0")]
    if peephole:
        node_in.append("P")
    node = helper.make_node(
        "LSTM", node_in, ["Y", "Y_h", "Y_c"], hidden_size=H, direction=direction, layout=layout, name="lstm"
    )
    outs = [helper.make_tensor_value_info(n, F32, None) for n in ("Y", "Y_h", "Y_c")]
    g = helper.make_graph(
        [node], "foreign", ins, outs, [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    Tn, Bn = 5, 3
    feeds = {"X": rng.normal(size=(Bn, Tn, F) if layout else (Tn, Bn, F)).astype(np.float32)}
    if seq_lens:
        feeds["seq_lens"] = np.array([5, 2, 4], np.int32)
    if state:
        feeds |= {n: rng.normal(size=(Bn, D, H) if layout else (D, Bn, H)).astype(np.float32) for n in ("h0", "c0")}
    return m, feeds


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds), strict=True))


def reference(path) -> OnnxReferenceRunner:
    return OnnxReferenceRunner(resolve(path), RunnerOptions())


# ---- the float64 reference ------------------------------------------------------------------------------------


def test_double_model_casts_everything_float():
    m, _ = lstm_node_model()
    m.graph.node.insert(0, helper.make_node("Constant", [], ["k"], value_float=2.0))
    m.graph.node.append(helper.make_node("Cast", ["Y_h"], ["Y_h32"], to=F32))
    d = double_model(m)
    assert all(t.data_type == TensorProto.DOUBLE for t in d.graph.initializer)
    assert d.graph.node[0].attribute[0].t.data_type == TensorProto.DOUBLE
    assert d.graph.node[-1].attribute[0].i == TensorProto.DOUBLE
    assert all(v.type.tensor_type.elem_type == TensorProto.DOUBLE for v in (*d.graph.input, *d.graph.output))
    assert m.graph.initializer[0].data_type == F32  # the original is untouched


def test_reference_runner_on_a_bundle(small_bundle):
    """Equal to ORT CPU within float32 noise, and to the torch float64 reference to float64 noise."""
    ref = lstm_edge.load(small_bundle, provider="reference")
    torch64 = lstm_edge.load(small_bundle, provider="torch", float64=True)
    for a in Bundle.open(small_bundle).golden().values():
        y, (h, c) = ref.run(a["x"], (a["h0"], a["c0"]))
        assert y.dtype == np.float64
        for name, got in (("y", y), ("hn", h), ("cn", c)):
            assert scaled_error(a[name], got).max() <= FP32_ABS
        y64, (h64, c64) = torch64.run(a["x"], (a["h0"], a["c0"]))
        assert scaled_error(c, c64).max() <= MAPPING_F64 and scaled_error(y, y64).max() <= MAPPING_F64
    assert ref.describe()["precision"] == "fp64"


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_reference_runner_on_foreign_lstm_with_lengths(direction, tmp_path):
    """sequence_lens, which onnx.reference itself ignores, is honoured per the spec — equal to ORT."""
    m, feeds = lstm_node_model(direction=direction, seq_lens=True)
    onnx.save(m, str(tmp_path / "m.onnx"))
    got = reference(tmp_path / "m.onnx").run_feeds(feeds)
    for name, want in ort_run(m, feeds).items():
        assert scaled_error(want, got[name]).max() <= FP32_ABS, name


def test_reference_refuses_what_it_would_compute_wrongly(tmp_path):
    m, _ = lstm_node_model()
    m.graph.node[0].attribute.append(helper.make_attribute("clip", 1.0))
    onnx.save(m, str(tmp_path / "m.onnx"))
    with pytest.raises(lstm_edge.LstmEdgeError, match="clip, which onnx.reference ignores"):
        reference(tmp_path / "m.onnx")

"""The per-step float32 allowance in tolerances rests on a measured sigmoid bias: re-measure it on this machine."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from lstm_edge.environment import available_providers
from lstm_edge.tolerances import FP32_ABS, FP32_SIGMOID_BIAS_PER_STEP, fp32_tolerance


def _worst_bin_bias(run) -> float:
    """The largest |mean error| of a sigmoid over 0.25-wide bins of z ∈ [-16, 16), against float64."""
    z = np.linspace(-16, 16, 1_000_000, endpoint=False).astype(np.float32)
    d = run(z).astype(np.float64) - 1 / (1 + np.exp(-z.astype(np.float64)))
    bins = ((z + 16) * 4).astype(int)
    return float(np.abs(np.bincount(bins, d) / np.bincount(bins)).max())


def _sigmoid_model(tmp_path):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n"]) for n in ("z", "s")]
    graph = helper.make_graph([helper.make_node("Sigmoid", ["z"], ["s"])], "sigmoid", [vi[0]], [vi[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "sigmoid.onnx"))
    return tmp_path / "sigmoid.onnx"


@pytest.mark.skipif(available_providers()["tract"] is not None, reason="tract not installed")
def test_tract_sigmoid_bias_within_its_allowance(tmp_path):
    import tract

    runnable = tract.onnx().load(str(_sigmoid_model(tmp_path))).into_model().into_runnable()
    bias = _worst_bin_bias(lambda z: runnable.run([z])[0].to_numpy())
    # The allowance is the measured bias, not a round number far above it: within a factor of 2 either way.
    assert FP32_SIGMOID_BIAS_PER_STEP["tract"] / 2 <= bias <= FP32_SIGMOID_BIAS_PER_STEP["tract"]


def test_ort_sigmoid_is_an_order_of_magnitude_less_biased_and_its_allowance_is_its_bias(tmp_path):
    """ORT CPU's Sigmoid bias near saturation (1.77e-8 measured) is its per-step allowance, as tract's is its own:
    a B=16, T=1000 draw of the parity matrix reached 1.42e-5 > FP32_ABS with it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(_sigmoid_model(tmp_path)), providers=["CPUExecutionProvider"])
    bias = _worst_bin_bias(lambda z: session.run(None, {"z": z})[0])
    assert bias <= FP32_SIGMOID_BIAS_PER_STEP["tract"] / 10
    assert FP32_SIGMOID_BIAS_PER_STEP["cpu"] / 2 <= bias <= FP32_SIGMOID_BIAS_PER_STEP["cpu"]
    assert FP32_ABS < fp32_tolerance(1000, "cpu") < fp32_tolerance(1000, "tract")

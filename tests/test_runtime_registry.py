"""The one table of runtimes (lstm_edge.runtimes.RUNTIMES): every entry complete, every usable runner importable, and
what environment, tolerances and the runners' trait refusals say agrees with it."""

from __future__ import annotations

import pytest

from lstm_edge.environment import DISTRIBUTIONS, available_providers
from lstm_edge.errors import LstmEdgeError
from lstm_edge.onnx_io import RECURRENT_TRAITS
from lstm_edge.runtimes import RUNTIMES, Runner, RuntimeInfo, open_runner
from lstm_edge.runtimes.registry import RUNS_CORRECTLY, RUNTIME_LIMITS
from lstm_edge.tolerances import FP32_ABS, FP32_SIGMOID_BIAS_PER_STEP, fp32_tolerance

PROVIDERS = ["torch", "cpu", "cuda", "openvino", "tract", "reference", "c"]


def test_keys_and_order_are_the_provider_names():
    assert list(RUNTIMES) == PROVIDERS
    assert all(isinstance(info, RuntimeInfo) and info.provider == p for p, info in RUNTIMES.items())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_entry_is_complete(provider):
    info = RUNTIMES[provider]
    assert info.runtime and info.summary and "\n" not in info.summary
    module, _, cls = info.runner.partition(":")
    assert module.startswith("lstm_edge.runtimes.") and cls
    assert info.extra is None or info.extra.strip()
    assert all(d.strip() for d in info.distributions)
    assert info.fp32_drift_per_step >= 0 and fp32_tolerance(1000, provider) > 0 and info.fp32_drift_reason.strip()
    assert all(form.strip() and why.strip() for form, why in info.refusals.items())
    ok, why = info.availability()
    assert isinstance(ok, bool) and (why == "") == ok


@pytest.mark.parametrize("provider", PROVIDERS)
def test_available_runner_imports_and_matches_its_entry(provider):
    info = RUNTIMES[provider]
    ok, why = info.availability()
    if not ok:
        pytest.skip(why)
    cls = info.runner_class()
    assert issubclass(cls, Runner) and cls.runtime == info.runtime


def test_environment_reads_the_table():
    assert available_providers().keys() == {p for p, i in RUNTIMES.items() if i.deployable}
    assert available_providers() == {p: i.unavailable_reason() for p, i in RUNTIMES.items() if i.deployable}
    assert all(d in DISTRIBUTIONS for info in RUNTIMES.values() for d in info.distributions)
    assert DISTRIBUTIONS[0] == "lstm-edge" and len(set(DISTRIBUTIONS)) == len(DISTRIBUTIONS)


def test_tolerances_read_the_table():
    # the measured values (benchmarks/fp32_drift.py: each Sigmoid's worst bin mean bias near saturation)
    assert FP32_SIGMOID_BIAS_PER_STEP == {"cpu": 1.8e-8, "tract": 3.5e-7}
    for provider, info in RUNTIMES.items():
        assert fp32_tolerance(100, provider) == pytest.approx(FP32_ABS + 100 * info.fp32_drift_per_step)
    assert fp32_tolerance(100) == FP32_ABS


def test_trait_limits_come_from_the_table():
    assert set(RUNTIME_LIMITS) <= set(RECURRENT_TRAITS) and set(RUNS_CORRECTLY) <= set(RECURRENT_TRAITS)
    for trait, by_runtime in RUNTIME_LIMITS.items():
        for runtime, why in by_runtime.items():
            info = next(i for i in RUNTIMES.values() if i.runtime == runtime)
            assert info.trait_limits[trait] == why
    assert RUNTIME_LIMITS["layout-1"].keys() == {"onnxruntime", "onnxruntime-cuda", "openvino"}


def test_unknown_provider_is_one_line():
    with pytest.raises(LstmEdgeError) as e:
        open_runner("models/adding", provider="tpu")
    assert e.value.problem == "unknown provider 'tpu'"
    assert e.value.fix == "choose one of torch, cpu, cuda, openvino, tract, reference, c"


def test_variants_a_runtime_never_runs_come_from_its_refusals():
    """verify lists such a pair as unsupported, not as a variant no runtime could load (which fails the report)."""
    assert RUNTIMES["c"].variant_refusal("fp16") and RUNTIMES["c"].variant_refusal("int8-static")
    assert RUNTIMES["c"].variant_refusal("int8") is None and RUNTIMES["c"].variant_refusal("fp32") is None
    assert RUNTIMES["torch"].variant_refusal("int8") and RUNTIMES["cpu"].variant_refusal("fp16") is None

"""The parity matrix: runtime × variant × B × T × initial state × streaming chunk, against the PyTorch reference.

Tolerances come from lstm_edge.tolerances through lstm_edge.parity (the same code `lstm-edge verify` runs).
Variants that quantize marked not deployable are reported as expected failures, not failures.
"""

from __future__ import annotations

import functools

import pytest

import lstm_edge
from lstm_edge.bundle import Bundle
from lstm_edge.data import probe_inputs
from lstm_edge.environment import available_providers
from lstm_edge.errors import LstmEdgeError
from lstm_edge.parity import compare
from lstm_edge.tolerances import tolerance
from tests.conftest import SHIPPED

RUNTIMES = ["torch", "cpu", "cuda", "openvino", "tract"]
VARIANTS = ["fp32", "int8", "int8-static", "fp16"]
SHAPES = [
    pytest.param(B, T, marks=pytest.mark.slow) if (B, T) == (16, 1000) else (B, T)
    for B in (1, 4, 16)
    for T in (1, 7, 100, 1000)
]


@functools.cache
def _bundle() -> Bundle:
    return Bundle.open(SHIPPED)


@functools.cache
def _runner(provider: str, variant: str):
    reason = available_providers()[provider]
    if reason:
        return None, reason
    if provider == "torch" and variant != "fp32":
        return None, "the PyTorch reference is fp32"
    try:
        return lstm_edge.load(SHIPPED, provider=provider, variant=variant), None
    except LstmEdgeError as e:
        return None, str(e)


@functools.cache
def _reference():
    """The checkpoint in float64: every runtime, PyTorch's float32 kernel included, is judged by its own error."""
    return lstm_edge.load(SHIPPED, provider="torch", float64=True)


@functools.cache
def _case(B: int, T: int, random_state: bool):
    x, h0, c0 = probe_inputs(_bundle().config, B, T, random_state, seed=B * 10_000 + T * 2 + random_state)
    y, (h, c) = _reference().run(x, (h0, c0))
    return x, h0, c0, (y, h, c)


@pytest.mark.parametrize("state", ["zero", "random"])
@pytest.mark.parametrize("B, T", SHAPES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("provider", RUNTIMES)
def test_parity(provider, variant, B, T, state):
    runner, reason = _runner(provider, variant)
    if runner is None:
        pytest.skip(reason)
    x, h0, c0, want = _case(B, T, state == "random")
    entry = _bundle().entry(variant)
    failures = []
    runs = {"full": None, "stream:1": 1, "stream:7": 7, "stream:T": T}
    for mode, chunk in runs.items():
        if chunk is None:
            y, (h, c) = runner.run(x, (h0, c0))
        else:
            s = runner.stream(batch=B)
            s.state = (h0, c0)
            y = s.feed(x, chunk)
            h, c = s.state
        for name, a, b in zip(("y", "hn", "cn"), (y, h, c), want, strict=True):
            r = compare(a, b, tolerance(entry, T, name, provider))
            if not r["passed"]:
                failures.append(f"{mode} {name}: {r['max_scaled']:.2e} > {r['tolerance']:.0e}")
    if failures and not _bundle().entry(variant).get("deployable", True):
        pytest.xfail(f"quantize marked {variant} not deployable; {failures[0]}")
    assert not failures, failures

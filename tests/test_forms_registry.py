"""The model-forms table (lstm_edge.forms, issue 23): every form declared completely, recognized from the configs the
form tests build, its refusals word for word what codegen, the c runtime, the Triton target, OpenVINO, tract,
streaming, the intake and quantize say, and docs/forms.md up to date."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_edge.config import ModelConfig, is_seed_form
from lstm_edge.errors import LstmEdgeError
from lstm_edge.forms import (
    FORMS,
    QUANTIZE_MODES,
    forms_of,
    markdown_table,
    quantize_refusals,
    refusal,
    refusals,
    stream_refusal,
)
from tests.test_codegen_forms import EMITTED
from tests.test_codegen_forms import FORMS as REFUSED_BY_C
from tests.test_forms import FORMS as USER_FORMS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "forms.md"
WHERE = {"c", "triton", "openvino", "tract", "intake", *(f"quantize:{m}" for m in QUANTIZE_MODES)}

# tests/test_forms.py's user modules → the forms their configs are in (beside the seed's, which excludes them all)
USER_FORM_SETS = {
    "bidirectional": {"bidirectional"},
    "time-major": {"time-major"},
    "no-bias": {"no-bias"},
    "gru": {"gru"},
    "tokens": {"tokens"},
    "lengths": {"lengths"},
    "lengths-bidirectional": {"lengths", "bidirectional"},
    "projection": {"projection"},
    "projection-lengths-bidirectional": {"projection", "lengths", "bidirectional"},
    "gru-bidirectional-sequence": {"gru", "bidirectional", "time-major"},
}

# The reasons as each place printed them before the table (codegen.weights.unsupported, triton.check_triton_form,
# onnx_io.RUNTIME_LIMITS, Runner.stream, user_model.builder_limit, quant_forms.plan), word for word.
BEFORE = {
    ("bidirectional", "c"): "it is bidirectional (its backward direction reads each sequence from the end)",
    ("lengths", "c"): "it takes variable lengths (a per-sequence lengths input)",
    ("projection", "c"): "it has a projection (proj_size 2)",
    ("time-major", "c"): "it is time-major (batch_first=False)",
    ("no-bias", "c"): "it has no biases (bias=False)",
    ("head-none", "c"): "it has no Linear head (head none)",
    ("bidirectional", "triton"): "it cannot stream (bidirectional, or exported without state I/O), so there is no "
    "state to carry",
    ("gru", "triton"): "it is a GRU (the Triton target writes LSTM h and c state)",
    ("lengths", "triton"): "it takes variable lengths, which Triton's sequence batcher does not pass per request",
    ("lengths", "openvino"): "OpenVINO ignores sequence_lens (outputs past each length measured 0.40 off)",
    ("lengths", "tract"): "tract cannot load a recurrent node with sequence_lens",
    (
        "lengths",
        "intake",
    ): "weights alone cannot say a model takes lengths: its forward(x, lengths) can (save the module)",
}
STATIC = "static int8 calibrates the seed's LSTM form only (x, h0, c0); use dynamic int8 for this model"
FP16_SCAN = (
    "fp16 of the projected (Scan) form: ONNX Runtime 1.32 crashes creating a session for a float16 Scan body "
    "(measured), so no fp16 variant is made"
)


def _config(name: str) -> ModelConfig:
    """tests/test_codegen_forms.py's tiny config for form `name`."""
    fields = (REFUSED_BY_C | EMITTED)[name][0]
    return ModelConfig(**({"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2} | fields))


@pytest.mark.parametrize("name", FORMS)
def test_every_form_is_declared_completely(name):
    f = FORMS[name]
    assert f.name == name
    for text in (f.summary, f.recognized_from, f.graph, f.stream_note):
        assert text.strip() and "\n" not in text
    module, _, function = f.builder.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function)), f.builder
    for mode in QUANTIZE_MODES:  # each mode made or refused, never both, never neither
        assert (mode in f.quantize) != (f"quantize:{mode}" in f.refused_by), (name, mode)
    assert set(f.quantize) <= set(QUANTIZE_MODES) and set(f.refused_by) <= WHERE
    assert set(f.refused_only_if) <= set(f.refused_by)
    assert all(r.strip() and "\n" not in r for r in f.refused_by.values())


def test_the_table_imports_nothing_heavy():
    """Every layer reads it, so it must not pull torch or onnx in behind them (numpy comes with lstm_edge.limits,
    which ModelConfig's checks use, and is a base dependency)."""
    code = "import sys, lstm_edge.forms; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'onnxruntime'}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.parametrize("name", USER_FORM_SETS)
def test_forms_of_recognizes_each_user_module_config(name):
    assert {f.name for f in forms_of(USER_FORMS[name].config)} == USER_FORM_SETS[name]


@pytest.mark.parametrize("name", REFUSED_BY_C)
def test_forms_of_recognizes_each_codegen_config(name):
    names = [f.name for f in forms_of(_config(name))]
    assert name in names and ("seed" in names) == is_seed_form(_config(name))


def test_the_seed_is_its_own_form_and_the_fallback_a_route():
    assert [f.name for f in forms_of(ModelConfig(3))] == ["seed"]
    assert not any(FORMS["fallback"].applies(_config(n)) for n in REFUSED_BY_C | EMITTED)


@pytest.mark.parametrize("name, where", BEFORE)
def test_each_refusal_is_the_text_used_before(name, where):
    assert FORMS[name].refusal(_config(name), where) == BEFORE[name, where]
    assert refusal(_config(name), where) == BEFORE[name, where]


@pytest.mark.parametrize("name", REFUSED_BY_C)
def test_codegen_and_the_c_runtime_say_the_tables_reason(name):
    from lstm_edge.codegen.weights import check_supported, unsupported

    assert unsupported(_config(name)) == [BEFORE[name, "c"]]
    with pytest.raises(LstmEdgeError) as e:
        check_supported(_config(name))
    assert str(e.value).startswith("codegen (and the c runtime) cannot write this model as C: " + BEFORE[name, "c"])


def test_combined_reasons_keep_their_order_and_name_each_once():
    """A bidirectional GRU on token ids: codegen names the direction first (a GRU and token ids it emits since issue
    26 item 5), Triton the stream first (as before)."""
    from lstm_edge.targets.triton import check_triton_form

    c = ModelConfig(3, hidden_size=4, family="gru", bidirectional=True, vocab_size=9, lengths=True)
    assert refusals(c, "c") == [BEFORE[n, "c"] for n in ("bidirectional", "lengths")]
    with pytest.raises(LstmEdgeError) as e:
        check_triton_form(c, streaming=True)
    assert e.value.problem == "--target triton cannot serve this model as a stream: " + "; ".join(
        BEFORE[n, "triton"] for n in ("bidirectional", "gru", "lengths")
    )
    assert quantize_refusals(c) == {"static": STATIC}  # one reason, though three forms give it


@pytest.mark.parametrize("name", ["gru", "lengths"])
def test_triton_says_the_tables_reason_and_names_a_stateless_bundle_first(name):
    from lstm_edge.targets.triton import check_triton_form

    with pytest.raises(LstmEdgeError) as e:
        check_triton_form(_config(name), streaming=False)
    want = [BEFORE["bidirectional", "triton"], BEFORE[name, "triton"]]
    assert e.value.problem == "--target triton cannot serve this model as a stream: " + "; ".join(want)
    check_triton_form(_config("no-bias"), streaming=True)  # a form Triton takes: no refusal


def test_openvino_and_tract_refuse_fused_lengths_only():
    from lstm_edge.runtimes.registry import RUNTIME_LIMITS

    assert RUNTIME_LIMITS["sequence-lens"] == {p: BEFORE["lengths", p] for p in ("openvino", "tract")}
    scan = ModelConfig(3, hidden_size=4, proj_size=2, lengths=True)
    assert refusal(scan, "openvino") is None and refusal(scan, "tract") is None
    assert refusal(scan, "c") == "; ".join([BEFORE["lengths", "c"], BEFORE["projection", "c"]])


def test_stream_intake_and_quantize_read_the_table():
    from lstm_edge.export.quant_forms import plan
    from lstm_edge.export.quantize import QuantizeConfig
    from lstm_edge.export.user_model import builder_limit

    assert stream_refusal(_config("bidirectional")) == (
        "this model is bidirectional: its backward direction reads each sequence from the end, so it cannot stream "
        "one step at a time"
    )
    assert all(stream_refusal(_config(n)) is None for n in REFUSED_BY_C | EMITTED if n != "bidirectional")
    assert builder_limit(_config("lengths")) == BEFORE["lengths", "intake"] and builder_limit(_config("gru")) is None
    assert plan(QuantizeConfig(mode="all"), _config("projection")) == (
        ("dynamic",),
        {"int8-static": STATIC, "fp16": FP16_SCAN},
    )
    assert plan(QuantizeConfig(mode="all"), _config("gru")) == (("dynamic", "fp16"), {"int8-static": STATIC})
    with pytest.raises(LstmEdgeError, match="float16 Scan"):
        plan(QuantizeConfig(mode="fp16"), _config("projection"))


def test_docs_forms_md_holds_the_current_table():
    assert markdown_table() in DOCS.read_text(), (
        "docs/forms.md is out of date: paste the output of "
        "python -c \"from lstm_edge.forms import markdown_table; print(markdown_table(), end='')\""
    )

"""codegen and the `c` runtime refuse every model form the C cannot express — bidirectional, variable lengths,
projection, time-major, no biases, no head — in one line naming the form (not graph nodes) and the fix,
exit 2 from the CLI, nothing written; a unidirectional head-"final" model runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_edge
from lstm_edge.cli import main
from lstm_edge.codegen import CodegenConfig, generate
from lstm_edge.errors import LstmEdgeError
from lstm_edge.model import LSTMModel, ModelConfig
from lstm_edge.tolerances import FP32_ABS, scaled_error

# form → (ModelConfig fields, the words the refusal must say)
FORMS = {
    "bidirectional": ({"bidirectional": True}, "bidirectional"),
    "lengths": ({"lengths": True}, "variable lengths"),
    "projection": ({"proj_size": 2}, "projection"),
    "time-major": ({"batch_first": False}, "time-major"),
    "no-bias": ({"bias": False}, "no biases"),
    "head-none": ({"head": "none", "output_size": 4}, "no Linear head"),
}
# Forms the C emits since issue 26 item 5 (tests/test_codegen_gru.py): no longer refused, still built here for the
# Triton target's refusal below.
EMITTED = {"gru": ({"family": "gru"}, "GRU"), "tokens": ({"vocab_size": 20}, "token ids")}


def _bundle(root: Path, name: str, **fields) -> Path:
    from lstm_edge.export import ExportConfig, export_bundle

    cfg = ModelConfig(**({"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2} | fields))
    return export_bundle(LSTMModel(cfg).eval(), root / name, ExportConfig(name=name)).bundle


@pytest.fixture(scope="module")
def form_bundles(tmp_path_factory) -> dict[str, Path]:
    """One tiny real bundle per form (export takes ~0.4 s each)."""
    root = tmp_path_factory.mktemp("c-forms")
    out = {name: _bundle(root, name, **fields) for name, (fields, _) in (FORMS | EMITTED).items()}
    out["lengths-bidirectional"] = _bundle(root, "lengths-bidirectional", lengths=True, bidirectional=True)
    return out


@pytest.mark.parametrize("form", FORMS)
def test_c_runtime_and_codegen_refuse_the_form_in_one_line(form, form_bundles, tmp_path):
    bundle, words = form_bundles[form], FORMS[form][1]
    with pytest.raises(LstmEdgeError, match=words) as err:
        lstm_edge.load(bundle, provider="c")
    text = str(err.value)
    assert "\n" not in text and "nodes" not in text and "--provider cpu" in err.value.fix
    res = CliRunner().invoke(main, ["codegen", str(bundle), "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and words in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "c").exists()


@pytest.mark.parametrize("form", ["bidirectional", "lengths"])
def test_run_provider_c_exits_2_naming_the_form(form, form_bundles, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 5, 3), np.float32))
    res = CliRunner().invoke(main, ["run", str(form_bundles[form]), "--provider", "c", "--input", str(x)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert FORMS[form][1] in res.output and "--provider cpu" in res.output


def test_every_unsupported_trait_is_named_at_once(form_bundles, tmp_path):
    with pytest.raises(LstmEdgeError) as err:
        generate(form_bundles["lengths-bidirectional"], tmp_path / "out", CodegenConfig())
    assert "bidirectional" in err.value.problem and "variable lengths" in err.value.problem
    assert not (tmp_path / "out").exists()


def test_a_unidirectional_final_head_runs_on_c(tmp_path):
    """head "final" without lengths is the last step's h: the C's head "last" (the refusals are not over-broad)."""
    bundle = _bundle(tmp_path, "final", head="final", num_layers=2)
    x = np.random.default_rng(0).normal(size=(2, 9, 3)).astype(np.float32)
    want = lstm_edge.load(bundle, provider="torch", float64=True).run(x)[0]
    assert scaled_error(lstm_edge.load(bundle, provider="c").run(x)[0], want).max() <= FP32_ABS


@pytest.mark.parametrize(
    "form, words",
    [("bidirectional", "cannot stream"), ("gru", "it is a GRU"), ("lengths", "variable lengths")],
)
def test_triton_target_refuses_a_model_it_cannot_stream_in_one_line(form, words, form_bundles, tmp_path):
    """bundle --target triton wrote a bidirectional model with state dims [L, H] against the graph's [2L, H] (every
    request refused by ORT), and told a GRU it had no state: each is now one line, exit 2, nothing written."""
    out = tmp_path / "repo"
    res = CliRunner().invoke(main, ["bundle", str(form_bundles[form]), "--target", "triton", "--out", str(out)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and words in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_edge.model import LSTMModel, ModelConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "adding"


def make_model(input_size=3, hidden=8, layers=2, output=2, head="last", seed=0, kind="regression") -> LSTMModel:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(
        input_size=input_size,
        hidden_size=hidden,
        num_layers=layers,
        output_size=output,
        head=head,
        kind=kind,
        x_mean=rng.normal(size=input_size).tolist(),
        x_std=rng.uniform(0.5, 2, size=input_size).tolist(),
        y_mean=rng.normal(size=output).tolist() if kind == "regression" else [],
        y_std=rng.uniform(0.5, 2, size=output).tolist() if kind == "regression" else [],
    )
    return LSTMModel(cfg).eval()


@pytest.fixture(scope="session")
def shipped_bundle() -> Path:
    assert (SHIPPED / "manifest.json").is_file(), "models/adding must ship with the repository"
    return SHIPPED


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory) -> Path:
    """A small random model exported once per session: fast to run everywhere."""
    from lstm_edge.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("bundles") / "small"
    export_bundle(make_model(), out, ExportConfig(name="small"))
    return out


@pytest.fixture()
def bundle_copy(shipped_bundle, tmp_path) -> Path:
    dst = tmp_path / "adding"
    shutil.copytree(shipped_bundle, dst)
    return dst


@pytest.fixture(scope="session", autouse=True)
def c_library_cache(tmp_path_factory):
    """The `c` runner's compiled libraries go to a folder of this test session, not the user's ~/.cache."""
    import os

    old = os.environ.get("LSTM_EDGE_CACHE")
    os.environ["LSTM_EDGE_CACHE"] = str(tmp_path_factory.mktemp("lstm-edge-cache"))
    yield Path(os.environ["LSTM_EDGE_CACHE"])
    if old is None:
        os.environ.pop("LSTM_EDGE_CACHE", None)
    else:
        os.environ["LSTM_EDGE_CACHE"] = old

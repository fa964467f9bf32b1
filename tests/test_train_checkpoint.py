"""Training beats the baseline; checkpoints round-trip; bad files give one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_edge.checkpoint import load_checkpoint, save_checkpoint
from lstm_edge.data import adding_problem, load_task, metric
from lstm_edge.errors import LstmEdgeError
from lstm_edge.train import TrainConfig, train, train_to_file


def test_adding_task_definition():
    X, y = adding_problem(500, 20, seed=3)
    assert X.shape == (500, 20, 2) and y.shape == (500, 1)
    assert (X[..., 1].sum(axis=1) == 2).all()
    first, second = X[:, :10, 1].argmax(1), X[:, 10:, 1].argmax(1) + 10
    np.testing.assert_allclose(y[:, 0], X[np.arange(500), first, 0] + X[np.arange(500), second, 0], rtol=1e-6)
    assert abs(float(np.mean((y - 1.0) ** 2)) - 0.167) < 0.03  # the always-1.0 baseline


def test_short_training_beats_baseline_and_round_trips(tmp_path):
    cfg = TrainConfig(seq_len=20, samples=3000, hidden_size=32, epochs=6, lr=5e-3, int8_aware_epochs=0, progress=False)
    result = train_to_file(cfg, tmp_path / "m.pt")
    assert result.metrics["val_mse"] < 0.05 < result.metrics["baseline_mse"] / 2
    assert (tmp_path / "m.curve.png").stat().st_size > 1000
    model, config = load_checkpoint(tmp_path / "m.pt")
    x = torch.rand(4, 20, 2)
    with torch.no_grad():
        np.testing.assert_array_equal(model(x)[0].numpy(), result.model(x)[0].numpy())
    assert config.task == "adding" and config.x_std


def test_int8_aware_training_end_to_end(tmp_path):
    """train --int8-aware-epochs → export → quantize: the deployed ORT int8 variant is the one the fine-tuning
    simulated (same metric on the same data), and the report says the fp32 baseline moved."""
    from click.testing import CliRunner

    from lstm_edge.bundle import Bundle
    from lstm_edge.cli import main
    from lstm_edge.int8_sim import OrtDynamicInt8
    from lstm_edge.train import _predict

    ckpt, bundle = tmp_path / "m.pt", tmp_path / "b"
    args = ["--seq-len", "20", "--samples", "1500", "--hidden-size", "16", "--epochs", "3", "--lr", "5e-3"]
    r = CliRunner().invoke(main, ["train", *args, "--int8-aware-epochs", "2", "--out", str(ckpt)])
    assert r.exit_code == 0 and "int8-aware fine-tuning kept epoch" in r.output, r.output
    model, config = load_checkpoint(ckpt)
    assert config.x_min[1] == 0.0 and config.x_max[1] == 1.0 and config.x_min[0] < 0.01 < 0.99 < config.x_max[0]
    tuned = torch.load(ckpt, weights_only=True)["metrics"]["int8_aware"]
    assert len(tuned["history"]) == 3 and 0 <= tuned["kept_epoch"] <= 2
    assert CliRunner().invoke(main, ["export", str(ckpt), "--out", str(bundle)]).exit_code == 0
    r = CliRunner().invoke(main, ["quantize", str(bundle), "--mode", "dynamic", "--max-metric-drop", "1"])
    assert r.exit_code == 0, r.output
    report = Bundle.open(bundle).entry("int8")["report"]
    assert report["settings"]["input_equalization"]["source"].startswith("training data")
    assert report["metric"]["int8_aware_training"]["kept_epoch"] == tuned["kept_epoch"]
    X, y = adding_problem(512, 20, 1_000_003)  # quantize's held-out data for seed 0
    simulated = metric("regression", _predict(model, X, batch=256, int8=OrtDynamicInt8()), y)[1]
    assert abs(report["metric"]["variant"] / simulated - 1) < 0.05  # ORT splits batches over threads: not bit-equal


def test_digits_classification_trains():
    pytest.importorskip("sklearn")
    data = load_task("digits", seed=0)
    assert data.kind == "classification" and data.X.shape[1:] == (8, 8)
    cfg = TrainConfig(task="digits", hidden_size=32, epochs=4, lr=1e-2, int8_aware_epochs=0, progress=False)
    result = train(cfg, data)
    assert result.metrics["val_accuracy"] > 60.0  # chance is 10%


def test_user_npz_and_csv(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 5, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=X.sum(axis=(1, 2)))
    data = load_task("custom", data=str(tmp_path / "d.npz"))
    assert data.kind == "regression" and data.output_size == 1
    rows = ["sequence,a,b,target"] + [f"{s},{t},{t * 2},{s % 3}" for s in range(9) for t in range(4)]
    (tmp_path / "d.csv").write_text("\n".join(rows))
    data = load_task("custom", data=str(tmp_path / "d.csv"))
    assert data.kind == "classification" and data.X.shape == (9, 4, 2) and data.output_size == 3
    assert metric("classification", np.eye(3)[[0, 1]], np.array([0, 2]))[1] == 50.0


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "is empty"),
        (b"\x00\x01garbage" * 50, "not a readable PyTorch checkpoint"),
        ("truncated", "not a readable PyTorch checkpoint"),
        ("foreign", "not an lstm-edge checkpoint"),
        ("pickled", "pickled Python objects"),
    ],
)
def test_bad_checkpoints_give_one_clear_error(tmp_path, content, needle):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        good = tmp_path / "good.pt"
        from tests.conftest import make_model

        save_checkpoint(make_model(), good)
        path.write_bytes(good.read_bytes()[:300])
    elif content == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif content == "pickled":
        torch.save(torch.nn.Linear(2, 2), path)
    else:
        path.write_bytes(content)
    with pytest.raises(LstmEdgeError, match=needle):
        load_checkpoint(path)


def test_directory_and_missing_checkpoint(tmp_path):
    with pytest.raises(LstmEdgeError, match="directory"):
        load_checkpoint(tmp_path)
    with pytest.raises(LstmEdgeError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_task_split_is_one_typed_record():
    """Quantize's held-out data follows from the recorded TaskSpec, in new checkpoints and in the old layout (the
    TrainConfig dict): renaming a TrainConfig field fails here instead of silently changing quantize's data."""
    from dataclasses import asdict

    from lstm_edge.data import TaskSpec, held_out

    cfg = TrainConfig(seq_len=7, seed=3)
    new, old = {"task": asdict(cfg.task_spec())}, {"config": asdict(cfg), "seed": cfg.seed}
    assert TaskSpec.recorded("adding", new) == TaskSpec.recorded("adding", old) == cfg.task_spec()
    assert TaskSpec.recorded("custom", None) == TaskSpec(task="custom", seq_len=100, seed=0)
    X, y = held_out(TaskSpec(seq_len=20), "test", 512)
    X0, y0 = adding_problem(512, 20, 1_000_003)  # the draws the shipped bundle's metrics were measured on
    assert np.array_equal(X, X0) and np.array_equal(y, y0)
    with pytest.raises(LstmEdgeError, match="--data"):
        held_out(TaskSpec(task="custom"), "train", 8)


def test_train_from_checkpoint_fine_tunes_on_its_recorded_split(tmp_path):
    """`train --from CKPT --epochs 0 --int8-aware-epochs N`: the int8 fine-tuning of a model trained earlier, on the
    data split recorded in it (not the CLI's defaults), with where it came from recorded; what --from fixes is
    refused when given, and forms the fine-tuning cannot simulate are refused in one line."""
    from click.testing import CliRunner

    from lstm_edge.atomic import sha256_file
    from lstm_edge.cli import main
    from lstm_edge.config import ModelConfig
    from lstm_edge.model import LSTMModel

    base, tuned = tmp_path / "base.pt", tmp_path / "tuned.pt"
    args = ["--seq-len", "12", "--samples", "600", "--hidden-size", "8", "--epochs", "2", "--seed", "3"]
    assert CliRunner().invoke(main, ["train", *args, "--int8-aware-epochs", "0", "--out", str(base)]).exit_code == 0
    r = CliRunner().invoke(
        main, ["train", "--from", str(base), "--epochs", "0", "--int8-aware-epochs", "1", "--int8-scheme", "c",
               "--out", str(tuned)]
    )  # fmt: skip
    assert r.exit_code == 0 and "int8-aware fine-tuning kept epoch" in r.output, r.output
    assert tuned.with_suffix(".curve.png").stat().st_size > 1000  # the fine-tuning epochs alone
    payload = torch.load(tuned, weights_only=True)
    assert payload["training"]["task"] == {"task": "adding", "seq_len": 12, "samples": 600, "seed": 3, "data": None}
    assert payload["training"]["from"]["sha256"] == sha256_file(base)
    assert len(payload["metrics"]["int8_aware"]["history"]) == 2
    _, config = load_checkpoint(tuned)
    assert config.x_min and config.x_max  # the C scheme's input range, recorded for codegen

    more = tmp_path / "more.pt"  # fp32 epochs from a trained model never end worse than where they started
    r = CliRunner().invoke(
        main,
        ["train", "--from", str(base), "--epochs", "1", "--lr", "0.5", "--int8-aware-epochs", "0", "--out", str(more)],
    )
    assert r.exit_code == 0, r.output
    base_val = torch.load(base, weights_only=True)["metrics"]["val_mse"]
    assert torch.load(more, weights_only=True)["metrics"]["val_mse"] <= base_val * (1 + 1e-6)

    r = CliRunner().invoke(main, ["train", "--from", str(base), "--hidden-size", "16", "--out", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "--hidden-size cannot be combined with --from" in r.output
    gru = tmp_path / "gru.pt"
    cfg = ModelConfig(family="gru", input_size=2, hidden_size=4, num_layers=1, output_size=1, x_mean=[0, 0],
                      x_std=[1, 1], y_mean=[0], y_std=[1])  # fmt: skip
    save_checkpoint(LSTMModel(cfg), gru)
    r = CliRunner().invoke(main, ["train", "--from", str(gru), "--epochs", "1", "--out", str(tmp_path / "y.pt")])
    assert r.exit_code == 2 and "lstm-edge's own form only" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "y.pt").exists()

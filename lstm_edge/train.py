"""The training loop: Adam, MSE (regression) or cross-entropy (classification), early stopping, a curve PNG."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstm_edge.atomic import atomic_write_bytes, sha256_file
from lstm_edge.c_int8_sim import CInt16x8
from lstm_edge.checkpoint import load_checkpoint, provenance, read_checkpoint, save_checkpoint
from lstm_edge.data import TaskData, TaskSpec, metric
from lstm_edge.errors import LstmEdgeError
from lstm_edge.int8_sim import OrtDynamicInt8
from lstm_edge.model import LSTMModel, ModelConfig
from lstm_edge.plots import png_bytes, pyplot
from lstm_edge.progress import progress_bar


@dataclass
class TrainConfig:
    """Everything `lstm-edge train` takes: the task's data (task, seq_len, samples, seed, data), the model's size,
    and the optimizer's schedule. lr is Adam's learning rate; epochs and patience count whole passes."""

    task: str = "adding"
    seq_len: int = 100
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    samples: int = 12000
    patience: int = 4
    # Fine-tuning through simulated int8 after fp32 training (see int8_aware). 2 by default: on the default adding
    # model ORT's int8 went +35% → −0.75% MSE (deployable) and its fp32 improved 1.355e-4 → 1.152e-4, for +41 s on
    # the 101 s of fp32 training; re-measured 2026-11-29: int8 −6.0%, fp32 9.52e-5 → 9.39e-5 (README, Tasks).
    int8_aware_epochs: int = 2
    int8_scheme: str = "ort"  # whose int8 to fine-tune for: "ort" (ONNX Runtime's dynamic int8) or "c" (codegen's)
    seed: int = 0
    data: str | None = None
    progress: bool = True
    init: str | None = None  # start from this checkpoint (its model, normalization and data split); see from_checkpoint

    def task_spec(self) -> TaskSpec:
        """The data this configuration trains on, as the one typed record that quantize later reads back."""
        return TaskSpec(task=self.task, seq_len=self.seq_len, samples=self.samples, seed=self.seed, data=self.data)


@dataclass
class TrainResult:
    """The trained model (eval mode, best epoch's weights), its metrics (val/test, seconds, int8_aware when asked),
    the per-epoch history, and the wall time in seconds."""

    model: LSTMModel
    metrics: dict
    history: list[dict]
    seconds: float


def _predict(model: LSTMModel, X: np.ndarray, batch: int = 512, int8: OrtDynamicInt8 | None = None) -> np.ndarray:
    def run(xb: torch.Tensor) -> torch.Tensor:
        return (int8.forward(model, xb) if int8 else model(xb))[0]

    with torch.no_grad():
        return np.concatenate([run(torch.from_numpy(X[i : i + batch])).numpy() for i in range(0, len(X), batch)])


def _epoch(
    forward: Callable[[torch.Tensor], torch.Tensor],
    model: LSTMModel,
    X: torch.Tensor,
    y: torch.Tensor,
    y_scale: torch.Tensor | None,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    batch_size: int,
    per_batch: Callable[[], None] | None = None,
) -> float:
    """One pass over (X, y) in a shuffled order drawn from `gen`: loss, gradient clipped to norm 1, optimizer step.

    The one training loop of both fp32 training and int8-aware fine-tuning; they differ in `forward` (the float
    model or the simulated int8 one) and in the schedule (`per_batch` steps a per-batch scheduler). Loss is
    cross-entropy when `y_scale` is None (classification), else MSE on targets divided by `y_scale`, so the learning
    rate means the same for any units. Returns the mean loss over the epoch's batches.
    """
    model.train()
    perm = torch.randperm(len(X), generator=gen)
    running = 0.0
    for k, i in enumerate(range(0, len(perm), batch_size)):
        idx = perm[i : i + batch_size]
        y_hat = forward(X[idx])
        if y_scale is None:
            loss = nn.functional.cross_entropy(y_hat, y[idx])
        else:
            loss = nn.functional.mse_loss(y_hat / y_scale, y[idx] / y_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if per_batch is not None:
            per_batch()
        running += (loss.item() - running) / (k + 1)
    model.eval()
    return running


def _int8_scheme(name: str):
    """The simulated int8 arithmetic to fine-tune through: ORT's dynamic int8, or codegen's int8 C (c_int8_sim)."""
    if name == "ort":
        return OrtDynamicInt8()
    if name == "c":
        return CInt16x8()
    raise LstmEdgeError(f"--int8-scheme {name!r}", "choose ort (ONNX Runtime's int8) or c (lstm-edge codegen's int8 C)")


def int8_aware(model: LSTMModel, data: TaskData, cfg: TrainConfig) -> dict:
    """Fine-tune `model` through ONNX Runtime's dynamic int8 arithmetic (lstm_edge.int8_sim), or with
    cfg.int8_scheme == "c" through codegen's int8 C (lstm_edge.c_int8_sim, bit for bit the C), in place.

    Post-training quantization leaves error that no choice of scales removes: h is rounded to 256 levels at every
    step and the error compounds over T. Training through that rounding (straight-through gradients) moves the
    weights to where it costs less. Learning rate lr/20 on a cosine schedule; the epoch with the best int8
    validation metric is kept (the starting point included), since the int8 variant is what will be deployed.

    Args:
        model: a trained model; its weights change in place (to those of the kept epoch).
        data: the task it was trained on (train for the gradient, val to choose the epoch, test to report).
        cfg: batch_size, lr, seed, progress and int8_aware_epochs (the number of epochs) are read.

    Returns:
        {"epochs", "scheme" (cfg.int8_scheme), "kept_epoch" (0 = the starting point), "history" [{epoch, val_fp32,
        val_int8}], "test_fp32", "test_int8_simulated"} in the task's own metric (MSE or accuracy %). Raises nothing of its own.
    """
    sim = _int8_scheme(cfg.int8_scheme)
    classify = data.kind == "classification"
    X_tr, y_tr = (torch.from_numpy(a) for a in data.split("train"))
    X_va, y_va = data.split("val")
    y_scale = None if classify else torch.tensor(model.config.y_std)

    def scores() -> tuple[float, float]:
        fp32 = metric(data.kind, _predict(model, X_va), y_va)[1]
        int8 = metric(data.kind, _predict(model, X_va, int8=sim), y_va)[1]
        return fp32, int8

    def better(a: float, b: float) -> bool:
        return a > b + 1e-9 if classify else a < b * (1 - 1e-6)

    fp32_before, int8_before = scores()
    best, best_state = int8_before, copy.deepcopy(model.state_dict())
    history = [{"epoch": 0, "val_fp32": fp32_before, "val_int8": int8_before}]
    batches = -(-len(X_tr) // cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr / 20)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.int8_aware_epochs * batches))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    bar = progress_bar(range(cfg.int8_aware_epochs), desc="int8-aware", enabled=cfg.progress, unit="epoch")
    for epoch in bar:
        _epoch(lambda xb: sim.forward(model, xb)[0], model, X_tr, y_tr, y_scale, opt, gen, cfg.batch_size, sched.step)
        fp32, int8 = scores()
        history.append({"epoch": epoch + 1, "val_fp32": fp32, "val_int8": int8})
        bar.set_postfix(val_fp32=f"{fp32:.4g}", val_int8=f"{int8:.4g}")
        if better(int8, best):
            best, best_state = int8, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    X_te, y_te = data.split("test")
    return {
        "epochs": cfg.int8_aware_epochs,
        "scheme": cfg.int8_scheme,
        "kept_epoch": next(h["epoch"] for h in history if h["val_int8"] == best),
        "history": history,
        "test_fp32": metric(data.kind, _predict(model, X_te), y_te)[1],
        "test_int8_simulated": metric(data.kind, _predict(model, X_te, int8=sim), y_te)[1],
    }


def from_checkpoint(cfg: TrainConfig) -> TrainConfig:
    """`cfg` set to go on from the checkpoint cfg.init: its task, seq_len, samples, seed and data file become the
    split recorded in the checkpoint (TaskSpec.recorded), so fine-tuning sees the same train/val/test sequences the
    model was trained and judged on; a `cfg.data` given now stands in for the recorded file, which may have moved.
    Architecture and normalization come from the checkpoint itself (see train).

    Raises:
        LstmEdgeError: the checkpoint cannot be read (read_checkpoint's one line).
    """
    payload = read_checkpoint(cfg.init)
    spec = TaskSpec.recorded(payload["config"].get("task", cfg.task), payload.get("training"), cfg.data)
    return replace(cfg, task=spec.task, seq_len=spec.seq_len, samples=spec.samples, seed=spec.seed, data=spec.data)


def _start_from(path: str) -> LSTMModel:
    """The checkpoint's model; LstmEdgeError unless it has the form train builds (and int8_aware simulates)."""
    model, config = load_checkpoint(path)
    plain = (
        config.family == "lstm"
        and not (config.bidirectional or config.proj_size or config.vocab_size or config.lengths)
        and config.head in ("last", "final", "sequence")
        and config.batch_first
    )
    if not plain:
        raise LstmEdgeError(
            f"{path} is a {config.describe()}; --from continues training of lstm-edge's own form only "
            "(one-direction LSTM, float input, no projection or lengths)",
            "train that model in PyTorch, or train a new one with `lstm-edge train` (without --from)",
        )
    return model


def _fit_to_data(model: LSTMModel, data: TaskData, path: str) -> ModelConfig:
    """model.config, checked against `data`; x_min/x_max filled in from the training split where the checkpoint
    predates them (the int8 C scheme's input scale comes from that range)."""
    config = model.config
    if (config.input_size, config.kind) != (data.X.shape[-1], data.kind) or (
        config.kind == "regression" and config.output_size != data.output_size
    ):
        raise LstmEdgeError(
            f"{path} takes {config.input_size} features ({config.kind}), but the data has {data.X.shape[-1]} "
            f"({data.kind})",
            "pass the data the checkpoint was trained on with --data",
        )
    if not (config.x_min and config.x_max):
        norm = data.normalization()
        config.x_min, config.x_max = norm["x_min"], norm["x_max"]
    return config


def train(cfg: TrainConfig, data: TaskData | None = None) -> TrainResult:
    """Train a model on `data` (default: cfg.task_spec().load()) with Adam and early stopping on the val metric.

    The input/output normalization is taken from the training split and built into the model, which then takes raw
    inputs and returns outputs in the task's units. With cfg.int8_aware_epochs > 0, int8_aware fine-tuning follows.

    Returns:
        TrainResult; metrics holds "metric" (mse | accuracy), val_/test_ values, epochs, seconds, baseline_mse
        (regression: the MSE of predicting the training mean) and int8_aware (when fine-tuned).

    Raises:
        LstmEdgeError: the task's data cannot be built or read (see TaskSpec.load).
    """
    torch.manual_seed(cfg.seed)
    model = _start_from(cfg.init) if cfg.init else None  # before the data: a form it cannot train is refused first
    data = data or cfg.task_spec().load()
    model = _fresh_model(cfg, data) if model is None else model
    config = _fit_to_data(model, data, cfg.init) if cfg.init else model.config
    classify = data.kind == "classification"
    X_va, y_va = data.split("val")
    start = time.perf_counter()
    history = _fit_epochs(model, config, data, cfg)
    name, val = metric(data.kind, _predict(model, X_va), y_va)
    _, test = metric(data.kind, _predict(model, data.X[data.test]), data.y[data.test])
    fp32_only = {f"val_{name}": val, f"test_{name}": test}
    tuned = int8_aware(model, data, cfg) if cfg.int8_aware_epochs > 0 else None
    if tuned is not None:
        name, val = metric(data.kind, _predict(model, X_va), y_va)
        _, test = metric(data.kind, _predict(model, data.X[data.test]), data.y[data.test])
    seconds = time.perf_counter() - start
    metrics = {
        "metric": name,
        f"val_{name}": val,
        f"test_{name}": test,
        "epochs": len(history),
        "seconds": seconds,
    }
    if tuned is not None:
        metrics["int8_aware"] = tuned | {"fp32_only": fp32_only}
    if not classify:
        metrics["baseline_mse"] = float(np.mean((data.split("val")[1] - data.split("train")[1].mean(0)) ** 2))
    return TrainResult(model=model, metrics=metrics, history=history, seconds=seconds)


def _fresh_model(cfg: TrainConfig, data: TaskData) -> LSTMModel:
    """A new model sized by `cfg` for `data`, with the training split's normalization built in."""
    config = ModelConfig(
        input_size=data.X.shape[-1],
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        output_size=data.output_size,
        head=data.head,
        dropout=cfg.dropout,
        task=data.name,
        kind=data.kind,
        **data.normalization(),
    )
    return LSTMModel(config)


def _fit_epochs(model: LSTMModel, config: ModelConfig, data: TaskData, cfg: TrainConfig) -> list[dict]:
    """Adam over cfg.epochs with early stopping on the validation metric; `model` ends in eval mode holding its best
    epoch's weights (going on from a checkpoint, its starting weights count as a candidate). Returns the history:
    one {"epoch", "train_loss", "val_<metric>"} per epoch run."""
    classify = data.kind == "classification"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    X_tr, y_tr = (torch.from_numpy(a) for a in data.split("train"))
    X_va, y_va = data.split("val")
    # Regression loss is taken on standardized targets so the learning rate means the same for any units.
    y_scale = torch.tensor(config.y_std) if not classify else None

    best, best_state, bad, history = float("inf"), None, 0, []
    if cfg.init:  # going on from a trained model: more epochs must beat where it starts, or it is kept as it was
        _, val = metric(data.kind, _predict(model, X_va), y_va)
        best, best_state = (-val if classify else val), copy.deepcopy(model.state_dict())
    bar = progress_bar(range(cfg.epochs), desc="train", enabled=cfg.progress and bool(cfg.epochs), unit="epoch")
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in bar:
        running = _epoch(lambda xb: model(xb)[0], model, X_tr, y_tr, y_scale, opt, gen, cfg.batch_size)
        name, val = metric(data.kind, _predict(model, X_va), y_va)
        score = -val if classify else val
        sched.step(score)
        history.append({"epoch": epoch + 1, "train_loss": running, f"val_{name}": val})
        bar.set_postfix(loss=f"{running:.4f}", **{f"val_{name}": f"{val:.4f}"})
        if score < best - 1e-6:
            best, best_state, bad = score, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def train_to_file(cfg: TrainConfig, out: str | Path) -> TrainResult:
    """Train (see train), then write the checkpoint to `out` and its training curve to `out` with suffix .curve.png.

    The checkpoint records the TrainConfig, the history, provenance, and the task's split (`training["task"]`,
    asdict of cfg.task_spec()) from which quantize rebuilds the same held-out data; with cfg.init, the split recorded
    in that checkpoint (see from_checkpoint) and `training["from"]` (its path, sha256 and metrics). Both files are
    written atomically; the curve shows the int8-aware epochs after the fp32 ones. Returns the TrainResult; raises LstmEdgeError as train does, or when `out` cannot be written.
    """
    if cfg.init:
        cfg = from_checkpoint(cfg)
    result = train(cfg)
    out = Path(out)
    training = provenance(cfg.seed) | {
        "config": asdict(cfg),
        "task": asdict(cfg.task_spec()),
        "history": result.history,
    }
    if cfg.init:  # what it went on from: enough to tell the starting model and what it scored
        base = read_checkpoint(cfg.init)
        training["from"] = {"path": str(cfg.init), "sha256": sha256_file(cfg.init), "metrics": base.get("metrics")}
    save_checkpoint(result.model, out, metrics=result.metrics, training=training)
    plot_curve(result.history, out.with_suffix(".curve.png"), result.metrics.get("int8_aware"))
    return result


def plot_curve(history: list[dict], path: Path, int8_aware: dict | None = None) -> Path:
    """Plot train loss (standardized) and the val metric against epoch (log y for MSE) into the PNG at `path`,
    and, given `int8_aware` (TrainResult.metrics["int8_aware"]), its validation fp32 and simulated-int8 metric over
    the fine-tuning epochs that follow (epoch 0 of it is the end of `history`).

    `history` is TrainResult.history: dicts with "epoch", "train_loss" and one "val_<metric>" key (may be empty when
    only fine-tuning ran). Returns `path` (written atomically).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    name = "mse"
    if history:
        epochs = [h["epoch"] for h in history]
        val_key = next(k for k in history[0] if k.startswith("val_"))
        name = val_key[4:]
        ax.plot(epochs, [h["train_loss"] for h in history], label="train loss (standardized)")
        ax.plot(epochs, [h[val_key] for h in history], label=val_key)
    if int8_aware:
        start = len(history)
        tuned = int8_aware["history"]
        epochs = [start + h["epoch"] for h in tuned]
        scheme = int8_aware.get("scheme", "ort")
        ax.plot(epochs, [h["val_fp32"] for h in tuned], "--", label=f"val_{name} fp32, int8-aware ({scheme})")
        ax.plot(epochs, [h["val_int8"] for h in tuned], ":", label=f"val_{name} int8 simulated ({scheme})")
        ax.axvline(start + int8_aware["kept_epoch"], color="grey", lw=0.8)
    if "accuracy" not in name:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return atomic_write_bytes(path, png_bytes(fig, dpi=100))

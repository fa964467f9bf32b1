"""The training loop: Adam, MSE (regression) or cross-entropy (classification), early stopping, a curve PNG."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lstm_edge.checkpoint import provenance, save_checkpoint
from lstm_edge.data import TaskData, load_task, metric
from lstm_edge.model import LSTMModel, ModelConfig


@dataclass
class TrainConfig:
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
    seed: int = 0
    data: str | None = None
    progress: bool = True


@dataclass
class TrainResult:
    model: LSTMModel
    metrics: dict
    history: list[dict]
    seconds: float


def _predict(model: LSTMModel, X: np.ndarray, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(X[i : i + batch]))[0].numpy() for i in range(0, len(X), batch)])


def train(cfg: TrainConfig, data: TaskData | None = None) -> TrainResult:
    torch.manual_seed(cfg.seed)
    data = data or load_task(cfg.task, cfg.seq_len, cfg.samples, cfg.seed, cfg.data)
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
    model = LSTMModel(config)
    classify = data.kind == "classification"
    loss_fn: nn.Module = nn.CrossEntropyLoss() if classify else nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    X_tr, y_tr = (torch.from_numpy(a) for a in data.split("train"))
    X_va, y_va = data.split("val")
    # Regression loss is taken on standardized targets so the learning rate means the same for any units.
    y_scale = torch.tensor(config.y_std) if not classify else None

    best, best_state, bad, history = float("inf"), None, 0, []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="train", disable=not cfg.progress, unit="epoch")
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(X_tr), generator=gen)
        running = 0.0
        for k, i in enumerate(range(0, len(perm), cfg.batch_size)):
            idx = perm[i : i + cfg.batch_size]
            y_hat, _ = model(X_tr[idx])
            loss = loss_fn(y_hat, y_tr[idx]) if classify else loss_fn(y_hat / y_scale, y_tr[idx] / y_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            running += (loss.item() - running) / (k + 1)
        model.eval()
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
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    name, val = metric(data.kind, _predict(model, X_va), y_va)
    _, test = metric(data.kind, _predict(model, data.X[data.test]), data.y[data.test])
    metrics = {
        "metric": name,
        f"val_{name}": val,
        f"test_{name}": test,
        "epochs": len(history),
        "seconds": seconds,
    }
    if not classify:
        metrics["baseline_mse"] = float(np.mean((data.split("val")[1] - data.split("train")[1].mean(0)) ** 2))
    return TrainResult(model=model, metrics=metrics, history=history, seconds=seconds)


def train_to_file(cfg: TrainConfig, out: str | Path) -> TrainResult:
    """Train, write the checkpoint and its training-curve PNG beside it."""
    result = train(cfg)
    out = Path(out)
    training = provenance(cfg.seed) | {"config": asdict(cfg), "history": result.history}
    save_checkpoint(result.model, out, metrics=result.metrics, training=training)
    plot_curve(result.history, out.with_suffix(".curve.png"))
    return result


def plot_curve(history: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lstm_edge.atomic import atomic_write_bytes

    epochs = [h["epoch"] for h in history]
    val_key = next(k for k in history[0] if k.startswith("val_"))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss (standardized)")
    ax.plot(epochs, [h[val_key] for h in history], label=val_key)
    if "accuracy" not in val_key:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

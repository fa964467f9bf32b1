"""`lstm-edge train`: a task or the user's data → a checkpoint (.pt) and its learning curve."""

from __future__ import annotations

from pathlib import Path

import click

from lstm_edge.cli.common import handle_errors, json_option, progress_on, quiet_option, write_json
from lstm_edge.errors import LstmEdgeError

# the checkpoint fixes these; a value given beside --from would be silently ignored
FIXED_BY_CHECKPOINT = ("task", "seq_len", "samples", "seed", "hidden_size", "num_layers", "dropout")


@click.command()
@click.option("--task", default="adding", show_default=True, help="Built-in task: adding | digits.")
@click.option("--data", type=click.Path(), help="User data: .npz (X [N,T,F], y) or long-format .csv (see README).")
@click.option("--seq-len", default=100, show_default=True, help="Sequence length (adding task).")
@click.option("--hidden-size", default=64, show_default=True, help="LSTM hidden units per layer.")
@click.option("--num-layers", default=2, show_default=True, help="Stacked LSTM layers.")
@click.option("--dropout", default=0.0, show_default=True, help="Dropout between LSTM layers (0 ≤ p < 1).")
@click.option("--epochs", default=15, show_default=True, help="Upper bound; early stopping may end sooner.")
@click.option("--batch-size", default=64, show_default=True, help="Sequences per optimizer step.")
@click.option("--lr", default=2e-3, show_default=True, help="Adam learning rate.")
@click.option("--samples", default=12000, show_default=True, help="Generated sequences (adding task).")
@click.option("--patience", default=4, show_default=True, help="Epochs without improvement before stopping.")
@click.option(
    "--int8-aware-epochs",
    default=2,
    show_default=True,
    help="Then fine-tune N epochs through the --int8-scheme's int8 arithmetic (simulated), so the int8 variant keeps "
    "the accuracy; keeps the epoch with the best int8 validation metric. 0: fp32 training only.",
)
@click.option(
    "--int8-scheme",
    default="ort",
    show_default=True,
    help="Whose int8 --int8-aware-epochs fine-tunes for: ort (ONNX Runtime's dynamic int8) or c (`lstm-edge codegen "
    "--precision int8`: int8 weights, int16 activations).",
)
@click.option("--seed", default=0, show_default=True, help="Seed for the data, the split and the weights.")
@click.option(
    "--from",
    "init",
    type=click.Path(),
    help="Go on from this lstm-edge checkpoint: its model, normalization and recorded data split; --epochs 0 with "
    "--int8-aware-epochs N only fine-tunes it for int8.",
)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint path (.pt).")
@json_option  # the metrics
@quiet_option
@handle_errors
def train(out: str, json_path: str | None, **kw) -> None:
    """Train on a task or your data; writes PATH.pt and PATH.curve.png."""
    check_train_options(kw)  # before torch is imported: bad options are refused at once
    # torch deferred: `lstm-edge --help` stays fast
    from lstm_edge.train import TrainConfig, train_to_file

    result = train_to_file(TrainConfig(**kw, progress=progress_on()), out)
    write_json(json_path, result.metrics)
    m = result.metrics
    name = m["metric"]
    line = f"trained in {result.seconds:.1f}s, {m['epochs']} epochs: val {name} {m[f'val_{name}']:.5f}, test {name} {m[f'test_{name}']:.5f}"
    if "baseline_mse" in m:
        line += f" (predict-the-mean baseline {m['baseline_mse']:.4f})"
    click.echo(line)
    if "int8_aware" in m:
        q = m["int8_aware"]
        click.echo(
            f"int8-aware fine-tuning kept epoch {q['kept_epoch']}/{q['epochs']}: test {name} fp32 {q['test_fp32']:.5g}, "
            f"int8 (simulated) {q['test_int8_simulated']:.5g}; before it: fp32 {q['fp32_only'][f'test_{name}']:.5g}"
        )
    click.echo(f"wrote {out} and {Path(out).with_suffix('.curve.png')}")


def check_train_options(kw: dict) -> None:
    """The option combinations and ranges `train` refuses, before anything trains.

    Raises:
        LstmEdgeError: a model or data option given beside --from, a size below 1 (epochs below 0 with --from),
            an unknown --int8-scheme, or --int8-aware-epochs below 0.
    """
    if kw["init"]:
        ctx = click.get_current_context()
        given = [
            f"--{k.replace('_', '-')}"
            for k in FIXED_BY_CHECKPOINT
            if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise LstmEdgeError(
                f"{', '.join(given)} cannot be combined with --from (the checkpoint fixes the model and its data split)",
                "drop them, or train a new model without --from",
            )
    for key in ("seq_len", "hidden_size", "num_layers", "epochs", "batch_size", "samples"):
        least = 0 if key == "epochs" and kw["init"] else 1  # --from --epochs 0: int8-aware fine-tuning only
        if kw[key] < least:
            raise LstmEdgeError(f"--{key.replace('_', '-')} must be ≥ {least}, got {kw[key]}", f"pass {least} or more")
    if kw["int8_scheme"] not in ("ort", "c"):
        raise LstmEdgeError(f"--int8-scheme {kw['int8_scheme']!r}", "choose ort or c")
    if kw["int8_aware_epochs"] < 0:
        raise LstmEdgeError(f"--int8-aware-epochs must be ≥ 0, got {kw['int8_aware_epochs']}", "pass 0 or more")

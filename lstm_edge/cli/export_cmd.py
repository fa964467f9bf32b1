"""Commands that make or inspect a bundle's graphs: `export`, `import`, `lint`, `quantize`."""

from __future__ import annotations

import json
import sys
import textwrap

import click

from lstm_edge.cli.common import handle_errors

EXPORT_HELP = """Export a model file to a validated bundle: model.onnx, model.pt, golden.npz, manifest.json.

\b
FILE is lstm-edge's own checkpoint, or a PyTorch user's model file:
  state_dict (bare, or inside a checkpoint dict; module./model. prefixes
    stripped) - torch.load(weights_only=True): runs no code
  .safetensors - a header and raw bytes: runs no code
  pickled whole module (torch.save(model)) - needs --trust-pickle:
    unpickling can run any Python; --code FILE.py imports its class first
  TorchScript (torch.jit.save) - loading runs no Python; its forward is
    TorchScript code from the file (the TorchScript interpreter, any
    registered torch operator), run here to check the export
  torch.export .pt2 - needs --trust-pickle: torch.export.load unpickles
    its weights with weights_only=False
The structure is recognized from weight names and shapes and printed; where
the file has the model's own forward, the bundle is checked against it.
"""


@click.command(help=EXPORT_HELP)
@click.argument("checkpoint", metavar="FILE", type=click.Path())
@click.option("--out", type=click.Path(), help="Bundle folder (default: models/<name>/).")
@click.option("--opset", default=17, show_default=True, help="ONNX opset (14–22).")
@click.option("--force", is_flag=True, help="Replace an existing bundle (never a folder that is not one).")
@click.option(
    "--head",
    type=click.Choice(["last", "final", "sequence"]),
    help="What the Linear head reads, which weights cannot say: last = fc(out[:, -1]) (default), final = the "
    "final hidden state, sequence = every step. With the model's forward in the file, found by trying.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Accept files whose loading runs code from the file: pickled modules and torch.export .pt2.",
)
@click.option("--code", type=click.Path(), help="A .py file defining the model's class, imported first (runs it!).")
@click.option("--name", help="Bundle name: 1–64 of A-Z a-z 0-9 . _ - (default: the task or the file's stem).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def export(
    checkpoint: str,
    out: str | None,
    opset: int,
    force: bool,
    head: str | None,
    trust_pickle: bool,
    code: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """EXPORT_HELP is the help; prints what was recognized, the graph's nodes and the validation."""
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export import ExportConfig, export_bundle

    if trust_pickle:
        click.echo("warning: --trust-pickle lets the model file run arbitrary code while loading", err=True)
    cfg = ExportConfig(opset=opset, force=force, trust_pickle=trust_pickle, head=head, code=code, name=name)
    r = export_bundle(checkpoint, out, cfg)
    worst = max(row["max_scaled_error"] for row in r.validation)
    cases = len({(row["batch"], row["seq"], row["state"], row.get("against", "")) for row in r.validation})
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bundle": str(r.bundle),
                    "seconds": r.seconds,
                    "nodes": r.nodes,
                    "max_scaled_error": worst,
                    "recognized": r.recognized,
                    "reference": r.reference,
                    "streaming": r.streaming,
                    "findings": [f.to_dict() for f in r.findings],
                }
            )
        )
        return
    if r.recognized:
        click.echo(_block("recognized: ", r.recognized))
    nodes = ", ".join(f"{k}×{v}" for k, v in r.nodes.items())
    click.echo(f"exported {r.bundle} in {r.seconds:.2f}s — nodes: {nodes}")
    against = {
        "user-forward": "the model's own forward",
        "rebuilt-from-state-dict": "the module rebuilt from its weights",
    }.get(r.reference.get("kind", ""), "PyTorch")
    click.echo(
        f"validated in ONNX Runtime CPU against {against} at {cases} unseen shapes/states: max scaled error {worst:.2e}"
    )
    for f in r.findings:
        click.echo(f"{f.severity}: {f.code}: {f.message} — {f.fix}")


def _block(label: str, text: str, width: int = 100) -> str:
    """`text` under `label`, each line wrapped at word boundaries (never mid-identifier), continuations indented."""
    pad = " " * len(label)
    lines = [
        textwrap.fill(line, width, initial_indent=pad, subsequent_indent=pad, break_long_words=False,
                      break_on_hyphens=False)
        for line in text.splitlines()
    ]  # fmt: skip
    return label + "\n".join(lines)[len(pad) :]


@click.command()
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def lint(model: str, as_json: bool) -> None:
    """Find recurrent-model traps in an ONNX file (frozen axes, unfolded weights, layout=1, …). Exit 1 on errors."""
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.lint import lint as run_lint
    from lstm_edge.export.lint import load_onnx  # onnx, as above

    findings = run_lint(load_onnx(model))
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings]))
    elif not findings:
        click.echo(f"{model}: no findings")
    for f in [] if as_json else findings:
        click.echo(f"{f.severity}: {f.code}: {f.message} — fix: {f.fix}")
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@click.command("import")
@click.argument("model", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The bundle folder to write.")
@click.option("--rebuild", is_flag=True, help="Re-export a plain LSTM stack clean: fused nodes, state I/O, free axes.")
@click.option("--weights", type=click.Path(), help=".npz of graph inputs that are weights (W, R, B, …) to freeze.")
@click.option("--name", help="Bundle name (default: the file's stem).")
@click.option("--force", is_flag=True, help="Overwrite an existing bundle.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def import_cmd(model, out, rebuild, weights, name, force, as_json) -> None:
    """Wrap a recurrent ONNX model lstm-edge did not write into a bundle (reference: the model in float64)."""
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.importer import ImportConfig, import_onnx

    r = import_onnx(model, out, ImportConfig(force=force, rebuild=rebuild, weights=weights, name=name))
    if as_json:
        doc = {k: getattr(r, k) for k in ("rebuilt", "streaming", "notes", "max_scaled_error", "seconds")}
        click.echo(json.dumps(doc | {"bundle": str(r.bundle), "findings": [f.to_dict() for f in r.findings]}))
        return
    how = "rebuilt clean" if r.rebuilt else "wrapped (reference: the model itself in float64, onnx.reference)"
    click.echo(f"imported {model} → {r.bundle} in {r.seconds:.2f}s, {how}")
    click.echo(f"ONNX Runtime CPU against the reference: max scaled error {r.max_scaled_error:.2e}")
    for note in r.notes:
        click.echo(f"note: {note}")
    for f in r.findings:  # about the input file, which the bundle wraps (or --rebuild replaced): notes, not errors
        click.echo(f"note: {model} has lint {f.severity} {f.code}: {f.message}")


@click.command()
@click.argument("bundle", type=click.Path())
@click.option("--mode", default="all", show_default=True, help="dynamic | static | fp16 | all")
@click.option(
    "--calibration-samples", default=256, show_default=True, help="Sequences of task data for static calibration."
)
@click.option(
    "--method", default="minmax", show_default=True, help="Static calibration: minmax | entropy | percentile."
)
@click.option("--per-channel/--per-tensor", default=True, show_default=True, help="Weight scales per output channel.")
@click.option(
    "--reduce-range/--full-range",
    default=True,
    show_default=True,
    help="int8 weights in [-64, 64]: full range saturates ONNX Runtime's int8 kernels on x86 CPUs without VNNI.",
)
@click.option(
    "--max-metric-drop", type=float, help="Budget: relative MSE increase (default 0.05) or accuracy points (0.5)."
)
@click.option("--data", type=click.Path(), help="Task data (.npz/.csv) when the model's task is not built in.")
@click.option("--quantize-state", is_flag=True, help="static: let hn/cn pass through Q/DQ too (not recommended).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def quantize(
    bundle, mode, calibration_samples, method, per_channel, reduce_range, max_metric_drop, data, quantize_state, as_json
) -> None:
    """Add int8 (dynamic, static QDQ) and fp16 variants with an accuracy report; exit 1 if one is over budget."""
    # torch, onnx and onnxruntime.quantization deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.quantize import QuantizeConfig, format_report, quantize_bundle

    cfg = QuantizeConfig(
        mode=mode,
        calibration_samples=calibration_samples,
        method=method,
        per_channel=per_channel,
        reduce_range=reduce_range,
        max_metric_drop=max_metric_drop,
        data=data,
        quantize_state=quantize_state,
        progress=not as_json,
    )
    result = quantize_bundle(bundle, cfg)
    for variant, why in result.skipped.items():
        click.echo(f"skipped {variant}: {why}", err=as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(format_report(result.reports))
    click.echo(f"wrote {', '.join(result.reports)} into {result.bundle} (report: quantization.md, quantization.png)")

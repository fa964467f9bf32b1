"""Commands that make or inspect a bundle's graphs: `export`, `import`, `lint`, `quantize`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import click

from lstm_edge.bundle import bundle_root, variant_for_mode
from lstm_edge.cli.common import handle_errors, json_option, progress_on, quiet_option, write_json
from lstm_edge.limits import check_model_path
from lstm_edge.onnx_io import check_onnx_path

EXPORT_HELP = """Export a model file to a validated bundle: model.onnx, model.pt, golden.npz, manifest.json.

\b
FILE is lstm-edge's own checkpoint, or a PyTorch user's model file:
  state_dict (bare, or inside a checkpoint dict; module./model. prefixes
    stripped) - torch.load(weights_only=True): runs no code
  .safetensors - a header and raw bytes: runs no code
  pickled whole module (torch.save(model)) - needs --trust-pickle:
    unpickling can run any Python; --code FILE.py imports its class first
  TorchScript (torch.jit.save) - its forward and __setstate__ are code
    from the file (any registered torch operator): run only with
    --trust-pickle; without it, its weights are read as data
  torch.export .pt2 - needs --trust-pickle: torch.export.load unpickles
    its weights with weights_only=False
The structure is recognized from weight names and shapes and printed; where
the file has the model's own forward, the bundle is checked against it.
From weights alone a Linear head's mode is a guess: pass --head (or --code).
"""


@click.command(help=EXPORT_HELP)
@click.argument("checkpoint", metavar="FILE", type=click.Path())
@click.option("--out", type=click.Path(), help="Bundle folder (default: models/<name>/).")
@click.option("--opset", default=17, show_default=True, help="ONNX opset (14–22).")
@click.option("--force", is_flag=True, help="Replace an existing bundle (never a folder that is not one).")
@click.option(
    "--head",
    type=click.Choice(["last", "final", "sequence", "none"]),
    help="What the Linear head reads, which weights cannot say: last = fc(out[:, -1]), final = the final hidden "
    "state, sequence = every step, none = no head. With the model's forward (a trusted file, or --code), found by "
    "trying; from weights alone, required where the readings differ.",
)
@click.option(
    "--trust-pickle",
    "--trust-code",
    "trust_pickle",
    is_flag=True,
    help="Run code from the file: unpickle a whole module, run a TorchScript or .pt2 forward. Without it, "
    "TorchScript is read as weights only. (--trust-code is the same flag.)",
)
@click.option("--code", type=click.Path(), help="A .py file defining the model's class, imported first (runs it!).")
@click.option("--name", help="Bundle name: 1–64 of A-Z a-z 0-9 . _ - (default: the task or the file's stem).")
@json_option
@quiet_option
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
    json_path: str | None,
) -> None:
    """EXPORT_HELP is the help; prints what was recognized, the graph's nodes and the validation."""
    check_model_path(Path(checkpoint))  # a wrong path is refused before torch is imported
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export import ExportConfig, export_bundle

    if trust_pickle:
        click.echo(
            "warning: --trust-pickle lets the model file run code: unpickling, its TorchScript or .pt2 forward",
            err=True,
        )
    cfg = ExportConfig(opset=opset, force=force, trust_pickle=trust_pickle, head=head, code=code, name=name)
    r = export_bundle(checkpoint, out, cfg)
    worst = max(row["max_scaled_error"] for row in r.validation)
    cases = len({(row["batch"], row["seq"], row["state"], row.get("against", "")) for row in r.validation})
    write_json(
        json_path,
        {
            "bundle": str(r.bundle),
            "seconds": r.seconds,
            "nodes": r.nodes,
            "max_scaled_error": worst,
            "recognized": r.recognized,
            "reference": r.reference,
            "streaming": r.streaming,
            "findings": [f.to_dict() for f in r.findings],
        },
    )
    if r.recognized:
        click.echo(_block("recognized: ", r.recognized))
    nodes = ", ".join(f"{k}×{v}" for k, v in r.nodes.items())
    click.echo(f"exported {r.bundle} in {r.seconds:.2f}s — nodes: {nodes}")
    for f in r.findings:
        click.echo(f"{f.severity}: {f.code}: {f.message} — {f.fix}")
    click.echo(validated_line(r.reference, cases, worst))


def validated_line(reference: dict, cases: int, worst: float) -> str:
    """export's last line: what the bundle was validated against (formats.REFERENCE_WORDS), where and how well."""
    from lstm_edge.formats import REFERENCE_WORDS  # deferred: only export's output needs it

    kind = reference.get("kind", "")
    against = REFERENCE_WORDS.get(kind, kind or "PyTorch")
    if reference.get("forward"):
        against += f" ({reference['forward']})"
    return (
        f"validated in ONNX Runtime CPU at {cases} unseen shapes/states against {against}: max scaled error {worst:.2e}"
    )


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
@json_option
@quiet_option
@handle_errors
def lint(model: str, json_path: str | None) -> None:
    """Find recurrent-model traps in an ONNX file (frozen axes, unfolded weights, layout=1, …). Exit 1 on errors."""
    check_onnx_path(Path(model))  # a wrong path is refused before onnx and torch are imported
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.lint import lint as run_lint
    from lstm_edge.export.lint import load_onnx  # onnx, as above

    findings = run_lint(load_onnx(model))
    write_json(json_path, [f.to_dict() for f in findings])
    if not findings:
        click.echo(f"{model}: no findings")
    for f in findings:
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
@json_option
@quiet_option
@handle_errors
def import_cmd(model, out, rebuild, weights, name, force, json_path) -> None:
    """Wrap a recurrent ONNX model lstm-edge did not write into a bundle (reference: the model in float64)."""
    check_onnx_path(Path(model))  # a wrong path is refused before onnx and torch are imported
    # torch and onnx deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.importer import ImportConfig, import_onnx

    r = import_onnx(model, out, ImportConfig(force=force, rebuild=rebuild, weights=weights, name=name))
    doc = {k: getattr(r, k) for k in ("rebuilt", "streaming", "notes", "max_scaled_error", "seconds")}
    write_json(json_path, doc | {"bundle": str(r.bundle), "findings": [f.to_dict() for f in r.findings]})
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
@click.option(
    "--strict", is_flag=True, help="Exit 1 when a variant is over its budget (default: a finding, kept, exit 0)."
)
@json_option
@quiet_option
@handle_errors
def quantize(
    bundle,
    mode,
    calibration_samples,
    method,
    per_channel,
    reduce_range,
    max_metric_drop,
    data,
    quantize_state,
    strict,
    json_path,
) -> None:
    """Add int8 (dynamic, static QDQ) and fp16 variants with an accuracy report.

    A variant over its metric budget (fp16: its parity bound) is a finding: it is kept in the bundle, marked not
    deployable, and named on a `finding:` line. Exit 0 when every variant was made and measured (1 with --strict
    when one is over budget), 2 on bad input."""
    bundle_root(bundle)  # a wrong path or --mode is refused before torch is imported
    if mode != "all":
        variant_for_mode(mode)
    # torch, onnx and onnxruntime.quantization deferred: `lstm-edge --help` stays fast
    from lstm_edge.export.quantize import QuantizeConfig, format_report, over_budget_finding, quantize_bundle

    cfg = QuantizeConfig(
        mode=mode,
        calibration_samples=calibration_samples,
        method=method,
        per_channel=per_channel,
        reduce_range=reduce_range,
        max_metric_drop=max_metric_drop,
        data=data,
        quantize_state=quantize_state,
        progress=progress_on(),
    )
    result = quantize_bundle(bundle, cfg)
    for variant, why in result.skipped.items():
        click.echo(f"skipped {variant}: {why}")
    finding = over_budget_finding(result)
    write_json(json_path, result.to_dict())
    click.echo(format_report(result.reports))
    click.echo(f"wrote {', '.join(result.reports)} into {result.bundle} (report: quantization.md, quantization.png)")
    if finding:
        click.echo(finding)
    sys.exit(1 if strict and finding else 0)

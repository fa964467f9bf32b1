"""The `lstm-edge` command: parse, call the Python API, print. Exit 0 success, 1 parity/budget failure, 2 bad input."""

from __future__ import annotations

import functools
import json
import math
import sys
import traceback
from pathlib import Path

import click

from lstm_edge import __version__
from lstm_edge.errors import LstmEdgeError, ParityError, first_line
from lstm_edge.targets import TARGETS, write_target


def _last_resort(e: BaseException) -> LstmEdgeError:
    """Errors no boundary check caught, as one line: the boundary checks estimate sizes before allocating, so these
    are what remains (a full disk, a file vanishing mid-read, memory another process took)."""
    import errno

    if isinstance(e, MemoryError):
        return LstmEdgeError("out of memory", "use smaller inputs (fewer sequences or steps) or free memory")
    if isinstance(e, RecursionError):
        return LstmEdgeError("an input is nested too deeply to process", "flatten the input")
    where = next((str(f) for f in (e.filename, e.filename2) if f), "")
    what = e.strerror or first_line(e, 160) or type(e).__name__
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    return LstmEdgeError(
        f"{what}{f': {where}' if where else ''}",
        "free disk space or write elsewhere; nothing half-written was left" if full else "check the path and try again",
    )


def handle_errors(fn):
    """One line and exit 2 for user errors, exit 1 for parity failures; --debug adds the traceback and keeps the
    exit code. MemoryError, RecursionError and OSError that reach here are mapped to one line, exit 2, too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except ParityError as e:
            if debug:
                traceback.print_exc()
            if e.report:
                click.echo(e.report, err=True)
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except (LstmEdgeError, MemoryError, RecursionError, OSError) as e:
            if debug:
                traceback.print_exc()
            err = e if isinstance(e, LstmEdgeError) else _last_resort(e)
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was left behind", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstm-edge")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
def main(debug: bool) -> None:
    """Train an LSTM, export it to ONNX, quantize it, run it anywhere, and prove every runtime matches PyTorch."""


@main.command()
@click.option("--task", default="adding", show_default=True, help="Built-in task: adding | digits.")
@click.option("--data", type=click.Path(), help="User data: .npz (X [N,T,F], y) or long-format .csv (see README).")
@click.option("--seq-len", default=100, show_default=True, help="Sequence length (adding task).")
@click.option("--hidden-size", default=64, show_default=True)
@click.option("--num-layers", default=2, show_default=True)
@click.option("--dropout", default=0.0, show_default=True)
@click.option("--epochs", default=15, show_default=True, help="Upper bound; early stopping may end sooner.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
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
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--from",
    "init",
    type=click.Path(),
    help="Go on from this lstm-edge checkpoint: its model, normalization and recorded data split; --epochs 0 with "
    "--int8-aware-epochs N only fine-tunes it for int8.",
)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint path (.pt).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@handle_errors
def train(out: str, as_json: bool, **kw) -> None:
    """Train on a task or your data; writes PATH.pt and PATH.curve.png."""
    from lstm_edge.train import TrainConfig, train_to_file

    if kw["init"]:  # the checkpoint fixes these; a value given here would be silently ignored
        ctx = click.get_current_context()
        given = [
            f"--{k.replace('_', '-')}"
            for k in ("task", "seq_len", "samples", "seed", "hidden_size", "num_layers", "dropout")
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
    result = train_to_file(TrainConfig(**kw, progress=not as_json), out)
    if as_json:
        click.echo(json.dumps(result.metrics))
        return
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


@main.command(help=EXPORT_HELP)
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
        click.echo("recognized: " + r.recognized.replace("\n", "\n            "))
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


@main.command()
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def lint(model: str, as_json: bool) -> None:
    """Find recurrent-model traps in an ONNX file (frozen axes, unfolded weights, layout=1, …). Exit 1 on errors."""
    from lstm_edge.export.lint import lint as run_lint
    from lstm_edge.export.lint import load_onnx

    findings = run_lint(load_onnx(model))
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings]))
    elif not findings:
        click.echo(f"{model}: no findings")
    for f in [] if as_json else findings:
        click.echo(f"{f.severity}: {f.code}: {f.message} — fix: {f.fix}")
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@main.command()
@click.argument("model", type=click.Path())
@click.option("--provider", default="cpu", show_default=True, help="torch | cpu | cuda | openvino | tract | c")
@click.option("--variant", default="fp32", show_default=True, help="fp32 | int8 | int8-static | fp16")
@click.option(
    "--input", "input_", help="x as .npy, .npz (x, h0, c0 — or, for a bare .onnx, every input by name), .csv, .json, -."
)
@click.option(
    "--input-name", "input_names", multiple=True, help="Bare .onnx: feed one input by its name, NAME=FILE (.npy/.npz)."
)
@click.option("--output", type=click.Path(), help="Write y (.npy) or y, hn, cn (.npz); a bare .onnx: every output.")
@click.option("--stream", is_flag=True, help="Feed --chunk steps at a time carrying h and c, as a device would.")
@click.option("--chunk", default=1, show_default=True)
@click.option("--threads", type=int)
@click.option("--allow-fallback", is_flag=True, help="cuda: accept nodes placed on the CPU.")
@click.option("--precision", "precision_hint", default="f32", show_default=True, help="openvino: f32 or bf16.")
@click.option("--graph-optimization", default="all", show_default=True, help="ORT: disable | basic | extended | all.")
@click.option("--allow-nonfinite", is_flag=True, help="Pass NaN/Inf inputs through instead of rejecting them.")
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def run(
    model,
    provider,
    variant,
    input_,
    input_names,
    output,
    stream,
    chunk,
    threads,
    allow_fallback,
    precision_hint,
    graph_optimization,
    allow_nonfinite,
    no_verify_hash,
    as_json,
) -> None:
    """Run a bundle or a bare .onnx on one runtime; --stream feeds it chunk by chunk."""
    import numpy as np

    from lstm_edge.inputs import read_input, read_inputs, write_output
    from lstm_edge.runtimes import RunnerOptions, open_runner

    _check_provider_variant(provider, variant)
    if chunk < 1:
        raise LstmEdgeError(f"--chunk {chunk}", "use a chunk of at least 1 step")
    if threads is not None and threads < 1:
        raise LstmEdgeError(f"--threads {threads}", "use a positive thread count (or leave it out: all cores)")
    opts = RunnerOptions(
        variant=variant,
        threads=threads,
        verify_hash=not no_verify_hash,
        allow_fallback=allow_fallback,
        precision_hint=precision_hint,
        graph_optimization=graph_optimization,
        allow_nonfinite=allow_nonfinite,
    )
    if input_ is None and not input_names:
        raise LstmEdgeError("no input given", "pass --input FILE (or, for a bare .onnx, --input-name NAME=FILE)")
    with open_runner(model, provider, options=opts) as runner:
        if runner.source.signature is not None and not stream:  # a bare .onnx: every input and output by name
            from lstm_edge.inputs import read_feeds, write_outputs

            outs = runner.run_feeds(read_feeds(input_, input_names, runner.source.signature))
            info = runner.describe()
            if output:
                write_outputs(output, outs)
            if as_json:
                doc = {"runtime": info} | ({"output": output} if output else {k: v.tolist() for k, v in outs.items()})
                click.echo(json.dumps(doc))
                return
            click.echo(f"{info['runtime']} {info['version']} · {info['device']} · {Path(model).name}")
            for name, a in outs.items():
                click.echo(
                    f"{name} {tuple(a.shape)}"
                    + ("" if output else f":\n{np.array2string(a, precision=5, threshold=40)}")
                )
            if output:
                click.echo(f"wrote {output} ({', '.join(outs)})")
            return
        if input_ is None:
            raise LstmEdgeError("--input-name feeds a bare .onnx", "pass --input FILE for a bundle")
        if stream:
            runner.stream(batch=1)  # one line, before reading, where the model cannot stream
        spec = runner.source.config
        if runner.source.spec_form:  # any ModelSpec form but the seed's: named inputs, the model's own layout
            arrays = read_inputs(input_, runner.source.input_names, bool(spec.vocab_size), spec.batch_first)
            state = tuple(arrays[n] for n in spec.state_shapes if n in arrays) or None
            feeds = runner.check_feeds(arrays["x"], state, arrays.get("lengths"))
            x, state = feeds["x"], tuple(feeds[n] for n in spec.state_shapes)
            if stream:
                if "lengths" in arrays:
                    raise LstmEdgeError("--stream feeds whole steps; lengths do not apply", "drop lengths, or --stream")
                s = runner.stream(batch=x.shape[0 if spec.batch_first else 1])
                s.state = state
                y, final = s.feed(x, chunk), s.state
            else:
                y, final = runner.run(x, state, feeds.get("lengths"))
            h, c = final[0], (final[1] if len(final) > 1 else None)
        else:
            x, state = read_input(input_, runner.source.input_names)
            x, h0, c0 = runner.check_inputs(x, state)
            if stream:
                s = runner.stream(batch=x.shape[0])
                s.state = (h0, c0)
                y = s.feed(x, chunk)
                h, c = s.state
            else:
                y, (h, c) = runner.run(x, (h0, c0))
        info = runner.describe()
    if output:
        write_output(output, y, h, c)
    if as_json:
        doc = {"runtime": info, "y": y.tolist()} if not output else {"runtime": info, "output": output}
        click.echo(json.dumps(doc))
    else:
        click.echo(
            f"{info['runtime']} {info['version']} · {info['variant']} · {info['device']} · x {tuple(x.shape)}"
            + (f" · streamed in chunks of {chunk}" if stream else "")
        )
        if output:
            click.echo(f"wrote {output}")
        else:
            click.echo(f"y {tuple(y.shape)}:\n{np.array2string(y, precision=5, threshold=40)}")


@main.command("import")
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


@main.command()
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def doctor(as_json: bool) -> None:
    """Versions, ORT providers and package clashes, CUDA/cuDNN libraries, CPU features — each problem with its fix."""
    from lstm_edge.doctor import diagnose

    report = diagnose()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key, value in report["versions"].items():
        click.echo(f"{key:>18}: {value or 'not installed'}")
    click.echo(f"{'ORT providers':>18}: {', '.join(report['ort_providers']) or '—'}")
    click.echo(f"{'CUDA libraries':>18}: {', '.join(f'{k}={v}' for k, v in report['cuda_libraries'].items())}")
    click.echo(f"{'CPU features':>18}: {', '.join(f'{k}={v}' for k, v in report['cpu_features'].items())}")
    for p in report["problems"]:
        click.echo(f"problem: {p['problem']} — fix: {p['fix']}")
    if not report["problems"]:
        click.echo("no problems found")


@main.command()
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


def _check_provider_variant(provider: str, variant: str) -> None:
    """One clear line for an unknown --provider or --variant, before anything opens."""
    from lstm_edge.bundle import variant as bundle_variant
    from lstm_edge.runtimes import RUNTIMES

    if provider not in RUNTIMES:
        raise LstmEdgeError(f"unknown provider {provider!r}", f"choose one of {', '.join(RUNTIMES)}")
    bundle_variant(variant)


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


@main.command()
@click.argument("bundle", type=click.Path())
@click.option("--providers", help="Comma-separated (default: every runtime installed): torch,cpu,cuda,openvino,tract")
@click.option("--variants", help="Comma-separated (default: every variant in the bundle): fp32,int8,int8-static,fp16")
@click.option(
    "--quick", is_flag=True, help="A smaller matrix (B 1,4; T 1,7,100; drift over 200 steps) for a fast check."
)
@click.option("--strict", is_flag=True, help="Fail on variants that quantize marked not deployable, too.")
@click.option("--json", "json_path", type=click.Path(), help="Write the full report (schemas/verify.schema.json).")
@click.option("--markdown", "md_path", type=click.Path(), help="Write the summary table as Markdown.")
@click.option("--plots", "plots_dir", type=click.Path(), help="Write error-against-timestep PNGs into this folder.")
@click.option("--no-verify-hash", is_flag=True, help="Skip the sha256 integrity check.")
@handle_errors
def verify(bundle, providers, variants, quick, strict, json_path, md_path, plots_dir, no_verify_hash) -> None:
    """Prove parity: every runtime × variant × shape × initial state × streaming mode against PyTorch."""
    from lstm_edge.atomic import atomic_write_text
    from lstm_edge.parity import VerifyConfig, plot_drift, summary_rows, to_markdown
    from lstm_edge.parity import verify as run_verify

    cfg = VerifyConfig(
        providers=_csv(providers), variants=_csv(variants), strict=strict, verify_hash=not no_verify_hash
    )
    if quick:
        cfg = cfg.quick()
    report = run_verify(bundle, cfg)
    if json_path:
        atomic_write_text(Path(json_path), json.dumps(report) + "\n")
    if md_path:
        atomic_write_text(Path(md_path), to_markdown(report))
    if plots_dir:
        plot_drift(report, Path(plots_dir))
    rows = summary_rows(report)
    click.echo(f"{'runtime':<9} {'variant':<12} {'status':<15} {'cases':<9} worst max scaled error (tolerance)")
    for r in rows:
        click.echo(f"{r['runtime']:<9} {r['variant']:<12} {r['status']:<15} {r['cases']:<9} {r['worst']}")
    for i in report["integrity"]:
        if not i["ok"]:
            click.echo(f"integrity: {i['path']}: {i['detail']}")
    click.echo("PASSED" if report["passed"] else f"FAILED{': ' + report['reason'] if report['reason'] else ''}")
    sys.exit(0 if report["passed"] else 1)


@main.command()
@click.argument("bundle", type=click.Path())
@click.option(
    "--providers",
    help="Comma-separated (default: every runtime installed). PyTorch eager always runs, with "
    "torch.backends.mkldnn on and off; the faster per shape is the baseline.",
)
@click.option("--variants", help="Comma-separated (default: every variant in the bundle).")
@click.option("--threads", "threads_", default="1,all", show_default=True, help="Thread settings to measure.")
@click.option("--rate", default=100.0, show_default=True, help="Step rate (Hz) for the real-time factor.")
@click.option("--quick", is_flag=True, help="Smaller grid and fewer steps (a fast look, not figures to quote).")
@click.option("--no-cold-start", is_flag=True, help="Skip the fresh-process cold start and RSS measurement.")
@click.option(
    "--auto", "auto", type=click.Choice(["streaming", "batch"]), help="Name the fastest parity-passing choice."
)
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option("--json", "json_path", type=click.Path())
@click.option("--markdown", "md_path", type=click.Path())
@click.option("--plot", "plot_path", type=click.Path())
@handle_errors
def bench(
    bundle,
    providers,
    variants,
    threads_,
    rate,
    quick,
    no_cold_start,
    auto,
    no_verify_hash,
    json_path,
    md_path,
    plot_path,
) -> None:
    """Latency percentiles, throughput grid, cold start and memory of every runtime × variant beside PyTorch."""
    from lstm_edge.atomic import atomic_write_text
    from lstm_edge.bench import BenchConfig, auto_choose, plot, table_rows, to_markdown
    from lstm_edge.bench import bench as run_bench

    if not (math.isfinite(rate) and rate > 0):
        raise LstmEdgeError(f"--rate {rate}", "give a positive, finite step rate in Hz")
    cfg = BenchConfig(
        providers=_csv(providers),
        variants=_csv(variants),
        threads=_csv(threads_) or ("1",),
        rate_hz=rate,
        cold_start=not no_cold_start,
        verify_hash=not no_verify_hash,
    )
    if quick:
        cfg = cfg.quick()
    report = run_bench(bundle, cfg)
    if auto:
        report["auto"] = auto_choose(bundle, report, auto)
    if json_path:
        atomic_write_text(Path(json_path), json.dumps(report, indent=1) + "\n")
    if md_path:
        atomic_write_text(Path(md_path), to_markdown(report))
    if plot_path:
        plot(report, Path(plot_path))
    rows = table_rows(report)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    click.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        click.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))
    if auto:
        a = report["auto"]
        click.echo(
            f"fastest for {a['workload']} ({a['point']}) that passes parity: {a['runtime']} {a['variant']} "
            f"(threads {a['threads']}), {a['speedup_vs_torch']:.1f}× PyTorch eager"
            + (f" (torch.backends.mkldnn {a['torch_path'].split('_')[1]})" if "torch_path" in a else "")
        )


@main.command("bundle")
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path())
@click.option("--target", required=True, help=" | ".join(TARGETS))
@click.option("--variant", default="fp32", show_default=True, help="fp32 | int8")
@click.option("--out", required=True, type=click.Path(), help="The folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing embed folder or bundle (never another folder).")
@click.option(
    "--ort-web", type=click.Path(), help="web: onnxruntime-web's dist folder (default: found or npm-installed)."
)
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option("--max-batch", default=64, show_default=True, help="triton: max_batch_size (streams batched together).")
@handle_errors
def bundle_cmd(bundle_dir, target, variant, out, force, ort_web, no_verify_hash, max_batch) -> None:
    """A self-contained folder for a Python app, a Node.js program or a web page, checking itself against golden vectors."""
    from lstm_edge.bundle import Bundle

    path = write_target(
        bundle_dir,
        target,
        out,
        variant=variant,
        force=force,
        ort_web=ort_web,
        verify_hash=not no_verify_hash,
        max_batch=max_batch,
    )
    click.echo(f"wrote {path} ({target}, {variant}); see {path / 'README.md'}")
    verdict = Bundle.open(bundle_dir).verdict(variant)
    if verdict != "deployable":
        click.echo(f"note: quantize marked {variant} {verdict}; see quantization.md in {bundle_dir}")


@main.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path())
@click.option(
    "--input",
    "input_",
    required=True,
    help=".npy [N,T,F] (memory-mapped), .npz (x, optional id), or Parquet (file or folder; id + x columns).",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(),
    help="PRED.parquet: id + the requested outputs (ray: a folder of Parquet files).",
)
@click.option("--provider", default="cpu", show_default=True, help="torch | cpu | cuda | openvino | tract | c")
@click.option("--variant", default="fp32", show_default=True, help="fp32 | int8 | int8-static | fp16")
@click.option("--batch-size", default=256, show_default=True, help="Sequences per runner call.")
@click.option("--engine", default="local", show_default=True, help="local (this process) | ray (Ray Data actor pool).")
@click.option("--ray-address", help="ray: join this cluster (default: start a local Ray instance).")
@click.option("--workers", type=int, help="ray: actors in the pool (default: the cores here; a cluster's CPUs - 1).")
@click.option("--outputs", default="y", show_default=True, help="Comma-separated: y,hn,cn.")
@click.option("--threads", type=int, help="Runner threads (default: local all cores, 1 per Ray actor).")
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def score(
    bundle_dir,
    input_,
    output,
    provider,
    variant,
    batch_size,
    engine,
    ray_address,
    workers,
    outputs,
    threads,
    no_verify_hash,
    as_json,
) -> None:
    """Bulk inference: every sequence in DATA through the bundle into Parquet, locally or on Ray Data."""
    from lstm_edge.score import ScoreConfig
    from lstm_edge.score import score as run_score

    _check_provider_variant(provider, variant)
    cfg = ScoreConfig(
        provider=provider,
        variant=variant,
        batch_size=batch_size,
        engine=engine,
        ray_address=ray_address,
        workers=workers,
        outputs=_csv(outputs) or (),
        threads=threads,
        verify_hash=not no_verify_hash,
        progress=not as_json,
    )
    r = run_score(bundle_dir, input_, output, cfg)
    if as_json:
        click.echo(json.dumps({"output": str(r.output), "rows": r.rows, "seconds": r.seconds, "engine": r.engine}))
        return
    click.echo(f"scored {r.rows} sequences in {r.seconds:.2f}s ({r.rows_per_s:.0f}/s, {r.engine}); wrote {r.output}")


@main.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The folder to write (NAME.h, NAME.c, NAME_check.c, …).")
@click.option("--precision", default="fp32", show_default=True, help="fp32 | int8 (int8 weights, int16 activations).")
@click.option("--prefix", help="C name prefix and file stem (default: the bundle's name).")
@click.option("--force", is_flag=True, help="Replace an existing, non-empty --out folder.")
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@handle_errors
def codegen(bundle_dir, out, precision, prefix, force, no_verify_hash) -> None:
    """The model as dependency-free C99 (no malloc, no mutable globals) with a check program and a Makefile."""
    from lstm_edge.codegen import CodegenConfig, generate

    r = generate(
        bundle_dir,
        out,
        CodegenConfig(precision=precision, prefix=prefix, verify_hash=not no_verify_hash, force=force),
    )
    click.echo(f"wrote {', '.join(r.files)} into {r.out} ({r.precision}, bundle sha256 {r.sha256[:12]}…)")
    if r.input_range:
        click.echo(f"int8 input scale from {r.input_range}")
    m = r.int8_metric
    if m:
        unit = f"{m['drop']:+.2f} points" if m["name"] == "accuracy" else f"{m['drop']:+.1%}"
        budget = f"{m['budget']} points" if m["name"] == "accuracy" else f"{m['budget']:.0%}"
        click.echo(
            f"int8 C on {m['samples']} held-out sequences: {m['name']} {m['fp32']:.4g} (fp32) → {m['int8']:.4g} "
            f"({unit}, budget {budget}): {'deployable' if m['deployable'] else 'OVER the budget, not deployable'}"
        )
    elif r.precision == "int8":
        click.echo("int8 C task metric not measured: the bundle has no checkpoint with built-in task data")
    click.echo(f"build and check: make -C {r.out} host   (Cortex-M4 under qemu: make -C {r.out} qemu)")


if __name__ == "__main__":
    main()

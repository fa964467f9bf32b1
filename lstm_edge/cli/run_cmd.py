"""`lstm-edge run`: one input through a bundle or a bare .onnx on one runtime, whole or streamed."""

from __future__ import annotations

from pathlib import Path

import click

from lstm_edge.bundle import VARIANTS
from lstm_edge.cli.common import (
    check_provider_variant,
    choices,
    handle_errors,
    json_option,
    no_self_check_option,
    quiet_option,
    say_unchecked,
    write_json,
)
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.runtimes import RUNTIMES


@click.command()
@click.argument("model", type=click.Path())
@click.option("--provider", default="cpu", show_default=True, help=choices(RUNTIMES))
@click.option("--variant", default="fp32", show_default=True, help=choices(VARIANTS))
@click.option(
    "--input", "input_", help="x as .npy, .npz (x, h0, c0 — or, for a bare .onnx, every input by name), .csv, .json, -."
)
@click.option(
    "--input-name", "input_names", multiple=True, help="Bare .onnx: feed one input by its name, NAME=FILE (.npy/.npz)."
)
@click.option("--output", type=click.Path(), help="Write y (.npy) or y, hn, cn (.npz); a bare .onnx: every output.")
@click.option("--stream", is_flag=True, help="Feed --chunk steps at a time carrying h and c, as a device would.")
@click.option("--chunk", default=1, show_default=True, help="--stream: steps per call (at least 1).")
@click.option("--threads", type=int, help="Runtime threads (default: the runtime's own, all cores).")
@click.option("--allow-fallback", is_flag=True, help="cuda: accept nodes placed on the CPU.")
@click.option("--precision", "precision_hint", default="f32", show_default=True, help="openvino: f32 or bf16.")
@click.option("--graph-optimization", default="all", show_default=True, help="ORT: disable | basic | extended | all.")
@click.option("--allow-nonfinite", is_flag=True, help="Pass NaN/Inf inputs through instead of rejecting them.")
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option(
    "--strict-range", is_flag=True, help="Exit 1 when a variant clips x to its recorded input range (int8 C)."
)
@no_self_check_option
@json_option
@quiet_option
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
    strict_range,
    no_self_check,
    json_path,
) -> None:
    """Run a bundle or a bare .onnx on one runtime; --stream feeds it chunk by chunk.\f

    Raises:
        LstmEdgeError: an unknown provider or variant, a chunk or thread count below 1, no input, or an input the
            model refuses (handle_errors turns it into one line and exit 2).
    """
    # numpy, which the runtimes import, deferred: `lstm-edge --help` stays fast
    from lstm_edge.runtimes import RunnerOptions, open_runner

    check_provider_variant(provider, variant)
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
        self_check=not no_self_check,
    )
    if input_ is None and not input_names:
        raise LstmEdgeError("no input given", "pass --input FILE (or, for a bare .onnx, --input-name NAME=FILE)")
    with open_runner(model, provider, options=opts) as runner:
        if runner.source.signature is not None and not stream:  # a bare .onnx: every input and output by name
            run_bare_onnx(runner, model, input_, input_names, output, json_path)
            return
        if input_ is None:
            raise LstmEdgeError("--input-name feeds a bare .onnx", "pass --input FILE for a bundle")
        if stream:
            runner.stream(batch=1)  # one line, before reading, where the model cannot stream
        if runner.source.spec_form:  # any ModelSpec form but the seed's: named inputs, the model's own layout
            x, y, h, c = run_spec_form(runner, input_, stream, chunk)
        else:
            x, y, h, c = run_seed_form(runner, input_, stream, chunk)
        info = runner.describe()
        if runner.clipped:  # before any result: a warning, or with --strict-range exit 1
            report_clipped(runner.input_range.problem(runner.clipped, x.size, variant), strict_range)
        verdict = runner.source.bundle.verdict(variant) if runner.source.bundle is not None else "deployable"
    if verdict != "deployable":  # answers as quantize measured them, which is not as accurate as it budgets
        click.echo(f"note: quantize marked {variant} {verdict}; see quantization.md in {model}", err=True)
    print_run(info, x, y, h, c, output=output, json_path=json_path, chunk=chunk if stream else None)


def report_clipped(problem: str, strict: bool) -> None:
    """One line on stderr for inputs a variant clipped (run, score).

    Raises:
        ParityError: with --strict-range (`strict`), so the CLI exits 1 before printing any result.
    """
    from lstm_edge.runtimes.checks import CLIPPED_FIX  # deferred: numpy, as the runtimes above

    if strict:
        raise ParityError(problem, CLIPPED_FIX)
    click.echo(f"warning: {problem} — {CLIPPED_FIX}; --strict-range makes this an error", err=True)


def run_bare_onnx(
    runner, model: str, input_: str | None, input_names: tuple[str, ...], output, json_path: str | None
) -> None:
    """A bare .onnx: every input read by its name, every output printed or written (.npz) by its name; the
    outputs (or where they went) as JSON to `json_path` when given."""
    # numpy, which inputs imports, deferred: `lstm-edge --help` stays fast
    import numpy as np

    from lstm_edge.inputs import read_feeds, write_outputs  # numpy, as above

    outs = runner.run_feeds(read_feeds(input_, input_names, runner.source.signature))
    info = runner.describe()
    say_unchecked(info["self_check"])
    if output:
        write_outputs(output, outs)
    doc = {"runtime": info} | ({"output": output} if output else {k: v.tolist() for k, v in outs.items()})
    write_json(json_path, doc)
    click.echo(f"{info['runtime']} {info['version']} · {info['device']} · {Path(model).name}")
    for name, a in outs.items():
        click.echo(
            f"{name} {tuple(a.shape)}" + ("" if output else f":\n{np.array2string(a, precision=5, threshold=40)}")
        )
    if output:
        click.echo(f"wrote {output} ({', '.join(outs)})")


def run_spec_form(runner, input_: str, stream: bool, chunk: int):
    """(x, y, h, c) for any ModelSpec form but the seed's: named inputs (lengths too), the model's own layout.

    Raises:
        LstmEdgeError: an input the model refuses, or lengths given with --stream.
    """
    # numpy, which inputs imports, deferred: `lstm-edge --help` stays fast
    from lstm_edge.inputs import read_inputs

    spec = runner.source.config
    arrays = read_inputs(input_, runner.source.input_names, bool(spec.vocab_size), spec.batch_first)
    given = tuple(arrays[n] for n in spec.state_shapes if n in arrays) or None
    feeds = runner.check_feeds(arrays["x"], given, arrays.get("lengths"))
    stateless = runner.source.bundle is not None and not runner.source.bundle.stateful  # the forward, whole
    x, state = feeds["x"], given if stateless else tuple(feeds[n] for n in spec.state_shapes)
    if stream:
        if "lengths" in arrays:
            raise LstmEdgeError("--stream feeds whole steps; lengths do not apply", "drop lengths, or --stream")
        s = runner.stream(batch=x.shape[0 if spec.batch_first else 1])
        s.state = state
        y, final = s.feed(x, chunk), s.state
    else:
        y, final = runner.run(x, state, feeds.get("lengths"))
    return x, y, (final[0] if final else None), (final[1] if len(final) > 1 else None)  # a stateless graph: y alone


def run_seed_form(runner, input_: str, stream: bool, chunk: int):
    """(x, y, h, c) for the seed's form: x [B, T, F] with optional h0, c0."""
    # numpy, which inputs imports, deferred: `lstm-edge --help` stays fast
    from lstm_edge.inputs import read_input

    x, state = read_input(input_, runner.source.input_names)
    x, h0, c0 = runner.check_inputs(x, state)
    if stream:
        s = runner.stream(batch=x.shape[0])
        s.state = (h0, c0)
        y = s.feed(x, chunk)
        h, c = s.state
    else:
        y, (h, c) = runner.run(x, (h0, c0))
    return x, y, h, c


def print_run(info: dict, x, y, h, c, *, output: str | None, json_path: str | None, chunk: int | None) -> None:
    """Write y, hn, cn to `output` when given, y (or where it went) as JSON to `json_path` when given, then print
    it for people.

    `chunk` is the streaming chunk, None for a whole-sequence run."""
    # numpy, which inputs imports, deferred: `lstm-edge --help` stays fast
    import numpy as np

    from lstm_edge.inputs import write_output  # numpy, as above

    say_unchecked(info.get("self_check"))
    if output:
        write_output(output, y, h, c)
    doc = {"runtime": info, "y": y.tolist()} if not output else {"runtime": info, "output": output}
    write_json(json_path, doc)
    click.echo(
        f"{info['runtime']} {info['version']} · {info['variant']} · {info['device']} · x {tuple(x.shape)}"
        + (f" · streamed in chunks of {chunk}" if chunk is not None else "")
    )
    if output:
        click.echo(f"wrote {output}")
    else:
        click.echo(f"y {tuple(y.shape)}:\n{np.array2string(y, precision=5, threshold=40)}")

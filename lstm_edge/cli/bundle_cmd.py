"""Commands that turn a bundle into something to ship: `bundle` (an embed folder), `codegen` (C99)."""

from __future__ import annotations

import click

from lstm_edge.bundle import bundle_root
from lstm_edge.cli.common import handle_errors, json_option, progress_on, quiet_option, write_json


@click.command("bundle")
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path())
@click.option("--target", required=True, help="python | node | web | triton | c | http")  # tests hold it to TARGETS
@click.option("--variant", default="fp32", show_default=True, help="fp32 | int8")
@click.option("--out", required=True, type=click.Path(), help="The folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing embed folder or bundle (never another folder).")
@click.option(
    "--ort-web", type=click.Path(), help="web: onnxruntime-web's dist folder (default: found or npm-installed)."
)
@click.option(
    "--no-verify-hash",
    is_flag=True,
    help="Skip the manifest sha256 check and the golden-case self-check on ONNX Runtime CPU.",
)
@click.option("--max-batch", default=64, show_default=True, help="triton: max_batch_size (streams batched together).")
@json_option
@quiet_option
@handle_errors
def bundle_cmd(bundle_dir, target, variant, out, force, ort_web, no_verify_hash, max_batch, json_path) -> None:
    """A self-contained folder for a Python app, a Node.js program or a web page, checking itself against golden vectors."""
    # numpy and onnxruntime, which bundle and embed import, deferred: `lstm-edge --help` stays fast
    from lstm_edge.bundle import Bundle
    from lstm_edge.targets import write_target  # as above

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
    verdict = Bundle.open(bundle_dir).verdict(variant)
    write_json(json_path, {"out": str(path), "target": target, "variant": variant, "verdict": verdict})
    click.echo(f"wrote {path} ({target}, {variant}); see {path / 'README.md'}")
    if verdict != "deployable":
        click.echo(f"note: quantize marked {variant} {verdict}; see quantization.md in {bundle_dir}")


@click.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The folder to write (NAME.h, NAME.c, NAME_check.c, …).")
@click.option("--precision", default="fp32", show_default=True, help="fp32 | int8 (int8 weights, int16 activations).")
@click.option("--prefix", help="C name prefix and file stem (default: the bundle's name).")
@click.option("--force", is_flag=True, help="Replace a folder codegen wrote before; refused where it holds files "
              "codegen did not write (they are never deleted: move them first).")  # fmt: skip
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@json_option
@quiet_option
@handle_errors
def codegen(bundle_dir, out, precision, prefix, force, no_verify_hash, json_path) -> None:
    """The model as dependency-free C99 (no malloc, no mutable globals) with a check program and a Makefile."""
    bundle_root(bundle_dir)  # a wrong path is refused before torch is imported
    # torch deferred: `lstm-edge --help` stays fast
    from lstm_edge.codegen import CodegenConfig, generate

    r = generate(
        bundle_dir,
        out,
        CodegenConfig(
            precision=precision, prefix=prefix, verify_hash=not no_verify_hash, force=force, progress=progress_on()
        ),
    )
    doc = {"out": str(r.out), "files": r.files, "prefix": r.prefix, "precision": r.precision, "sha256": r.sha256}
    write_json(json_path, doc | {"input_range": r.input_range, "int8_metric": r.int8_metric})
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

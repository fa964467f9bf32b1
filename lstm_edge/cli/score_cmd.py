"""`lstm-edge score`: bulk inference of a data file through a bundle into Parquet, locally or on Ray Data."""

from __future__ import annotations

import json

import click

from lstm_edge.cli.common import check_provider_variant, csv_option, handle_errors, no_self_check_option, say_unchecked


@click.command()
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
@no_self_check_option
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
    no_self_check,
    as_json,
) -> None:
    """Bulk inference: every sequence in DATA through the bundle into Parquet, locally or on Ray Data."""
    # numpy and the runtimes, which score imports, deferred: `lstm-edge --help` stays fast
    from lstm_edge.score import ScoreConfig
    from lstm_edge.score import score as run_score  # as above

    check_provider_variant(provider, variant)
    cfg = ScoreConfig(
        provider=provider,
        variant=variant,
        batch_size=batch_size,
        engine=engine,
        ray_address=ray_address,
        workers=workers,
        outputs=csv_option(outputs) or (),
        threads=threads,
        verify_hash=not no_verify_hash,
        self_check=not no_self_check,
        progress=not as_json,
    )
    r = run_score(bundle_dir, input_, output, cfg)
    checked = r.runner.get("self_check")
    say_unchecked(checked)
    if as_json:
        doc = {"output": str(r.output), "rows": r.rows, "seconds": r.seconds, "engine": r.engine}
        click.echo(json.dumps(doc | {"self_check": checked}))
        return
    click.echo(f"scored {r.rows} sequences in {r.seconds:.2f}s ({r.rows_per_s:.0f}/s, {r.engine}); wrote {r.output}")

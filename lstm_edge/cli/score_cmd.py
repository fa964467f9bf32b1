"""`lstm-edge score`: bulk inference of a data file through a bundle into Parquet, locally or on Ray Data."""

from __future__ import annotations

import click

from lstm_edge.bundle import VARIANTS
from lstm_edge.cli.common import (
    check_provider_variant,
    choices,
    csv_option,
    handle_errors,
    json_option,
    no_self_check_option,
    progress_on,
    quiet_option,
    say_unchecked,
    write_json,
)
from lstm_edge.runtimes import RUNTIMES


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
@click.option("--provider", default="cpu", show_default=True, help=choices(RUNTIMES))
@click.option("--variant", default="fp32", show_default=True, help=choices(VARIANTS))
@click.option("--batch-size", default=256, show_default=True, help="Sequences per runner call.")
@click.option("--engine", default="local", show_default=True, help="local (this process) | ray (Ray Data actor pool).")
@click.option("--ray-address", help="ray: join this cluster (default: start a local Ray instance).")
@click.option("--workers", type=int, help="ray: actors in the pool (default: the cores here; a cluster's CPUs - 1).")
@click.option("--outputs", default="y", show_default=True, help="Comma-separated: y,hn,cn.")
@click.option("--threads", type=int, help="Runner threads (default: local all cores, 1 per Ray actor).")
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@click.option(
    "--strict-range", is_flag=True, help="Exit 1, writing nothing, when a variant clips x to its recorded range."
)
@no_self_check_option
@json_option
@quiet_option
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
    strict_range,
    no_self_check,
    json_path,
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
        progress=progress_on(),
        strict_range=strict_range,
        self_check=not no_self_check,
    )
    r = run_score(bundle_dir, input_, output, cfg)
    if r.clipped:
        from lstm_edge.runtimes.checks import CLIPPED_FIX  # deferred: numpy, as score above

        click.echo(f"warning: {r.clip_problem} — {CLIPPED_FIX}; --strict-range makes this an error", err=True)
    checked = r.runner.get("self_check")
    say_unchecked(checked)
    doc = {"output": str(r.output), "rows": r.rows, "seconds": r.seconds, "engine": r.engine}
    write_json(json_path, doc | {"self_check": checked})
    click.echo(f"scored {r.rows} sequences in {r.seconds:.2f}s ({r.rows_per_s:.0f}/s, {r.engine}); wrote {r.output}")

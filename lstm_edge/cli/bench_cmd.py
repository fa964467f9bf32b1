"""`lstm-edge bench`: latency, throughput, cold start and memory of every runtime × variant beside PyTorch."""

from __future__ import annotations

import math
from pathlib import Path

import click

from lstm_edge.atomic import atomic_write_text
from lstm_edge.bundle import bundle_root
from lstm_edge.cli.common import (
    check_lists,
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
from lstm_edge.errors import LstmEdgeError
from lstm_edge.runtimes import RUNTIMES


@click.command()
@click.argument("bundle", type=click.Path())
@click.option(
    "--providers",
    help=f"Comma-separated (default: every runtime installed) of {choices(RUNTIMES)}. PyTorch eager always "
    "runs, with torch.backends.mkldnn on and off; the faster per shape is the baseline.",
)
@click.option("--variants", help="Comma-separated (default: every variant in the bundle).")
@click.option("--threads", "threads_", default="1,all", show_default=True, help="Thread settings to measure.")
@click.option("--rate", default=100.0, show_default=True, help="Step rate (Hz) for the real-time factor.")
@click.option("--quick", is_flag=True, help="Smaller grid and fewer steps (a fast look, not figures to quote).")
@click.option("--no-cold-start", is_flag=True, help="Skip the fresh-process cold start and RSS measurement.")
@click.option(
    "--auto",
    "auto",
    type=click.Choice(["streaming", "batch"]),
    help="Name the fastest parity-passing choice (streaming: refused for a model that cannot stream).",
)
@click.option("--no-verify-hash", is_flag=True, help="Skip the manifest sha256 check.")
@no_self_check_option
@json_option  # the full report
@quiet_option
@click.option("--markdown", "md_path", type=click.Path(), help="Write the tables as Markdown.")
@click.option("--plot", "plot_path", type=click.Path(), help="Write the latency and throughput chart (PNG).")
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
    no_self_check,
    json_path,
    md_path,
    plot_path,
) -> None:
    """Latency percentiles, throughput grid, cold start and memory of every runtime × variant beside PyTorch.

    A model that cannot stream (a whole-graph export, a bidirectional model) gets the grid, cold start and memory,
    with streaming reported as not applicable. At 1 thread speed-ups divide process CPU time (robust to load).\f

    Raises:
        LstmEdgeError: a --rate that is not a positive, finite number, or --auto streaming for a model that cannot
            stream (handle_errors: one line, exit 2).
    """
    if not (math.isfinite(rate) and rate > 0):
        raise LstmEdgeError(f"--rate {rate}", "give a positive, finite step rate in Hz")
    bundle_root(bundle)  # a wrong path or name is refused before torch is imported
    check_lists(bundle, csv_option(providers), csv_option(variants))
    # torch and the runtimes, which bench imports, deferred: bad input is refused at once
    from lstm_edge.bench import BenchConfig, auto_choose, check_workload, plot, table_notes, table_rows, to_markdown
    from lstm_edge.bench import bench as run_bench  # as above

    if auto:
        check_workload(bundle, auto)  # --auto streaming on a model that cannot stream: refused before any timing

    cfg = BenchConfig(
        providers=csv_option(providers),
        variants=csv_option(variants),
        threads=csv_option(threads_) or ("1",),
        rate_hz=rate,
        cold_start=not no_cold_start,
        verify_hash=not no_verify_hash,
        progress=progress_on(),
        self_check=not no_self_check,
    )
    if quick:
        cfg = cfg.quick()
    report = run_bench(bundle, cfg)
    say_unchecked(report["self_check"])
    if auto:
        report["auto"] = auto_choose(bundle, report, auto)
    write_json(json_path, report, indent=1)
    if md_path:
        atomic_write_text(Path(md_path), to_markdown(report))
    if plot_path:
        plot(report, Path(plot_path))
    print_table(table_rows(report))
    for line in table_notes(report):
        click.echo(line)
    if auto:
        a = report["auto"]
        click.echo(
            f"fastest for {a['workload']} ({a['point']}) that passes parity: {a['runtime']} {a['variant']} "
            f"(threads {a['threads']}), {a['speedup_vs_torch']:.1f}× {report.get('baseline', 'PyTorch eager')}"
            + (f" (torch.backends.mkldnn {a['torch_path'].split('_')[1]})" if "torch_path" in a else "")
        )


def print_table(rows: list[dict]) -> None:
    """Rows of dicts as a left-aligned text table, one column per key in first-seen order."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    click.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        click.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))

"""`lstm-edge verify`: the parity proof of every runtime × variant against the reference; exit 1 when it fails."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lstm_edge.atomic import atomic_write_text
from lstm_edge.bundle import VARIANTS, bundle_root
from lstm_edge.cli.common import (
    check_lists,
    choices,
    csv_option,
    handle_errors,
    is_quiet,
    json_option,
    progress_on,
    quiet_option,
    write_json,
)
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.extras import require
from lstm_edge.runtimes import RUNTIMES


@click.command()
@click.argument("bundle", type=click.Path())
@click.option("--providers", help=f"Comma-separated (default: every runtime installed) of {choices(RUNTIMES)}.")
@click.option("--variants", help=f"Comma-separated (default: every variant in the bundle) of {choices(VARIANTS)}.")
@click.option(
    "--quick", is_flag=True, help="A smaller matrix (B 1,4; T 1,7,100; drift over 200 steps) for a fast check."
)
@click.option(
    "--demo",
    is_flag=True,
    help="The demo's matrix (B 1,4; T 7,100; one step or the whole sequence per call; drift over 200 steps).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail on variants not proven deployable, too: not-deployable, or unverified (no task data). Without it, a "
    "variant outside its recorded bound fails unless its task metric already judged it not deployable.",
)
@json_option  # the full report (schemas/verify.schema.json)
@quiet_option
@click.option("--markdown", "md_path", type=click.Path(), help="Write the summary table as Markdown.")
@click.option("--plots", "plots_dir", type=click.Path(), help="Write error-against-timestep PNGs into this folder.")
@click.option("--no-verify-hash", is_flag=True, help="Skip the sha256 integrity check.")
@handle_errors
def verify(bundle, providers, variants, quick, demo, strict, json_path, md_path, plots_dir, no_verify_hash) -> None:
    """Prove parity: every runtime × variant × shape × initial state × streaming mode against PyTorch.

    \f
    Raises LstmEdgeError (exit 2) for --quick with --demo, or a bundle verify cannot open."""
    bundle_root(bundle)  # a wrong path or name is refused before torch is imported
    check_lists(bundle, csv_option(providers), csv_option(variants))
    if plots_dir:
        require("plots")  # before the matrix runs, not after
    # numpy and the runtimes, which parity imports, deferred: `lstm-edge --help` stays fast
    from lstm_edge.parity import VerifyConfig, plot_drift, summary_rows, to_markdown
    from lstm_edge.parity import verify as run_verify  # as above

    cfg = VerifyConfig(
        providers=csv_option(providers),
        variants=csv_option(variants),
        strict=strict,
        verify_hash=not no_verify_hash,
        progress=progress_on(),
    )
    if quick and demo:
        raise LstmEdgeError("--quick and --demo are two matrices; pass one", "drop --quick or --demo")
    if quick:
        cfg = cfg.quick()
    if demo:
        cfg = cfg.demo()
    report = run_verify(bundle, cfg)
    note_reference(bundle)
    write_json(json_path, report)
    if md_path:
        atomic_write_text(Path(md_path), to_markdown(report))
    if plots_dir:
        plot_drift(report, Path(plots_dir))
    rows = summary_rows(report)
    click.echo(f"{'runtime':<9} {'variant':<12} {'status':<15} {'cases':<9} worst max scaled error, bound (case)")
    for r in rows:
        click.echo(f"{r['runtime']:<9} {r['variant']:<12} {r['status']:<15} {r['cases']:<9} {r['worst']}")
    for i in report["integrity"]:
        if not i["ok"]:
            click.echo(f"integrity: {i['path']}: {i['detail']}")
    click.echo("PASSED" if report["passed"] else f"FAILED{': ' + report['reason'] if report['reason'] else ''}")
    if not report["passed"] and is_quiet():  # -q hides the table above: the failure still gets its one line
        raise ParityError(f"verify FAILED: {failed_line(rows, report)}", "run without -q for the table")
    sys.exit(0 if report["passed"] else 1)


def failed_line(rows: list[dict], report: dict) -> str:
    """What failed, in one line for -q: each failing runtime × variant with its worst error and bound, and the
    report's reason."""
    counted = ("fail", "not-deployable", "unverified") if report.get("strict") else ("fail",)  # what failed it
    failing = [f"{r['runtime']} {r['variant']} {r['status']} ({r['worst']})" for r in rows if r["status"] in counted]
    return "; ".join(failing + ([report["reason"]] if report["reason"] else [])) or "see the report"


def note_reference(bundle: str) -> None:
    """One line on stderr where verify judged a bundle that has a checkpoint against its fp32 ONNX instead (torch not
    installed: the lean install), so that no one reads the table as a proof against PyTorch. Raises nothing (the
    bundle opened already)."""
    from lstm_edge.bundle import Bundle  # deferred: numpy, as verify's imports above
    from lstm_edge.cases import reference_artifact, reference_kind  # as above

    b = Bundle.open(bundle)
    if (
        reference_artifact(b) == "fp32"
        and "checkpoint" in b.manifest["artifacts"]
        and reference_kind(b) != "onnx-float64"
    ):
        click.echo(
            "note: judged against the fp32 ONNX in float64 (onnx.reference), which export proved against the checkpoint;"
            " torch is not installed — pip install 'lstm-edge[torch]' to judge against the checkpoint itself",
            err=True,
        )

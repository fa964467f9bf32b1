"""`lstm-edge doctor`: what is installed, what clashes, and each problem with its fix."""

from __future__ import annotations

import click

from lstm_edge.cli.common import handle_errors, json_option, quiet_option, write_json
from lstm_edge.doctor import diagnose


@click.command()
@json_option
@quiet_option
@handle_errors
def doctor(json_path: str | None) -> None:
    """Versions, ORT providers and package clashes, CUDA/cuDNN libraries, CPU features — each problem with its fix."""
    report = diagnose()
    write_json(json_path, report, indent=2)
    for key, value in report["versions"].items():
        click.echo(f"{key:>18}: {value or 'not installed'}")
    click.echo(f"{'ORT providers':>18}: {', '.join(report['ort_providers']) or '—'}")
    click.echo(f"{'CUDA libraries':>18}: {', '.join(f'{k}={v}' for k, v in report['cuda_libraries'].items())}")
    click.echo(f"{'CPU features':>18}: {', '.join(f'{k}={v}' for k, v in report['cpu_features'].items())}")
    for p in report["problems"]:
        click.echo(f"problem: {p['problem']} — fix: {p['fix']}")
    if not report["problems"]:
        click.echo("no problems found")

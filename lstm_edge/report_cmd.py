"""The `lstm-edge report` command (registered on the main group by lstm_edge.cli): parse, call write_report, print.

Exit 0 with the page written; exit 2 with one line naming the problem and the fix, and nothing written.
"""

from __future__ import annotations

import click

from lstm_edge.bundle import bundle_root
from lstm_edge.cli.common import handle_errors, json_option, quiet_option, write_json


@click.command("report")
@click.argument("bundle", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The HTML file to write (one self-contained page).")
@click.option("--verify", "verify_json", type=click.Path(), help="verify's JSON (`lstm-edge verify --json PATH`); "
              "default: BUNDLE/verify.json where it exists.")  # fmt: skip
@click.option("--bench", "bench_json", type=click.Path(), help="bench's JSON (`lstm-edge bench --json PATH`); "
              "default: BUNDLE/bench.json where it exists.")  # fmt: skip
@json_option
@quiet_option
@handle_errors
def report(bundle: str, out: str, verify_json: str | None, bench_json: str | None, json_path: str | None) -> None:
    """One HTML page of what was proven about a bundle: model card, verdicts, parity, speed, how to embed."""
    bundle_root(bundle)  # a wrong path is refused before matplotlib is imported
    from lstm_edge.report import write_report  # matplotlib and the page builders: not needed to refuse bad input

    path = write_report(
        bundle,
        out,
        verify_json=verify_json,
        bench_json=bench_json,
        warn=lambda w: click.echo(f"warning: {w}", err=True),
    )
    write_json(json_path, {"out": str(path)})
    click.echo(f"wrote {path}")

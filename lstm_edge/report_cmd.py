"""The `lstm-edge report` command (registered on the main group by lstm_edge.cli): parse, call write_report, print.

Exit 0 with the page written; exit 2 with one line naming the problem and the fix, and nothing written.
"""

from __future__ import annotations

import sys
import traceback

import click

from lstm_edge.errors import LstmEdgeError


@click.command("report")
@click.argument("bundle", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The HTML file to write (one self-contained page).")
@click.option("--verify", "verify_json", type=click.Path(), help="verify's JSON (`lstm-edge verify --json PATH`); "
              "default: BUNDLE/verify.json where it exists.")  # fmt: skip
@click.option("--bench", "bench_json", type=click.Path(), help="bench's JSON (`lstm-edge bench --json PATH`); "
              "default: BUNDLE/bench.json where it exists.")  # fmt: skip
def report(bundle: str, out: str, verify_json: str | None, bench_json: str | None) -> None:
    """One HTML page of what was proven about a bundle: model card, verdicts, parity, speed, how to embed."""
    from lstm_edge.report import write_report  # matplotlib and the page builders: not needed to refuse bad input

    ctx = click.get_current_context()
    debug = ctx.find_root().params.get("debug", False)
    try:
        path = write_report(bundle, out, verify_json=verify_json, bench_json=bench_json)
    except (LstmEdgeError, OSError) as e:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path}")

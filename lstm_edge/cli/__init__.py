"""The `lstm-edge` command: parse, call the Python API, print. Exit 0 success, 1 parity/budget failure, 2 bad input.

One module per command group; each command only parses, calls the library, prints and lets `handle_errors` map
its errors to an exit code. Heavy dependencies (torch, onnx, onnxruntime, and numpy through the runtimes) are
imported inside the commands that need them, so `lstm-edge --help` stays fast.
"""

from __future__ import annotations

import click

from lstm_edge import __version__
from lstm_edge.cli.bench_cmd import bench
from lstm_edge.cli.bundle_cmd import bundle_cmd, codegen
from lstm_edge.cli.common import handle_errors
from lstm_edge.cli.doctor_cmd import doctor
from lstm_edge.cli.export_cmd import export, import_cmd, lint, quantize
from lstm_edge.cli.report_cmd import report
from lstm_edge.cli.run_cmd import run
from lstm_edge.cli.score_cmd import score
from lstm_edge.cli.train_cmd import train
from lstm_edge.cli.verify_cmd import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstm-edge")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
def main(debug: bool) -> None:
    """Train an LSTM, export it to ONNX, quantize it, run it anywhere, and prove every runtime matches PyTorch."""


for command in (
    train,
    export,
    lint,
    run,
    import_cmd,
    doctor,
    quantize,
    verify,
    bench,
    bundle_cmd,
    score,
    codegen,
    report,
):
    main.add_command(command)

__all__ = ["handle_errors", "main"]

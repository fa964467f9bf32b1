"""The `lstm-edge` command: parse, call the Python API, print. Exit 0 success, 1 parity/budget failure, 2 bad input.

One module per command group; each command only parses, calls the library, prints and lets `handle_errors` map
its errors to an exit code. A command's module is imported only when that command runs (click's lazy-loading
pattern, LazyGroup below), and heavy dependencies (torch, onnx, onnxruntime, and numpy through the runtimes) only
inside the commands that need them, so `lstm-edge run` pays for run alone and `lstm-edge --help` stays fast.
"""

from __future__ import annotations

import importlib

import click

from lstm_edge import __version__
from lstm_edge.cli.common import handle_errors, one_line_usage

# command name → "module:attribute" of its click command.
COMMANDS = {
    "train": "lstm_edge.cli.train_cmd:train",
    "export": "lstm_edge.cli.export_cmd:export",
    "lint": "lstm_edge.cli.export_cmd:lint",
    "run": "lstm_edge.cli.run_cmd:run",
    "import": "lstm_edge.cli.export_cmd:import_cmd",
    "doctor": "lstm_edge.cli.doctor_cmd:doctor",
    "quantize": "lstm_edge.cli.export_cmd:quantize",
    "verify": "lstm_edge.cli.verify_cmd:verify",
    "bench": "lstm_edge.cli.bench_cmd:bench",
    "bundle": "lstm_edge.cli.bundle_cmd:bundle_cmd",
    "score": "lstm_edge.cli.score_cmd:score",
    "codegen": "lstm_edge.cli.bundle_cmd:codegen",
    "report": "lstm_edge.report_cmd:report",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted (as click lists an eager group's)."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named `cmd_name`, importing its module now; None for an unknown name (click says so)."""
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attr = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attr)
        self.add_command(command, cmd_name)
        return command

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        """click's, with a usage error of the group's own options as one line (common.one_line_usage), exit 2."""
        with one_line_usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context):
        """click's, with a usage error of a command (missing argument, unknown option or command) as one line."""
        with one_line_usage():
            return super().invoke(ctx)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstm-edge")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
def main(debug: bool) -> None:
    """Train an LSTM, export it to ONNX, quantize it, run it anywhere, and prove every runtime matches PyTorch."""


__all__ = ["handle_errors", "main"]

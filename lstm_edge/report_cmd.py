"""The `lstm-edge report` command's old address: it lives in lstm_edge.cli.report_cmd, with the other commands."""

from lstm_edge.cli.report_cmd import report

__all__ = ["report"]

"""`lstm-edge lint`: the recurrent-model traps that break streaming, quantization or other runtimes, each with its fix.

The rules themselves live in export/lint_rules/, one table (lint_rules.RULES); this module runs them."""

from __future__ import annotations

from pathlib import Path

import onnx

from lstm_edge.export.lint_rules import GRAPH, RULES, Finding, LintContext
from lstm_edge.onnx_io import load_onnx_checked

__all__ = ["Finding", "lint", "load_onnx"]


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse with the same checks every runtime applies (size, protobuf, external data outside the folder).

    Raises LstmEdgeError (one line with its fix) for a missing, empty, unreadable or oversized file."""
    return load_onnx_checked(path)


def lint(model: onnx.ModelProto) -> list[Finding]:
    """Every recurrent-model trap found in `model`, each with its fix: [] for a clean lstm-edge graph.

    Errors break streaming, other batch or sequence lengths, or quantization; warnings name runtimes that reject
    or miscompute a feature (measured, lstm_edge.runtimes.registry.RUNTIME_LIMITS). Pure: reads the proto, runs nothing.
    Findings come in the order of lint_rules.RULES, one per (code, message) (a state input feeds several layers).
    Raises nothing of its own; a proto that breaks ONNX's own rules (a node without outputs, say) may raise the
    IndexError of reading it, so read files with load_onnx first."""
    ctx = LintContext.of(model)
    per_node = [r for r in RULES if r.scope == "node"]
    per_input = [r for r in RULES if r.scope == "input"]
    found: list[Finding] = []
    for rule in RULES:
        if rule.scope == "graph":
            found += rule.findings(ctx, GRAPH)
        elif rule is (per_node + per_input)[0]:  # the per-node block runs where it stands in the table
            for node in ctx.node_sites():
                found += [f for r in per_node for f in r.findings(ctx, node)]
                found += [f for inp in ctx.input_sites(node) for r in per_input for f in r.findings(ctx, inp)]
    seen: set[tuple[str, str]] = set()  # one finding per (code, message): a state input feeds several layers
    return [f for f in found if (f.code, f.message) not in seen and not seen.add((f.code, f.message))]

"""layout-1, sequence-lens, peephole, reverse-direction, repeated-input: node features that some runtimes reject or miscompute
(measured, lstm_edge.runtimes.registry.RUNTIME_LIMITS). Twins: one attribute or input each, one message each."""

from __future__ import annotations

from collections.abc import Iterator

from lstm_edge.export.lint_rules.context import LintContext
from lstm_edge.export.lint_rules.rule import Hit, LintRule, Site
from lstm_edge.onnx_io import repeated_input
from lstm_edge.runtimes.registry import RUNTIME_LIMITS


def check_layout(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The node runs batch-major (layout=1)."""
    if site.attrs.get("layout", 0) == 1:
        limits = RUNTIME_LIMITS["layout-1"]
        yield Hit(
            f"{site.label} uses layout=1 (batch-major): {limits['onnxruntime']}; {limits['openvino']}; "
            "tract runs it correctly"
        )


def check_sequence_lens(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The node takes a sequence_lens input (slot 4)."""
    n = site.node
    if len(n.input) > 4 and n.input[4]:
        limits = RUNTIME_LIMITS["sequence-lens"]
        yield Hit(
            f"{site.label} takes sequence_lens ({n.input[4]!r}): ONNX Runtime honours it; {limits['openvino']}; "
            f"{limits['tract']}"
        )


def check_peephole(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """An LSTM with peephole weights P (slot 7)."""
    n = site.node
    if n.op_type == "LSTM" and len(n.input) > 7 and n.input[7]:
        yield Hit(
            f"{site.label} has peephole weights P: {RUNTIME_LIMITS['peephole']['openvino']}; ONNX Runtime and "
            "tract honour them (PyTorch's nn.LSTM has none, so --rebuild cannot carry them)"
        )


def check_reverse(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The node runs direction=reverse (bidirectional is computed right everywhere)."""
    direction = site.attrs.get("direction", b"forward")
    if (direction.decode() if isinstance(direction, bytes) else direction) == "reverse":
        yield Hit(f"{site.label} runs direction=reverse: {RUNTIME_LIMITS['reverse']['tract']}")


def check_repeated(ctx: LintContext, site: Site) -> Iterator[Hit]:
    """The node's X is one tensor repeated over time by a Tile or Expand (an autoencoder's decoder)."""
    if repeated_input(ctx.graph, site.node, ctx.inits):
        yield Hit(
            f"{site.label} reads one tensor repeated over time (Tile/Expand): {RUNTIME_LIMITS['repeated-input']['tract']}"
        )


LAYOUT_1 = LintRule(
    id="layout-1",
    severity="error",
    scope="node",
    doc="a recurrent node is batch-major (layout=1): ONNX Runtime rejects it and OpenVINO miscomputes it",
    fix="use layout=0 with a Transpose on x (lstm-edge import MODEL.onnx --out BUNDLE --rebuild does it), "
    "or run it on tract",
    check=check_layout,
)
SEQUENCE_LENS = LintRule(
    id="sequence-lens",
    severity="warning",
    scope="node",
    doc="a recurrent node takes sequence_lens: OpenVINO ignores it and tract cannot load it",
    fix="run it on ONNX Runtime, or pad sequences to full length and drop sequence_lens",
    check=check_sequence_lens,
)
PEEPHOLE = LintRule(
    id="peephole",
    severity="warning",
    scope="node",
    doc="an LSTM has peephole weights P: OpenVINO ignores them",
    fix="run it on ONNX Runtime or tract",
    check=check_peephole,
)
REVERSE_DIRECTION = LintRule(
    id="reverse-direction",
    severity="warning",
    scope="node",
    doc="a recurrent node runs direction=reverse: tract computes it wrongly",
    fix="run it on ONNX Runtime or OpenVINO",
    check=check_reverse,
)
REPEATED_INPUT = LintRule(
    id="repeated-input",
    severity="warning",
    scope="node",
    doc="a recurrent node reads one tensor repeated over time (Tile/Expand): tract computes a single step",
    fix="run it on ONNX Runtime or OpenVINO",
    check=check_repeated,
)

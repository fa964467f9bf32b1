"""What a lint rule is (LintRule), where it looks (Site), and what it reports (Finding)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import onnx

if TYPE_CHECKING:  # typing only: the context module imports Site from here
    from lstm_edge.export.lint_rules.context import LintContext

Severity = Literal["error", "warning"]
# "graph": once per model; "node": once per recurrent node; "input": once per weight or state input of a recurrent
# node (W, R, B, P, initial_h, initial_c in that order), right after that node's "node" rules.
Scope = Literal["graph", "node", "input"]


@dataclass
class Finding:
    """One trap found in a model: severity ("error" breaks streaming, other shapes or quantization; "warning" names
    a runtime that rejects or miscomputes a feature), the rule's id as `code`, what was found, and the fix."""

    severity: str  # "error" | "warning"
    code: str
    message: str
    fix: str

    def to_dict(self) -> dict:
        """{"severity", "code", "message", "fix"}: the JSON shape of `lstm-edge lint --json`."""
        return asdict(self)


@dataclass(frozen=True)
class Site:
    """Where a rule looks: the whole graph (Site()), one recurrent node, or one weight/state input of that node.

    node: the recurrent node (None for the graph); attrs: its attributes as Python values; label: "LSTM 'name'" as
    messages print it; slot: the node input's index; role: "W", "R", "B", "P", "initial_h" or "initial_c";
    name: the input's value name ("" when the slot is unset)."""

    node: onnx.NodeProto | None = None
    attrs: dict = field(default_factory=dict)
    label: str = ""
    slot: int = -1
    role: str = ""
    name: str = ""

    @property
    def is_weight(self) -> bool:
        """A W, R, B or P input (the others are initial_h / initial_c)."""
        return self.role in ("W", "R", "B", "P")


@dataclass(frozen=True)
class Hit:
    """One occurrence a rule's check found: the message, and the values its fix text names ({name} etc.)."""

    message: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LintRule:
    """One lint rule: its id (the finding's code), severity, the one-line trap it catches (doc), the fix a finding
    carries (a template filled from the hit's fields), where it looks (scope) and the check itself."""

    id: str
    severity: Severity
    scope: Scope
    doc: str
    fix: str
    check: Callable[[LintContext, Site], Iterable[Hit]]

    def findings(self, ctx: LintContext, site: Site) -> list[Finding]:
        """This rule's findings at `site`, each with the rule's severity, id and fix."""
        return [Finding(self.severity, self.id, h.message, self.fix.format(**h.fields)) for h in self.check(ctx, site)]

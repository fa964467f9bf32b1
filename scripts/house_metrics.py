#!/usr/bin/env python3
"""The house in figures: lines per library file, functions over 80 lines, import cycles (function-level imports
included), private names used outside their module, imports deferred without a reason, public docstring coverage.

    python scripts/house_metrics.py            # a report for people
    python scripts/house_metrics.py --json     # the same figures for machines
    python scripts/house_metrics.py --check    # exit 1 where a target of docs/design.md is missed

The library is lstm_edge/ plus export/ and runtimes/, which pyproject maps to lstm_edge.export and
lstm_edge.runtimes. Only the standard library is used (ast): the code is read, never imported or run.

Targets (issue 23): no file over 450 lines, no function over 80, zero import cycles, no private name borrowed
across modules, no import deferred inside a function without a comment saying why (a heavy dependency: torch,
onnxruntime, …), public docstrings >= 95%.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Folder → the import name of the package it holds (pyproject's package-dir mapping).
PACKAGE_DIRS = {"lstm_edge": "lstm_edge", "export": "lstm_edge.export", "runtimes": "lstm_edge.runtimes"}
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80
MIN_DOCSTRING_SHARE = 0.95


@dataclass
class Module:
    """One library module as read from disk."""

    name: str  # dotted import name, e.g. lstm_edge.runtimes.base
    path: Path  # relative to the checkout
    tree: ast.Module
    lines: int
    is_package: bool
    source: list[str]


@dataclass
class Figures:
    """Everything the report prints; `--json` writes it as is."""

    files: int = 0
    lines: int = 0
    files_over: list[tuple[str, int]] = field(default_factory=list)
    functions_over: list[tuple[str, int]] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    cycle_edges: list[str] = field(default_factory=list)
    function_level_internal_imports: list[str] = field(default_factory=list)
    function_level_imports: int = 0
    deferred_without_reason: list[str] = field(default_factory=list)
    private_borrowed: list[str] = field(default_factory=list)
    public_defs: int = 0
    public_documented: int = 0
    undocumented: list[str] = field(default_factory=list)
    raises_unsaid: list[str] = field(default_factory=list)

    @property
    def docstring_share(self) -> float:
        """Documented public definitions over all public definitions (1.0 where there are none)."""
        return self.public_documented / self.public_defs if self.public_defs else 1.0

    def misses(self) -> list[str]:
        """The targets this tree misses, one line each (empty: every target met)."""
        out = []
        if self.files_over:
            out.append(f"{len(self.files_over)} file(s) over {MAX_FILE_LINES} lines")
        if self.functions_over:
            out.append(f"{len(self.functions_over)} function(s) over {MAX_FUNCTION_LINES} lines")
        if self.cycles:
            out.append(f"{len(self.cycles)} import cycle(s)")
        if self.private_borrowed:
            out.append(f"{len(self.private_borrowed)} private name(s) used outside their module")
        if self.function_level_internal_imports:
            out.append(
                f"{len(self.function_level_internal_imports)} function-level import(s) of lstm_edge modules, no why"
            )
        if self.docstring_share < MIN_DOCSTRING_SHARE:
            out.append(f"public docstrings {self.docstring_share:.1%} < {MIN_DOCSTRING_SHARE:.0%}")
        return out


def read_modules(root: Path) -> dict[str, Module]:
    """Every .py file of the library under `root`, keyed by its dotted import name."""
    mods = {}
    for folder, package in PACKAGE_DIRS.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            text = path.read_text(encoding="utf-8")
            rel_path = path.relative_to(root)
            tree = ast.parse(text, str(rel_path))
            mods[name] = Module(name, rel_path, tree, text.count("\n"), path.name == "__init__.py", text.splitlines())
    return mods


def _resolve_from(mod: Module, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `mod`)."""
    if not node.level:
        return node.module or ""
    package = mod.name if mod.is_package else mod.name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(mod: Module, known: set[str]):
    """Yield (target module, imported names, line, inside a function?) for each import in `mod`."""

    def visit(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, [], child.lineno, in_function
            elif isinstance(child, ast.ImportFrom):
                base = _resolve_from(mod, child)
                plain = []
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    if sub in known:  # `from lstm_edge.runtimes import base`: the submodule itself
                        yield sub, [], child.lineno, in_function
                    else:
                        plain.append(a.name)
                if plain:
                    yield base, plain, child.lineno, in_function
            else:
                yield from visit(child, inner)

    yield from visit(mod.tree, False)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_graph(mods: dict[str, Module], figs: Figures) -> dict[str, set[str]]:
    """Edges module → internal module it imports (at any depth); fills the import findings of `figs`."""
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod in mods.values():
        source = mod.source
        guarded = {
            n.lineno for top in mod.tree.body if _is_type_checking(top) for n in ast.walk(top) if hasattr(n, "lineno")
        }
        for target, names, line, in_function in _imports(mod, known):
            internal = target in known
            where = f"{mod.path.as_posix()}:{line}"
            if line in guarded:
                continue  # typing only: never executed
            if internal and target != mod.name:
                graph[mod.name].add(target)
                for n in names:
                    if n.startswith("_") and not n.startswith("__"):
                        figs.private_borrowed.append(f"{where} {n} from {target}")
            if in_function:
                figs.function_level_imports += 1
                said = "#" in " ".join(source[max(0, line - 2) : line])  # a comment on the line or the one above
                if internal and not said:
                    figs.function_level_internal_imports.append(f"{where} {target}")
                elif not said:
                    figs.deferred_without_reason.append(f"{where} {target}")
    _private_attributes(mods, figs)
    return graph


def _private_attributes(mods: dict[str, Module], figs: Figures) -> None:
    """`alias._name` where alias is an imported lstm_edge module."""
    known = set(mods)
    for mod in mods.values():
        aliases = {}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in known and a.asname:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(mod, node)
                for a in node.names:
                    if f"{base}.{a.name}" in known:
                        aliases[a.asname or a.name] = f"{base}.{a.name}"
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                figs.private_borrowed.append(
                    f"{mod.path.as_posix()}:{node.lineno} {node.attr} from {aliases[node.value.id]}"
                )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _docstring_findings(mod: Module, figs: Figures) -> None:
    """Public module-level functions and classes, and public methods of public classes."""

    def check(node, qual: str) -> None:
        figs.public_defs += 1
        doc = ast.get_docstring(node)
        if doc:
            figs.public_documented += 1
        else:
            figs.undocumented.append(f"{mod.path.as_posix()}:{node.lineno} {qual}")
        if doc is not None and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            raises = any(isinstance(n, ast.Raise) and n.exc is not None for n in ast.walk(node))
            if raises and "rais" not in doc.lower():
                figs.raises_unsaid.append(f"{mod.path.as_posix()}:{node.lineno} {qual}")

    for node in mod.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            check(node, node.name)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith("_"):
                        check(item, f"{node.name}.{item.name}")


def measure(root: Path) -> Figures:
    """Every figure of the report for the checkout at `root`."""
    mods = read_modules(root)
    figs = Figures(files=len(mods), lines=sum(m.lines for m in mods.values()))
    for mod in mods.values():
        rel = mod.path.as_posix()
        if mod.lines > MAX_FILE_LINES:
            figs.files_over.append((rel, mod.lines))
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    figs.functions_over.append((f"{rel}:{node.lineno} {node.name}", n))
        _docstring_findings(mod, figs)
    graph = import_graph(mods, figs)
    figs.cycles = cycles(graph)
    for comp in figs.cycles:
        members = set(comp)
        figs.cycle_edges += [f"{a} -> {b}" for a in comp for b in sorted(graph[a] & members)]
    figs.files_over.sort(key=lambda t: -t[1])
    figs.functions_over.sort(key=lambda t: -t[1])
    return figs


def report(figs: Figures, limit: int) -> str:
    """The figures as text for people; lists cut at `limit` rows."""

    def rows(title: str, items: list) -> list[str]:
        out = [f"{title}: {len(items)}"]
        out += [f"  {' '.join(map(str, i)) if isinstance(i, tuple) else i}" for i in items[:limit]]
        if len(items) > limit:
            out.append(f"  … {len(items) - limit} more (--limit)")
        return out

    lines = [f"library: {figs.files} files, {figs.lines} lines"]
    lines += rows(f"files over {MAX_FILE_LINES} lines", figs.files_over)
    lines += rows(f"functions over {MAX_FUNCTION_LINES} lines", figs.functions_over)
    lines += rows("import cycles (strongly connected modules)", [" ↔ ".join(c) for c in figs.cycles])
    if figs.cycle_edges:
        lines += rows("  their edges", figs.cycle_edges)
    lines += rows("private names used outside their module", figs.private_borrowed)
    lines.append(f"imports inside functions: {figs.function_level_imports}")
    lines += rows("  of lstm_edge modules with no comment saying why", figs.function_level_internal_imports)
    lines += rows("  of other packages without a comment saying why", figs.deferred_without_reason)
    lines.append(
        f"public docstrings: {figs.public_documented}/{figs.public_defs} = {figs.docstring_share:.1%}"
        f" (target {MIN_DOCSTRING_SHARE:.0%})"
    )
    lines += rows("  undocumented", figs.undocumented)
    lines += rows("  documented, raise, but do not say so", figs.raises_unsaid)
    misses = figs.misses()
    lines.append("targets: all met" if not misses else "targets missed: " + "; ".join(misses))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the report (or JSON); with --check, exit 1 where a target is missed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout to read")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--limit", type=int, default=25, help="rows per list in the text report")
    args = ap.parse_args(argv)
    figs = measure(args.root.resolve())
    if args.json:
        print(json.dumps({**asdict(figs), "docstring_share": figs.docstring_share, "misses": figs.misses()}, indent=1))
    else:
        print(report(figs, args.limit))
    return 1 if args.check and figs.misses() else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a report reads: the bundle, and the JSON that `verify` and `bench` wrote (found or named), checked first.

The report never runs verify or bench: it reads what they wrote. A JSON given by path must be the right tool's
(its "schema" tag); one found at a conventional place inside the bundle folder is used only when it is.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from lstm_edge import limits
from lstm_edge.bundle import Bundle
from lstm_edge.digest import sha256_file
from lstm_edge.errors import LstmEdgeError, ParityError, first_line

VERIFY_SCHEMA = "lstm-edge/verify"
BENCH_SCHEMA = "lstm-edge/bench"
# Where report looks when --verify / --bench is not given: beside manifest.json, as
# `lstm-edge verify BUNDLE --json BUNDLE/verify.json` would put it. Nothing writes there by default yet.
CONVENTIONAL = {VERIFY_SCHEMA: "verify.json", BENCH_SCHEMA: "bench.json"}
# A full verify report is ~1 MB (2,304 runs with every error statistic); 64 MiB is far above any we write.
MAX_REPORT_JSON_BYTES = 64 * limits.MiB
_TOOL = {VERIFY_SCHEMA: ("verify", "--verify"), BENCH_SCHEMA: ("bench", "--bench")}


@dataclass
class ToolReport:
    """One tool's JSON as read: the parsed document and where it came from ("--verify", or "found in the bundle")."""

    doc: dict
    path: Path
    origin: str


@dataclass
class ReportInputs:
    """Everything one page shows: the opened bundle and, where they were run, verify's and bench's reports."""

    bundle: Bundle
    verify: ToolReport | None
    bench: ToolReport | None
    # what the page must say before anything else: artifacts that no longer match their sha256, a verify report
    # written for other files (a trial's report said "verify PASSED" of a bundle tampered after that verify)
    warnings: list[str] = field(default_factory=list)

    def command(self, tool: str) -> str:
        """The command that writes `tool`'s JSON ("verify" or "bench") where the report finds it by itself."""
        root = shlex.quote(str(self.bundle.root))
        name = CONVENTIONAL[VERIFY_SCHEMA if tool == "verify" else BENCH_SCHEMA]
        quick = " --quick" if tool == "bench" else ""
        return f"lstm-edge {tool} {root}{quick} --json {shlex.quote(str(self.bundle.root / name))}"


def read_tool_json(path: str | Path, schema: str) -> dict:
    """The JSON report at `path`, which must carry `schema` ("lstm-edge/verify" or "lstm-edge/bench").

    Raises LstmEdgeError (one line with the fix) when the file is missing, too large, not JSON, or another tool's
    (a bench report given as --verify says to pass it as --bench)."""
    path = Path(path)
    tool, option = _TOOL[schema]
    fix = f"pass the file `lstm-edge {tool} BUNDLE --json PATH` wrote"
    if not path.is_file():
        raise LstmEdgeError(f"{option} {path}: no such file", f"run `lstm-edge {tool} BUNDLE --json {path}` first")
    limits.check_file_size(path, MAX_REPORT_JSON_BYTES, f"the {tool} report", fix)
    doc = limits.loads_json(path.read_bytes(), f"{option} {path}", fix)
    found = doc.get("schema") if isinstance(doc, dict) else None
    if found == schema:
        return doc
    if found in _TOOL:
        other_tool, other_option = _TOOL[found]
        raise LstmEdgeError(f"{option} {path} is {other_tool}'s report, not {tool}'s", f"pass it as {other_option}")
    raise LstmEdgeError(f'{option} {path} is not an lstm-edge {tool} report (no "schema": "{schema}")', fix)


def _find(bundle: Bundle, given: str | Path | None, schema: str) -> ToolReport | None:
    """The named report, or the one at the conventional place when it is this tool's; None when neither exists."""
    if given is not None:
        return ToolReport(read_tool_json(given, schema), Path(given), _TOOL[schema][1])
    path = bundle.root / CONVENTIONAL[schema]
    if not path.is_file():
        return None
    try:
        return ToolReport(read_tool_json(path, schema), path, "found in the bundle folder")
    except LstmEdgeError:
        return None  # not ours to judge: the section then says how to write one


def gather(
    bundle: str | Path, verify_json: str | Path | None = None, bench_json: str | Path | None = None
) -> ReportInputs:
    """Open the bundle and read the reports (see read_tool_json). Raises LstmEdgeError for a path that is not a
    bundle or a JSON that is not the named tool's, before anything is drawn or written."""
    opened = Bundle.open(bundle)
    inputs = ReportInputs(opened, _find(opened, verify_json, VERIFY_SCHEMA), _find(opened, bench_json, BENCH_SCHEMA))
    integrity = integrity_warnings(opened)
    inputs.warnings = integrity + self_check_warnings(opened) + stale_warnings(opened, inputs.verify)
    return inputs


def self_check_warnings(bundle: Bundle) -> list[str]:
    """One line per variant that fails ONNX Runtime CPU's self-check (runtimes.self_check: its golden cases, ~40 ms
    a variant, or a pass cached for these very files). A manifest re-signed after its model was altered matches every
    sha256, so only running the model shows it (a trial's tampered bundle got a clean page). A variant whose file
    fails its sha256 is left to integrity_warnings; one ORT cannot open here is named too. Raises nothing."""
    # onnxruntime and numpy, through the runtimes: deferred, as report's other heavy imports
    from lstm_edge.runtimes import open_runner

    out = []
    recorded = bundle.recorded_hashes()
    for v in bundle.variants():
        path = bundle.root / bundle.entry(v).get("path", "")
        try:
            if v in recorded and not (path.is_file() and sha256_file(path) == recorded[v]):
                continue  # integrity_warnings names it
            with open_runner(bundle.root, "cpu", variant=v, self_check=True):
                pass
        except ParityError as e:
            out.append(f"{e.problem}: nothing on this page holds for it; run `lstm-edge verify` to see which files")
        except (LstmEdgeError, OSError) as e:
            out.append(f"self-check of {v} could not run on onnxruntime (cpu): {first_line(e, 200)}")
    return out


def integrity_warnings(bundle: Bundle) -> list[str]:
    """One line per artifact whose file no longer matches the sha256 its manifest records (or is gone): then
    nothing the manifest says of it holds. Raises nothing (an unreadable file is named, not raised)."""
    out = []
    for name, digest in bundle.recorded_hashes().items():
        path = bundle.root / bundle.manifest["artifacts"][name].get("path", "")
        try:
            ok = path.is_file() and sha256_file(path) == digest
        except OSError:
            ok = False
        if not ok:
            out.append(f"integrity: {name} ({path.name}) does not match its sha256 in the manifest — changed after "
                       "export: nothing on this page holds for it; re-export, or run `lstm-edge verify` to see")  # fmt: skip
    return out


def stale_warnings(bundle: Bundle, verify: ToolReport | None) -> list[str]:
    """A line where verify's report was written for other files than the bundle's manifest records now (or names
    none: an older lstm-edge). Raises nothing."""
    if verify is None:
        return []
    judged = (verify.doc.get("bundle") or {}).get("sha256")
    if judged is None:
        return [f"verify's report ({verify.path}) does not record which files it judged (an older lstm-edge): "
                "re-run verify for a page that holds"]  # fmt: skip
    changed = sorted(k for k, v in bundle.recorded_hashes().items() if judged.get(k) != v)
    if changed:
        return [f"verify's report ({verify.path}) judged other files than the bundle holds now ({', '.join(changed)} "
                "changed since): its results below are not this bundle's — re-run verify"]  # fmt: skip
    return []

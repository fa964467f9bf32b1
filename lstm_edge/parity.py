"""The parity matrix behind `lstm-edge verify`: every runtime × variant × shape × initial state × streaming mode
against the float64 reference, with per-timestep drift over a long sequence.

verify in three steps: reference cases (lstm_edge.cases: inputs and the reference's outputs, computed once),
per-target checks (one runtime × variant against every case, each output judged by compare()), and the report
(lstm_edge.verify_report: its types, table, Markdown and figures; its JSON follows schemas/verify.schema.json).
verify's config and report writers are importable from here too: this module is verify's front door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_edge.atomic import sha256_file
from lstm_edge.bundle import Bundle, entry_verdict
from lstm_edge.cases import (
    QUICK,
    ReferenceCase,
    VerifyConfig,
    case_inputs,
    compute_reference_cases,
    reference_artifact,
    reference_runner,
)
from lstm_edge.config import OUTPUT_NAMES as OUTPUTS
from lstm_edge.environment import available_providers, environment
from lstm_edge.errors import LstmEdgeError
from lstm_edge.progress import progress_bar
from lstm_edge.runtimes import RUNTIMES, Runner, RunnerOptions, open_runner
from lstm_edge.tolerances import error_stats, tolerance
from lstm_edge.verify_report import (
    SCHEMA,
    SCHEMA_VERSION,
    CaseResult,
    IntegrityRow,
    OutputCheck,
    TargetResult,
    VerifyReport,
    plot_drift,
    summary_rows,
    to_markdown,
)

__all__ = [
    "QUICK",
    "SCHEMA",
    "SCHEMA_VERSION",
    "VerifyConfig",
    "VerifyReport",
    "available_providers",
    "compare",
    "plot_drift",
    "summary_rows",
    "to_markdown",
    "verify",
]


def compare(got: np.ndarray, want: np.ndarray, bound: float) -> OutputCheck:
    """Judge one output against the reference: tolerances.error_stats, plus `tolerance` (= bound) and `passed`
    (every value finite and max scaled error |Δ|/max(1, |want|) ≤ bound). Arrays of any equal shape; raises
    nothing."""
    stats = error_stats(got, want)
    finite = bool(np.isfinite(got).all())
    return stats | {"tolerance": bound, "passed": bool(finite and stats["max_scaled"] <= bound)}


def _drift(runner: Runner, x: np.ndarray, state: tuple[np.ndarray, ...], batch_first: bool = True) -> dict:
    """Per-timestep y, h (and c for an LSTM) ([T, ...] each), stepping one sample at a time (the device's view);
    x in the model's layout."""
    s = runner.stream(batch=x.shape[0 if batch_first else 1])
    s.state = state
    out: dict[str, list] = {"y": [], "h": [], "c": []}
    for t in range(x.shape[1 if batch_first else 0]):
        out["y"].append(s.step(x[:, t] if batch_first else x[t]))
        for k, a in zip("hc", s.state, strict=False):
            out[k].append(a)
    return {k: np.stack(v) for k, v in out.items() if v}


def _check_integrity(bundle: Bundle) -> list[IntegrityRow]:
    """One row per manifest artifact. Each path passes Bundle.locate first (inside the bundle, symlinks resolved,
    size as recorded and under the cap); one that fails is an integrity failure and its file is never opened, so a
    manifest naming /etc/shadow or ../x, or a 64 GiB file, costs a stat, not a read."""
    rows: list[IntegrityRow] = []
    for name, entry in bundle.manifest["artifacts"].items():
        try:
            path = bundle.locate(name)
        except LstmEdgeError as e:
            rows.append({"artifact": name, "path": entry["path"], "ok": False, "detail": e.problem})
            continue
        actual = sha256_file(path)
        ok = actual == entry["sha256"]
        detail = "sha256 matches" if ok else f"sha256 {actual[:12]}… ≠ manifest"
        rows.append({"artifact": name, "path": entry["path"], "ok": ok, "detail": detail})
    return rows


def _run_mode(runner: Runner, case: ReferenceCase, mode: str) -> tuple[np.ndarray, ...]:
    if mode == "full":
        y, state = runner.run(case.x, case.state, case.lengths)
        return (y, *state)
    chunk = mode.split(":")[1]
    s = runner.stream(batch=case.batch)
    s.state = case.state
    y = s.feed(case.x, case.seq if chunk == "T" else int(chunk))
    return (y, *s.state)


def _modes_for(config, case: ReferenceCase, modes: list[str]) -> list[str]:
    """Streaming modes where the model streams (not bidirectional) and every sequence runs to T."""
    if not config.streamable or (case.lengths is not None and int(case.lengths.min()) < case.seq):
        return [m for m in modes if m == "full"]
    return modes


def _check_target(
    runner: Runner, provider: str, entry: dict, cases: list[ReferenceCase], modes: list[str], bar
) -> list[CaseResult]:
    results: list[CaseResult] = []
    config = runner.source.config
    names = config.output_names if config is not None else OUTPUTS
    bundle = runner.source.bundle
    if bundle is not None and not bundle.stateful and runner.source.spec_form:  # a forward exported whole: y alone
        names = names[:1]
    for case in cases:
        case_modes = _modes_for(config, case, modes) if config is not None else modes
        bar.update(len(modes) - len(case_modes))
        for mode in case_modes:
            got = _run_mode(runner, case, mode)
            outs = {
                name: compare(a, b, tolerance(entry, case.seq, name, provider))
                for name, a, b in zip(names, got, case.want, strict=True)
            }
            results.append(
                {
                    "batch": case.batch,
                    "seq": case.seq,
                    "state": "random" if case.random_state else "zero",
                    "mode": mode,
                    "outputs": outs,
                    "passed": all(o["passed"] for o in outs.values()),
                }
            )
            bar.update()
    return results


def _unsupported_reason(provider: str, variant: str, avail: dict[str, str | None]) -> str | None:
    info = RUNTIMES.get(provider)
    by_design = info.variant_refusal(variant) if info is not None else None  # torch: fp32; c: fp32 and int8
    return by_design or avail.get(provider)


def _judge(result: TargetResult, strict: bool) -> bool:
    """Set a checked target's status and reason; True when it fails the report.

    A variant outside its own recorded bound on a runtime fails ("fail"), whether its task metric said deployable or
    could not be measured (unverified): the bound is what the variant promises on every runtime, whatever its task
    metric. A variant within its bound passes, labelled by its verdict: "pass" (deployable), "unverified" (no task
    data; fails only with --strict). A variant its task metric judged not deployable is a finding either way:
    "not-deployable", failing the report only with --strict."""
    failed = not all(c["passed"] for c in result["cases"])
    verdict = result.get("verdict") or ("deployable" if result["deployable"] else "not-deployable")
    judge = "codegen" if (result["runtime"], result["variant"]) == ("c", "int8") else "quantize"
    if verdict == "not-deployable":
        result["status"] = "not-deployable"
        why_not = f"{judge} found its task metric over budget"
        result["reason"] = (
            f"errors above tolerance ({why_not})" if failed else f"within parity tolerance, but {why_not}"
        )
        return strict
    if failed:
        result["status"] = "fail"
        result["reason"] = "errors above tolerance" + (
            f" (its own recorded bound; {judge} could not measure its task metric: unverified)"
            if verdict == "unverified"
            else ""
        )
        return True
    if verdict == "unverified":
        result["status"] = "unverified"
        result["reason"] = f"within parity tolerance; {judge} could not measure its task metric (no task data)"
        return strict
    return False


def verify(bundle_path: str | Path, cfg: VerifyConfig | None = None) -> VerifyReport:
    """Prove parity: every provider × variant in `cfg` against the reference (reference_runner), on every case.

    Args:
        bundle_path: a bundle folder (manifest.json, model.pt, model*.onnx).
        cfg: the matrix (VerifyConfig(); .quick() for the small one).
    Returns the report (VerifyReport, schemas/verify.schema.json). A parity failure does not raise: it is
    report["passed"] False, with each failing target's status "fail" (the CLI exits 1 on it).
    Raises LstmEdgeError for bad input: an unreadable bundle, an unknown provider or variant, an int8 variant
    without its recorded error profile.
    """
    cfg = cfg or VerifyConfig()
    bundle = Bundle.open(bundle_path)
    providers, variants = _targets(bundle, cfg)
    integrity = _check_integrity(bundle) if cfg.verify_hash else []
    broken = {r["artifact"] for r in integrity if not r["ok"]}
    report = _new_report(bundle, cfg, integrity, passed=not broken)
    ref_artifact = reference_artifact(bundle)
    if ref_artifact in broken:
        report["results"].append(
            {
                "runtime": "reference" if ref_artifact == "fp32" else "torch",
                "variant": "fp32",
                "status": "fail",
                "deployable": True,
                "reason": f"the reference ({ref_artifact}) failed its integrity check",
                "cases": [],
            }
        )
        return report

    avail = available_providers()
    if cfg.providers and all(avail.get(p) for p in providers):
        raise LstmEdgeError(
            "none of the requested providers can run here: " + "; ".join(f"{p}: {avail[p]}" for p in providers),
            "install one, or choose from: " + ", ".join(p for p, why in avail.items() if why is None),
        )
    with reference_runner(bundle) as reference:
        matrix = _Matrix.compute(reference, bundle, cfg, broken, avail)  # 1. reference cases, once for every target
        pairs = [(p, v) for p in providers for v in variants]
        bar = progress_bar(total=len(pairs) * matrix.runs, desc="verify", unit="run", enabled=cfg.progress)
        c_int8 = None  # the int8 C's own verdict, judged once (codegen.c_int8_verdict)
        for provider, variant in pairs:  # 2. per-target checks
            if provider == "c" and variant == "int8":
                from lstm_edge.codegen import c_int8_verdict  # deferred: codegen imports torch (the [torch] extra)

                c_int8 = c_int8 or c_int8_verdict(bundle)
            result = _check_pair(matrix, provider, variant, c_int8, bar, report)
            if result is not None and _judge(result, cfg.strict):  # 3. a failing deployable target fails the report
                report["passed"] = False
        bar.close()
    _nothing_proven(report, matrix.load_failures, providers)
    return report


def _targets(bundle: Bundle, cfg: VerifyConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The providers and variants `cfg` asks for (default: every runtime but the reference judge, every variant).
    Raises LstmEdgeError for an unknown provider or a variant the bundle lacks."""
    # "reference" (float64 onnx.reference) is a judge, not a runtime to deploy: checked only when named.
    providers = cfg.providers or tuple(p for p in RUNTIMES if p != "reference")
    for p in providers:
        if p not in RUNTIMES:
            raise LstmEdgeError(f"unknown provider {p!r}", f"choose from {', '.join(RUNTIMES)}")
    variants = cfg.variants or tuple(bundle.variants())
    for v in variants:
        bundle.entry(v)  # a clear error for a variant the bundle lacks
    return providers, variants


def _new_report(bundle: Bundle, cfg: VerifyConfig, integrity: list[IntegrityRow], passed: bool) -> VerifyReport:
    """An empty report: the bundle, this machine's environment and the integrity rows; results and drift to come."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "passed": passed,
        "reason": "",
        "strict": cfg.strict,
        # the files this verify judged, by the manifest's sha256: a report shows it only for the same files
        "bundle": {"name": bundle.name, "path": str(bundle.root), "sha256": bundle.recorded_hashes()},
        "environment": environment(),
        "integrity": integrity,
        "results": [],
        "drift": [],
    }


@dataclass
class _Matrix:
    """What every target of one verify is checked against: the bundle, the reference cases, the streaming modes,
    the drift input with the reference's per-step answers (None when the model does not stream), the artifacts that
    failed integrity and the runtimes unavailable here; load_failures collects the targets whose runtime could not
    open their variant."""

    bundle: Bundle
    cases: list[ReferenceCase]
    modes: list[str]
    drift_case: ReferenceCase
    drift_ref: dict | None
    drift_seq: int
    broken: set[str]
    avail: dict[str, str | None]
    load_failures: dict[str, list[TargetResult]] = field(default_factory=dict)  # variant → targets

    @property
    def runs(self) -> int:
        return len(self.cases) * len(self.modes)

    @classmethod
    def compute(
        cls, reference: Runner, bundle: Bundle, cfg: VerifyConfig, broken: set[str], avail: dict[str, str | None]
    ) -> _Matrix:
        cases = compute_reference_cases(reference, bundle, cfg)
        config = bundle.config
        # Without state I/O (an imported stateless model, manifest "streaming": false) or with a backward direction
        # there is nothing to stream: whole sequences only, no drift.
        streaming = bool(bundle.manifest.get("streaming", True)) and config.streamable
        drift_case = case_inputs(config, 1, cfg.drift_seq, True, cfg.seed - 1)  # B=1: lengths, if any, are T
        drift_ref = _drift(reference, drift_case.x, drift_case.state, config.batch_first) if streaming else None
        modes = ["full", *[f"stream:{c}" for c in cfg.chunks]] if streaming else ["full"]
        return cls(bundle, cases, modes, drift_case, drift_ref, cfg.drift_seq, broken, avail)


def _check_pair(
    matrix: _Matrix, provider: str, variant: str, c_int8: str | None, bar, report: VerifyReport
) -> TargetResult | None:
    """One runtime × variant against every case, its drift appended to the report; its result row is appended too.
    Returns the row when it was checked (to be judged), None when it failed integrity or could not run here."""
    bundle = matrix.bundle
    entry = bundle.entry(variant)
    verdict = c_int8 if (provider, variant) == ("c", "int8") else entry_verdict(entry)
    result: TargetResult = {
        "runtime": provider,
        "variant": variant,
        "deployable": verdict == "deployable",
        "verdict": verdict,
        "status": "pass",
        "reason": "",
        "cases": [],
    }
    report["results"].append(result)
    reason = _unsupported_reason(provider, variant, matrix.avail)
    # a runtime not installed here never opens the file: it is listed as unsupported, not failed (a trial saw
    # "cuda fp32 fail (integrity)" on a machine without onnxruntime-gpu); where it could run, a broken file fails
    if reason is None and variant in matrix.broken:
        result.update(status="fail", reason=f"{entry['path']} failed its integrity check")
        bar.update(matrix.runs)
        return None
    runner = None
    if reason is None:
        try:
            runner = open_runner(bundle.root, provider, options=RunnerOptions(variant=variant, verify_hash=False))
        except LstmEdgeError as e:
            reason = str(e)
            matrix.load_failures.setdefault(variant, []).append(result)
    if runner is None:
        result.update(status="unsupported", reason=reason or "")
        bar.update(matrix.runs)
        return None
    tolerance(entry, 1, "y")  # a variant without its recorded profile is one clear error, before any run
    with runner:
        result["cases"] = _check_target(runner, provider, entry, matrix.cases, matrix.modes, bar)
        d = None
        if matrix.drift_ref is not None:
            d = _drift(runner, matrix.drift_case.x, matrix.drift_case.state, bundle.config.batch_first)
    if d is not None:
        ref, n = matrix.drift_ref, matrix.drift_seq
        report["drift"].append(
            {
                "runtime": provider,
                "variant": variant,
                **{k: np.abs(d[k] - ref[k]).reshape(n, -1).max(axis=1).tolist() for k in d},
            }
        )
    return result


def _nothing_proven(report: VerifyReport, load_failures: dict[str, list[TargetResult]], providers) -> None:
    """verify never passes about nothing. A variant that no ONNX runtime could load fails (its targets say why;
    "unsupported" stays for a runtime that cannot run a variant by design while another runtime ran it); a
    verify in which no case ran on an ONNX artifact fails, unless only the PyTorch checkpoint was asked for."""
    ran = {r["variant"] for r in report["results"] if r["runtime"] != "torch" and r["cases"]}
    for variant, targets in load_failures.items():
        if variant not in ran:
            for t in targets:
                t.update(status="fail", reason=f"no runtime could load the {variant} variant: {t['reason']}")
            report["passed"] = False
            report["reason"] = report["reason"] or f"no runtime could load the {variant} variant"
    only_torch = all(p == "torch" for p in providers)
    cases = sum(len(r["cases"]) for r in report["results"] if only_torch or r["runtime"] != "torch")
    if cases == 0:
        report["passed"] = False
        report["reason"] = report["reason"] or (
            "no case ran" + ("" if only_torch else " on an ONNX artifact") + ": every runtime × variant was "
            "unsupported here (see each row's reason)"
        )

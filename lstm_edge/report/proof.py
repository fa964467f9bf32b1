"""The sections that verify's and bench's JSON answer: the parity matrix with its worst cases and drift figures,
and the speed against PyTorch. A tool that has not been run is a section saying so, with the command to run."""

from __future__ import annotations

from lstm_edge.report import figures
from lstm_edge.report.inputs import ReportInputs, ToolReport
from lstm_edge.report.markup import (
    Cell,
    Markup,
    badge,
    bound,
    code,
    figure,
    join,
    missing,
    para,
    sci,
    section,
    table,
    tag,
)

STATUS_WORDS = {
    "pass": "pass",
    "fail": "FAIL",
    "unsupported": "unsupported",
    "not-deployable": "pass",
    "unverified": "pass",
}
# verify's statuses of a variant not proven deployable: a finding, not a failure of the report (an unverified variant
# outside its bound is "fail"; a not-deployable one, or one from a verify before that rule, may still hold failed cases)
FINDINGS = ("not-deployable", "unverified")
BENCH_POINTS = ("stream_p50", "B1xT100", "B64xT100", "B8xT100")  # the figures shown, where bench measured them


def worst_case(result: dict) -> tuple[float, str, dict, dict] | None:
    """The case and output of a target closest to (or furthest over) its bound: (ratio, output, errors, case)."""
    return max(
        ((o["max_scaled"] / o["tolerance"], name, o, c) for c in result["cases"] for name, o in c["outputs"].items()),
        default=None,
        key=lambda t: t[0],
    )


def _status_cell(r: dict) -> Cell:
    """A target's cell in the matrix: its status coloured, a not-deployable variant's pass marked as a finding."""
    n = len(r["cases"])
    passed = sum(c["passed"] for c in r["cases"])
    count = f" {passed}/{n}" if n else ""
    if r["status"] in FINDINGS:  # a finding, not a failure of the report: but never "pass" if a case failed
        word = "pass" if passed == n else "fail"
        return Cell(f"{word}{count} · {r.get('verdict', r['status'])}", "warn")
    return Cell(
        STATUS_WORDS.get(r["status"], r["status"]) + count, r["status"] if r["status"] != "unsupported" else "skip"
    )


def matrix_table(verify: dict) -> Markup:
    """Runtimes as rows, variants as columns, one coloured cell each."""
    results = verify["results"]
    runtimes = list(dict.fromkeys(r["runtime"] for r in results))
    variants = list(dict.fromkeys(r["variant"] for r in results))
    at = {(r["runtime"], r["variant"]): r for r in results}
    rows = [[tag("b", rt)] + [_status_cell(at[rt, v]) if (rt, v) in at else "—" for v in variants] for rt in runtimes]
    return table(["runtime \\ variant", *variants], rows, "matrix")


def detail_rows(verify: dict) -> list[list[object]]:
    """One row per runtime × variant: status, verdict, cases passed, the worst max scaled error with its bound
    beside it and the case it came from (or why the target was not checked)."""
    rows = []
    for r in verify["results"]:
        w = worst_case(r)
        n = len(r["cases"])
        cases = f"{sum(c['passed'] for c in r['cases'])}/{n}" if n else "—"
        if w:
            _, out, o, c = w
            value = Cell(f"{sci(o['max_scaled'])} ({bound(o['tolerance'])})", "num" + ("" if o["passed"] else " fail"))
            where = f"{out}, B={c['batch']}, T={c['seq']}, {c['state']} state, {c['mode']}"
        else:
            value, where = "—", r["reason"].split(" — ")[0] or "not run"
        all_passed = n > 0 and all(c["passed"] for c in r["cases"])
        status = r["status"] if r["status"] not in FINDINGS else ("pass" if all_passed else "fail")
        verdict = r.get("verdict", "deployable" if r.get("deployable", True) else "not-deployable")
        shown = STATUS_WORDS.get(status, status) if r["status"] in FINDINGS else STATUS_WORDS.get(r["status"])
        rows.append([r["runtime"], r["variant"], Cell(shown or r["status"], _cls(status)),
                     badge(verdict), Cell(cases, "num"), value, where])  # fmt: skip
    return rows


def _cls(status: str) -> str:
    return {"pass": "pass", "fail": "fail"}.get(status, "skip")


def _origin(report: ToolReport, inputs: ReportInputs, tool: str) -> Markup:
    """Where a JSON came from, when it ran, and a warning when it describes another bundle."""
    doc = report.doc
    env = doc.get("environment") or {}
    cpu = env.get("cpu") or {}
    cores = f", {cpu['cores']} cores" if "cores" in cpu else ""
    where = f"{cpu.get('model', 'an unrecorded CPU')}{cores}, {env.get('platform', 'platform not recorded')}"
    parts = [f"Read from {report.path} ({report.origin}). Measured on {where}."]
    name = (doc.get("bundle") or {}).get("name")
    if name and name != inputs.bundle.name:
        parts.append(f" Warning: this {tool} report is about the bundle {name!r}, not {inputs.bundle.name!r}.")
    return para(*parts, cls="note")


def verify_section(inputs: ReportInputs) -> Markup:
    """verify's matrix (runtime × variant), the detail table with each worst case and its bound, failed integrity
    checks, and the drift figures with their bounds — or the command to run verify."""
    title = "Parity: verify"
    if inputs.verify is None:
        return section("verify", title, missing("verify has not been run for this report.", inputs.command("verify"),
                                                "Run it (add --quick for a smaller matrix), then write the report again."))  # fmt: skip
    doc = inputs.verify.doc
    verdict = "PASSED" if doc.get("passed") else f"FAILED{': ' + doc['reason'] if doc.get('reason') else ''}"
    parts = [
        _origin(inputs.verify, inputs, "verify"),
        para(
            badge("pass" if doc.get("passed") else "fail", verdict),
            " — every deployable runtime × variant against the reference over every case"
            + (" (strict: not-deployable variants count too)." if doc.get("strict") else "."),
        ),  # fmt: skip
        matrix_table(doc),
        para(
            "A variant quantize marked not deployable is checked to its recorded bound but does not fail verify "
            "(amber); --strict makes it count.",
            cls="note",
        ),  # fmt: skip
        tag("h3", "Worst case per runtime × variant"),
        table(
            [
                "runtime",
                "variant",
                "status",
                "quantize's verdict",
                "cases passed",
                "worst max scaled error",
                "worst case",
            ],
            detail_rows(doc),
        ),  # fmt: skip
    ]
    broken = [i for i in doc.get("integrity", []) if not i.get("ok")]
    if broken:
        parts.append(
            table(
                ["artifact", "file", "integrity"],
                [[i["artifact"], code(i["path"]), Cell(i["detail"], "fail")] for i in broken],
            )
        )
    for uri, title_ in figures.drift_figures(doc, inputs.bundle):
        parts.append(tag("h3", title_[0].upper() + title_[1:]))
        parts.append(figure(uri, title_, _drift_caption(title_)))
    return section("verify", title, *parts)


def _drift_caption(title: str) -> str:
    what = "output y" if title.startswith("output") else "hidden state h and cell state c"
    return (
        f"Max |Δ| of the {what} against the reference at each step of one B=1 sequence streamed one step per call, "
        "one colour per runtime; dashed: the bound verify holds the variant to at that length. The bound limits "
        "|Δ| / max(1, |ref|), so where |ref| > 1 (the cell state) an absolute error above it is not by itself a "
        f"failure. Exact zeros, if any, are drawn at {figures.FLOOR:.0e} (noted in the panel)."
    )


def _ratio_cell(us: float | None, ratio: float | None, baseline: bool, text: str) -> Cell:
    """A time with its speed-up beside it (none on the baseline's own row); green where faster than PyTorch."""
    if us is None:
        return Cell("—", "num")
    if ratio is None or baseline:
        return Cell(text, "num")
    return Cell(f"{text} ({ratio:.2f}×)", "num" + (" pass" if ratio > 1 else ""))


def _bench_row(r: dict, grid_points: list[str]) -> list[object]:
    """One run: target, threads, streaming p50 / p99 with its speed-up, each grid point with its speed-up, verdict."""
    target = f"{r['runtime']} {r['variant']}"
    if r.get("status") != "ok":
        why = Cell(r.get("reason", "").split(" — ")[0] or "not run", "skip")
        return [target, r["threads"], why] + [""] * (len(grid_points) + 1)
    sp = r.get("speedup_vs_torch", {})
    baseline = r["runtime"] == "torch"
    s = r["streaming"]
    cells = [tag("b", target + (" (baseline)" if baseline else "")), Cell(r["threads"], "num")]
    if "p50" in s:
        cells.append(_ratio_cell(s["p50"], sp.get("stream_p50"), baseline, f"{s['p50']:.1f} / {s['p99']:,.0f}"))
    else:  # a model that cannot stream (bench's "streaming": {"status": "not-streamable", "reason"})
        cells.append(Cell("not streamable", "skip"))
    for p in grid_points:
        us = (r["grid"].get(p) or {}).get("median_us")
        cells.append(_ratio_cell(us, sp.get(p), baseline, f"{us:,.0f}" if us is not None else ""))
    cells.append(badge(r.get("verdict", "deployable")))
    return cells


def bench_note(doc: dict) -> str:
    """How to read bench's speed-ups: what they divide by (the report's "baseline"; PyTorch eager before bench's
    schema 2), on which clock, and why streaming is missing for a model that cannot stream."""
    base = doc.get("baseline", "PyTorch eager")
    note = f"Speed-ups (×) are {base}'s time over this target's, measured in the same run"
    if base == "PyTorch eager":
        note += "; PyTorch takes the faster of torch.backends.mkldnn on and off per shape"
    if doc.get("schema_version", 1) >= 2:
        note += "; at 1 thread they divide process CPU time (robust to load), at more threads wall time"
    note += f". Green: faster than {base}."
    streaming = doc.get("streaming") or {}
    if streaming.get("status") == "not-streamable":
        note += f" Streaming not applicable: {streaming.get('reason', '')}."
    return note


def bench_section(inputs: ReportInputs) -> Markup:
    """bench's figures against PyTorch eager: latency per target and thread setting with the speed-up beside each
    time, and a bar chart of the speed-ups — or the command to run bench."""
    if inputs.bench is None:
        return section("bench", "Speed: bench", missing("bench has not been run for this report.", inputs.command("bench"),
                                                        "Drop --quick for figures to quote."))  # fmt: skip
    doc = inputs.bench.doc
    runs = doc.get("runs", [])
    points = [p for p in BENCH_POINTS if any(p in r.get("speedup_vs_torch", {}) for r in runs)]
    grid_points = [p for p in points if p != "stream_p50"]
    header = ["target", "threads", "stream p50 / p99 µs", *(f"{p} µs" for p in grid_points), "verdict"]
    quick = (doc.get("config") or {}).get("stream_steps", 0) < 2000
    parts = [
        _origin(inputs.bench, inputs, "bench"),
        para(
            bench_note(doc) + (" These come from bench --quick: a fast look, not figures to quote." if quick else ""),
            cls="note",
        ),  # fmt: skip
        table(header, [_bench_row(r, grid_points) for r in runs]),
    ]
    uri = figures.bench_figure(doc, points)
    if uri:
        parts.append(figure(uri, "speed-up against PyTorch", "Speed-up against PyTorch eager per target and shape; "
                            "the dashed line is PyTorch (1×)."))  # fmt: skip
    return section("bench", "Speed: bench", *parts)


def summary(inputs: ReportInputs) -> Markup:
    """The pills at the top: any warning (an artifact changed since export, a verify report of other files), then
    deployable variants, verify's runtimes passed/failed, bench's best streaming speed-up."""
    b = inputs.bundle
    deployable = [v for v in b.variants() if b.verdict(v) == "deployable"]
    pills = [_pill("warning", w, "bad") for w in inputs.warnings]  # before anything the page claims
    pills.append(_pill("deployable variants", ", ".join(deployable) or "none", "ok" if deployable else "bad"))
    if inputs.verify is None:
        pills.append(_pill("verify", "not run", "warn"))
    else:
        res = inputs.verify.doc["results"]
        ran = [r for r in res if r["cases"]]
        failed = sorted({f"{r['runtime']} {r['variant']}" for r in res if r["status"] == "fail"})
        ok_rt = sorted({r["runtime"] for r in ran} - {r["runtime"] for r in res if r["status"] == "fail"})
        text = (
            f"{'PASSED' if inputs.verify.doc.get('passed') else 'FAILED'}: runtimes passed {', '.join(ok_rt) or 'none'}"
        )
        text += f"; failed {', '.join(failed)}" if failed else "; none failed"
        pills.append(_pill("verify", text, "ok" if inputs.verify.doc.get("passed") else "bad"))
    if inputs.bench is None:
        pills.append(_pill("bench", "not run", "warn"))
    else:
        ok = [r for r in inputs.bench.doc.get("runs", []) if r.get("status") == "ok" and r["runtime"] != "torch"]
        best = max(ok, key=lambda r: r["speedup_vs_torch"].get("stream_p50", 0), default=None)
        text = (f"fastest streaming: {best['runtime']} {best['variant']}, {best['speedup_vs_torch']['stream_p50']:.1f}× "
                "PyTorch" if best and "stream_p50" in best["speedup_vs_torch"] else "no runtime measured")  # fmt: skip
        pills.append(_pill("bench", text, "ok" if best else "warn"))
    return tag("div", join(pills), "summary")


def _pill(label: str, text: str, cls: str) -> Markup:
    return tag("div", join([tag("b", label), text]), f"pill {cls}")

"""The verify report: its shape (typed below; its JSON follows schemas/verify.schema.json) and how it is written
for people — the summary table, Markdown, and the drift figures."""

from __future__ import annotations

from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np

from lstm_edge.atomic import atomic_write_bytes
from lstm_edge.plots import png_bytes, pyplot

SCHEMA = "lstm-edge/verify"
SCHEMA_VERSION = 1


class OutputCheck(TypedDict):
    """One output of one case: tolerances.error_stats (max/mean/p99 abs and rel, cosine, sqnr_db, max_scaled),
    the scaled bound it was judged by, and whether it passed."""

    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    mean_rel: float
    p99_rel: float
    cosine: float
    sqnr_db: float | None
    max_scaled: float
    tolerance: float
    passed: bool


class CaseResult(TypedDict):
    """One case × streaming mode of one target: its outputs' checks and whether all passed."""

    batch: int
    seq: int
    state: str  # "zero" | "random"
    mode: str  # "full" | "stream:<chunk>" | "stream:T"
    outputs: dict[str, OutputCheck]  # y, hn, cn
    passed: bool


class TargetResult(TypedDict):
    """One runtime × variant: its verdict, status with the reason, and every case it ran."""

    runtime: str
    variant: str
    deployable: bool
    verdict: NotRequired[str]  # bundle.VERDICTS: quantize's verdict for the variant
    status: str  # "pass" | "fail" (outside its bound) | "unsupported" | "not-deployable" | "unverified" (within it)
    reason: str
    cases: list[CaseResult]


class Drift(TypedDict):
    """Per-timestep max |Δ| against the reference, streaming one step per call (lists of drift_seq floats)."""

    runtime: str
    variant: str
    y: list[float]
    h: list[float]
    c: list[float]


class IntegrityRow(TypedDict):
    """One manifest artifact's integrity: its path, and whether its sha256 matches the manifest."""

    artifact: str
    path: str
    ok: bool
    detail: str


class VerifyReport(TypedDict):
    """What verify returns (schemas/verify.schema.json): passed, why not, the bundle, the environment, integrity,
    one result per target and the drift curves."""

    schema: str
    schema_version: int
    passed: bool
    reason: str  # why the report failed as a whole ("" otherwise): e.g. no case ran on an ONNX artifact
    strict: bool
    bundle: dict[str, str]
    environment: dict
    integrity: list[IntegrityRow]
    results: list[TargetResult]
    drift: list[Drift]


def as_bound(x: float) -> str:
    """A tolerance as a bound beside a value ("bound 4e-02", "bound 1.72e-01"), never a "≤" that may be false."""
    return "bound " + f"{x:.2e}".replace(".00e", "e")


def summary_rows(report: VerifyReport) -> list[dict]:
    """One row per target for a table: runtime, variant, status, cases passed ("12/12"), and the worst max scaled
    error beside its bound, with its case (or the reason, for a target not checked)."""
    rows = []
    for r in report["results"]:
        cases = r["cases"]
        worst = max(
            ((o["max_scaled"] / o["tolerance"], name, o, c) for c in cases for name, o in c["outputs"].items()),
            default=None,
            key=lambda t: t[0],
        )
        rows.append(
            {
                "runtime": r["runtime"],
                "variant": r["variant"],
                "status": r["status"],
                "cases": f"{sum(c['passed'] for c in cases)}/{len(cases)}" if cases else "—",
                "worst": f"{worst[2]['max_scaled']:.2e}, {as_bound(worst[2]['tolerance'])} ({worst[1]}, "
                f"B={worst[3]['batch']}, T={worst[3]['seq']}, {worst[3]['mode']})"
                if worst
                else r["reason"].split(" — ")[0],
            }
        )
    return rows


def to_markdown(report: VerifyReport) -> str:
    """The summary table (summary_rows) as Markdown, with integrity failures listed under it."""
    lines = [
        f"# Parity report: {report['bundle']['name']} — {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        "| runtime | variant | status | cases passed | worst max scaled error, bound (case) |",
        "|---|---|---|---|---|",
    ]
    for r in summary_rows(report):
        lines.append(f"| {r['runtime']} | {r['variant']} | {r['status']} | {r['cases']} | {r['worst']} |")
    bad = [i for i in report["integrity"] if not i["ok"]]
    if bad:
        lines += ["", "Integrity failures: " + "; ".join(f"{i['path']}: {i['detail']}" for i in bad)]
    return "\n".join(lines) + "\n"


def plot_drift(report: VerifyReport, out_dir: Path) -> list[Path]:
    """Write error_vs_timestep.png (max |Δy| per step, every runtime × variant, over drift_seq steps) and
    state_drift.png (max |Δh_t| and |Δc_t|, fp32 and int8) into out_dir, atomically. Returns the paths written."""
    plt = pyplot()
    out_dir = Path(out_dir)
    written = []
    fig, ax = plt.subplots(figsize=(8, 4))
    for d in report["drift"]:
        ax.plot(np.maximum(d["y"], 1e-12), label=f"{d['runtime']} {d['variant']}", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("timestep")
    ax.set_ylabel("max |Δy| vs PyTorch")
    ax.set_title("Output error against timestep (streaming, one step per call)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(atomic_write_bytes(out_dir / "error_vs_timestep.png", png_bytes(fig)))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key in zip(axes, ("h", "c"), strict=True):
        for d in report["drift"]:
            if d["variant"] in ("fp32", "int8") and key in d:  # a GRU has no c
                ax.plot(np.maximum(d[key], 1e-12), label=f"{d['runtime']} {d['variant']}", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("timestep")
        ax.set_title(f"recurrent drift: max |Δ{key}_t| vs PyTorch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    written.append(atomic_write_bytes(out_dir / "state_drift.png", png_bytes(fig)))
    return written

"""The report's figures, drawn from verify's, bench's and quantize's numbers into inline PNGs (data: URIs).

Every figure keeps its legend outside the data, gives each runtime or variant its own colour (the same one in
every panel), draws the bound the numbers are judged by, and draws an exact-zero error at FLOOR with a note that
says so — a log axis has no zero, and a silent 1e-12 would read as a measurement.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from lstm_edge.bundle import Bundle
from lstm_edge.errors import LstmEdgeError
from lstm_edge.plots import pyplot
from lstm_edge.tolerances import tolerance

FLOOR = 1e-12  # where an exact zero is drawn on a log axis
# tab10 minus its grey (index 7): ten colours that stay apart on screen and in print.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
STATE_OUTPUT = {"y": "y", "h": "hn", "c": "cn"}  # a drift series → the output its bound is for


def data_uri(fig: Any) -> str:
    """The figure as a base64 PNG data: URI (tight bounding box, so a legend outside the axes is kept); closes it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def colours(names: list[str]) -> dict[str, str]:
    """One distinct colour per name, in order (cycling after nine)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def floored(values: list[float]) -> tuple[np.ndarray, bool]:
    """`values` with exact zeros raised to FLOOR, and whether there were any."""
    a = np.asarray(values, dtype=np.float64)
    return np.where(a > 0, a, FLOOR), bool(np.any(a <= 0))


def bound_series(entry: dict, steps: int, output: str, runtime: str | None) -> np.ndarray | None:
    """The scaled bound verify holds `output` to after 1..steps steps (lstm_edge.tolerances.tolerance); None for a
    variant without a recorded error profile (an int8 entry quantize did not measure)."""
    try:
        return np.array([tolerance(entry, t, output, runtime) for t in range(1, steps + 1)])
    except LstmEdgeError:
        return None


def _note_zero(ax: Any) -> None:
    ax.text(0.01, 0.02, f"exact 0 drawn at {FLOOR:.0e}", transform=ax.transAxes, fontsize=8, color="#57606a")


def _drift_panel(ax: Any, drift: list[dict], key: str, entry: dict, colour: dict[str, str]) -> None:
    """One panel: each runtime's per-step max |Δ| for series `key` (y, h or c) of one variant, and its bound."""
    zero = False
    steps = 0
    for d in drift:
        ys, z = floored(d[key])
        zero |= z
        steps = max(steps, len(ys))
        ax.plot(np.arange(1, len(ys) + 1), ys, color=colour[d["runtime"]], lw=1.1, label=d["runtime"])
    runtimes = [None] + sorted({d["runtime"] for d in drift} & {"tract"})  # tract's fp32 bound grows per step
    for rt in runtimes:
        bound = bound_series(entry, steps, STATE_OUTPUT[key], rt)
        if bound is not None:
            style = "--" if rt is None else ":"
            ax.plot(np.arange(1, steps + 1), bound, "k", ls=style, lw=1.2, label=f"bound{f' ({rt})' if rt else ''}")
    if zero:
        _note_zero(ax)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)


def _legend_outside(fig: Any, axes: list[Any]) -> None:
    """One legend for the figure, right of the panels, each label once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc="outside right upper", fontsize=9, frameon=False)


def drift_figures(verify: dict, bundle: Bundle) -> list[tuple[str, str]]:
    """(data URI, title) of error-against-timestep (y: two variants per row) and state drift (h, c: one row per
    variant): one panel per variant and series, one line per runtime, the variant's bound dashed. Empty for a report without drift (a model that cannot stream)."""
    drift = verify.get("drift") or []
    if not drift:
        return []
    plt = pyplot()
    variants = list(dict.fromkeys(d["variant"] for d in drift))
    colour = colours([d["runtime"] for d in drift])
    out = []
    for keys, title in ((("y",), "output error against timestep"), (("h", "c"), "recurrent state drift")):
        keys = tuple(k for k in keys if any(k in d for d in drift))  # a GRU has no c
        panels = [(v, k) for v in variants for k in keys]
        ncols = len(keys) if len(keys) > 1 else min(2, len(variants))  # y alone: two variants per row
        nrows = -(-len(panels) // ncols)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(5.2 * ncols + 1.5, 2.4 * nrows + 0.6), sharex=True, squeeze=False,
            layout="constrained",
        )  # fmt: skip
        flat = list(axes.ravel())
        for ax, (v, k) in zip(flat, panels, strict=False):
            entry = bundle.entry(v) if v in bundle.manifest["artifacts"] else {}
            _drift_panel(ax, [d for d in drift if d["variant"] == v and k in d], k, entry, colour)
            ax.set_title(f"{v}: max |Δ{k}_t| vs reference", fontsize=10)
        for ax in flat[len(panels) :]:
            ax.set_visible(False)
        for ax in flat[len(panels) - ncols : len(panels)]:
            ax.set_xlabel("timestep (streamed one step per call)")
        _legend_outside(fig, flat[: len(panels)])
        out.append((data_uri(fig), title))
    return out


def quantization_figure(bundle: Bundle, variants: list[str], against: str = "PyTorch") -> str | None:
    """Max scaled error against `against` (what quantize measured it against: card.measured_against) over T per
    output (y, hn, cn) for each quantized variant — the profile verify's int8 bound is derived from — with the bound
    each variant is held to dotted in its colour."""
    reports = {
        v: bundle.entry(v)["report"] for v in variants if (bundle.entry(v).get("report") or {}).get("error_profile")
    }
    if not reports:
        return None
    plt = pyplot()
    outputs = [
        o for o in ("y", "hn", "cn") if all(o in p for r in reports.values() for p in r["error_profile"].values())
    ]
    colour = colours(list(reports))
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs) + 1.5, 3.4), layout="constrained")
    axes = np.atleast_1d(axes)
    zero = False
    for ax, o in zip(axes, outputs, strict=True):
        for v, r in reports.items():
            ts = sorted(int(t) for t in r["error_profile"])
            ys, z = floored([r["error_profile"][str(t)][o] for t in ts])
            zero |= z
            ax.plot(ts, ys, "o-", color=colour[v], lw=1.3, ms=4, label=v)
            bound = [tolerance(bundle.entry(v), t, o) for t in ts]
            ax.plot(ts, bound, ls=":", color=colour[v], lw=1.3, label=f"{v} bound")
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=f"max scaled |Δ{o}| vs {against}")
        ax.grid(alpha=0.3)
    if zero:
        _note_zero(axes[0])
    _legend_outside(fig, list(axes))
    return data_uri(fig)


def bench_figure(bench: dict, points: list[str]) -> str | None:
    """Horizontal bars: each runtime × variant's speed-up against PyTorch eager at each of `points` ("stream_p50",
    grid keys), with the 1× line; only series that have bars are in the legend."""
    runs = [r for r in bench.get("runs", []) if r.get("status") == "ok" and r["runtime"] != "torch"]
    points = [p for p in points if any(p in r.get("speedup_vs_torch", {}) for r in runs)]
    if not runs or not points:
        return None
    plt = pyplot()
    colour = colours(points)
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(runs) * len(points) + 1.2), layout="constrained")
    height = 0.8 / len(points)
    ys = np.arange(len(runs))
    for k, p in enumerate(points):
        vals = [r["speedup_vs_torch"].get(p, np.nan) for r in runs]
        ax.barh(ys + k * height, vals, height, color=colour[p], label=p.replace("stream_p50", "streaming p50"))
    ax.axvline(1.0, color="k", lw=1, ls="--", label="PyTorch eager (1×)")
    ax.set_yticks(ys + height * (len(points) - 1) / 2)
    ax.set_yticklabels([f"{r['runtime']} {r['variant']} (threads {r['threads']})" for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("speed-up against PyTorch eager (×, higher is faster)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(fig, [ax])
    return data_uri(fig)

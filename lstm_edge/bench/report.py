"""How bench reports: table rows, Markdown and the speed-up plot of a bench report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_edge.atomic import atomic_write_bytes
from lstm_edge.bench.targets import TORCH_PATHS
from lstm_edge.plots import png_bytes, pyplot

PATH_LABELS = {"mkldnn_on": "mkldnn on", "mkldnn_off": "mkldnn off"}  # as tables and plots name TORCH_PATHS
TABLE_POINTS = ("B1xT100", "B64xT100")  # the grid points the table shows


def time_cells(streaming: dict, grid: dict, sp: dict, cold: dict, taken: dict[str, str]) -> dict[str, str]:
    """The timing columns of one table row; where `taken` names the PyTorch path a figure came from, it says so."""

    def tag(key: str) -> str:
        return f", {PATH_LABELS[taken[key]]}" if key in taken else ""

    if "p50" in streaming:
        cells = {
            "stream p50 µs": f"{streaming['p50']:.1f} ({sp['stream_p50']:.2f}×{tag('stream_p50')})",
            "stream p99 µs": f"{streaming['p99']:.1f}",
        }
    else:  # a model that cannot stream: said in the cell, the reason under the table
        cells = {"stream p50 µs": "not streamable", "stream p99 µs": "—"}
    for key in TABLE_POINTS:
        if key in grid:
            cells[f"{key} µs"] = f"{grid[key]['median_us']:.0f} ({sp[key]:.2f}×{tag(key)})"
    if "cold_start_s" in cold:
        cells["cold ms"] = f"{cold['cold_start_s'] * 1e3:.0f}" + (
            f" ({PATH_LABELS[taken['cold_start']]})" if "cold_start" in taken else ""
        )
        cells["RSS MB"] = f"{cold['peak_rss_mb']:.0f}" + (f" ({PATH_LABELS[taken['rss']]})" if "rss" in taken else "")
    return cells


def gflops_cell(run: dict) -> str:
    """The roofline cell: "12.3 (38%)" of the float32 GEMM peak for fp32; for a quantized or fp16 variant the
    model's float32 FLOPs per second, which are not arithmetic it did in float32, so no percentage of that peak
    (an int8 variant once read "47.6 (147%)"): "47.6 int8-equivalent"; "unknown" where the model's FLOPs are. The
    fraction is capped at 1 (the roofline's "capped"), and the cell says so where it was: "39.0 (capped: 100%)"."""
    g = run["roofline"]["gflops"]
    if g is None:  # the model's FLOPs are unknown (a whole graph with a node bench cannot count)
        return "unknown"
    if run["variant"] == "fp32":
        capped = "capped: " if run["roofline"].get("capped") else ""  # over 1: the peak read low
        return f"{g:.1f} ({capped}{run['roofline']['fraction_of_peak'] * 100:.0f}%)"
    return f"{g:.1f} {run['variant'].split('-')[0]}-equivalent"


def table_rows(report: dict) -> list[dict]:
    """One row per run for a table: target, threads, stream p50/p99 µs, B1xT100/B64xT100 µs with speed-ups, cold
    start ms, RSS MB, GFLOP/s (fraction of peak), parity (deployable or not); a note for unsupported targets.
    PyTorch eager's row is the baseline (the faster of its two paths per shape, each figure naming the path
    taken), followed by one row per path (torch.backends.mkldnn on / off) with its own times and its ratio to the
    baseline."""
    rows = []
    for r in report["runs"]:
        target = f"{r['runtime']} {r['variant']}"
        if r.get("status") != "ok":
            rows.append({"target": target, "threads": r["threads"], "note": r["reason"].split(" — ")[0]})
            continue
        taken = r.get("baseline_path", {})
        row = {"target": target + (" (faster path)" if taken else ""), "threads": r["threads"]}
        row |= time_cells(r["streaming"], r["grid"], r["speedup_vs_torch"], r.get("cold", {}), taken)
        row["GFLOP/s (peak %)"] = gflops_cell(r)
        row["parity"] = r.get("verdict", "deployable" if r["deployable"] else "not-deployable")
        rows.append(row)
        for name, path in r.get("paths", {}).items():
            rows.append(
                {"target": f"{target} · {PATH_LABELS[name]}", "threads": r["threads"]}
                | time_cells(path["streaming"], path["grid"], path["speedup_vs_torch"], path.get("cold", {}), {})
            )
    return rows


def to_markdown(report: dict) -> str:
    """table_rows as a Markdown table, with the model's size and how to read the speed-ups under it."""
    rows = table_rows(report)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    lines.append("")
    lines += notes(report)
    if any("paths" in r for r in report["runs"]):
        lines.append("")
        lines.append(
            "PyTorch eager is timed on both of its CPU LSTM paths, torch.backends.mkldnn on (oneDNN's LSTM, "
            "PyTorch's default) and off (ATen's own), interleaved with the others; its baseline row takes the "
            "faster of the two at each shape (named beside each figure), and every speed-up divides by that. "
            "The rows under it give each path's own times and its ratio to the baseline."
        )
    return "\n".join(lines) + "\n"


def notes(report: dict) -> list[str]:
    """The lines under a table: the model's size (and how its FLOPs were counted where not from the config), what
    the speed-ups divide by, and why streaming was not timed for a model that cannot stream."""
    m = report["model"]
    flops = m["flops_per_step"]
    mflop = f"{flops / 1e6:.2f} MFLOP per sequence-step" if flops is not None else "FLOPs per step unknown"
    if not m.get("flops_basis", "").startswith("from the config"):
        mflop += f" ({m['flops_basis']})" if "flops_basis" in m else ""
    lines = [
        f"Model: input {m['input_size']}, hidden {m['hidden_size']}, {m['num_layers']} layers — {mflop}. "
        f"Speed-ups (×) are {report.get('baseline', 'PyTorch eager')} time / target time, measured interleaved in "
        "the same run; at 1 thread from process CPU time (robust to load), at more threads from wall time (CPU time "
        "sums the threads); the µs shown are wall time."
    ]
    return lines + [line for note in table_notes(report) for line in ("", note)]


def table_notes(report: dict) -> list[str]:
    """The short lines printed under the CLI's table (and in the Markdown): why streaming was not timed, for a
    model that cannot stream; which clock the × divide at 1 thread; that wall time was inflated by load, where it disagreed with CPU time (the report's
    "load"). Empty when there is nothing to say."""
    lines = []
    streaming = report.get("streaming", {})
    if streaming.get("status") == "not-streamable":
        lines.append(
            f"streaming: not applicable — {streaming['reason']}; the grid times whole sequences from zero state"
        )
    if any(r.get("threads") == 1 for r in report.get("runs", []) if r.get("status") == "ok"):
        # the µs columns are wall time; a trial read 263.9/62.1 = 4.25 against a printed 3.98×
        lines.append("× = the baseline's time / this target's, by process CPU time at 1 thread (the µs are wall time)")
    load = report.get("load", {})
    if load.get("flagged"):
        lines.append(
            f"{load['note']} (wall/CPU > {load['limit']} for {'; '.join(load['runs'][:3])}"
            + (f"; {len(load['runs']) - 3} more" if len(load["runs"]) > 3 else "")
            + ") — speed-ups at 1 thread are from CPU time"
        )
    return lines


def plot(report: dict, out: Path) -> Path:
    """Write a PNG to `out`, atomically: bars of speed-ups against the baseline (stream p50, B1xT100, B64xT100:
    those measured)
    and, beside them where PyTorch was timed on both paths, each path's time per shape (µs, log scale) with the
    one the baseline took hatched and marked. Returns out."""
    plt = pyplot()

    runs = [r for r in report["runs"] if r.get("status") == "ok" and r["runtime"] != "torch"]
    torch_runs = [r for r in report["runs"] if r.get("status") == "ok" and "paths" in r]
    # the measures some run has (no streaming bar for a model that cannot stream, no B64 under --quick)
    ok = [r for r in report["runs"] if r.get("status") == "ok"]
    metrics = [m for m in ("stream_p50", "B1xT100", "B64xT100") if any(m in r["speedup_vs_torch"] for r in ok)]
    if torch_runs:
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    else:
        fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(metrics))
    xs = np.arange(len(runs))
    for k, m in enumerate(metrics):
        ax.bar(xs + k * width, [r["speedup_vs_torch"].get(m, 0) for r in runs], width, label=m)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(xs + width * (len(metrics) - 1) / 2)
    ax.set_xticklabels([f"{r['runtime']}\n{r['variant']}\nt={r['threads']}" for r in runs], fontsize=7)
    base = report.get("baseline", "PyTorch eager")
    ax.set_ylabel(f"speed-up vs {base} (×)")
    ax.set_title(f"{report['bundle']['name']}: speed against {base}" + (" (faster path per shape)" if torch_runs else "")
                 + ", same run")  # fmt: skip
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if torch_runs:
        plot_torch_paths(bx, torch_runs, metrics)
    fig.tight_layout()
    return atomic_write_bytes(Path(out), png_bytes(fig))


def plot_torch_paths(ax, torch_runs: list[dict], metrics: list[str]) -> None:
    """PyTorch eager's two paths side by side per shape and thread setting, in µs; the baseline's pick hatched."""

    def us(run: dict, metric: str) -> float | None:
        if metric == "stream_p50":
            return run["streaming"].get("p50")  # None for a model that cannot stream
        return run["grid"][metric]["median_us"] if metric in run["grid"] else None

    groups = [(r, m) for r in torch_runs for m in metrics if us(r, m) is not None]
    names = list(TORCH_PATHS)
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        for g, (r, m) in enumerate(groups):
            t = us(r["paths"][name], m)
            picked = r["baseline_path"].get(m) == name
            ax.bar(
                g + k * width,
                t,
                width,
                color=f"C{k}",
                hatch="//" if picked else None,
                edgecolor="k" if picked else None,
            )
            ax.annotate(f"{t:.0f}" + (" ✓" if picked else ""), (g + k * width, t), ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(groups)) + width * (len(names) - 1) / 2)
    ax.set_xticklabels([f"{m}\nt={r['threads']}" for r, m in groups], fontsize=7)
    ax.set_ylabel("PyTorch eager µs per call")
    ax.set_title("PyTorch eager by path (✓ hatched: the baseline's pick)")
    from matplotlib.patches import Patch  # plain swatches: the first group's bar may be the hatched one

    ax.legend(handles=[Patch(color=f"C{k}", label=PATH_LABELS[n]) for k, n in enumerate(names)], fontsize=7)
    ax.grid(axis="y", alpha=0.3)

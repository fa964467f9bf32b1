"""The sections that the bundle alone answers: the model card, the variants with quantize's verdicts, quantization's
report, and how to embed the model. Each returns one escaped HTML fragment (markup.Markup)."""

from __future__ import annotations

import shlex

from lstm_edge.bundle import Bundle, entry_verdict
from lstm_edge.formats import REFERENCE_WORDS, quantize_reference
from lstm_edge.report import figures
from lstm_edge.report.markup import (
    STATUS_CLASS,
    Cell,
    Markup,
    code,
    definitions,
    figure,
    join,
    missing,
    para,
    sci,
    section,
    size,
    table,
    tag,
)
from lstm_edge.targets import TARGETS

NOT_RECORDED = "not recorded"


def measured_against(bundle: Bundle, report: dict) -> tuple[str, str]:
    """(what, on which inputs) a quantized variant's scaled errors were measured against, read from its report's
    measured_on (formats.quantize_reference): PyTorch over zero and random states — streamed only where the model
    streams — or, for a forward exported whole, the fp32 graph in float64 from zero state, whole sequences."""
    streams = bundle.stateful and bool(bundle.manifest.get("streaming", True)) and bundle.config.streamable
    return quantize_reference(report.get("measured_on", ""), streams)


def exported_whole(bundle: Bundle) -> str | None:
    """The torch.onnx exporter that wrote the user's forward whole (the fallback route), or None for a structure
    lstm-edge recognized and rebuilt. Raises nothing."""
    exporter = (bundle.manifest.get("reference") or {}).get("exporter") or ""
    return exporter if exporter.startswith("torch.onnx") else None


def _whole_graph_items(bundle: Bundle, exporter: str) -> list[tuple[str, object]]:
    """A forward exported whole has no recognized structure: its graph's inputs and outputs, not a config that
    describes at most one of its recurrent nodes (a trial's card said "LSTM 8→32" of a Conv1d → LSTM 16→32)."""
    io = bundle.manifest.get("io") or {}

    def ports(key: str) -> str:
        shown = [
            f"{p['name']} [{', '.join(map(str, p.get('shape') or []))}] {p.get('dtype', '')}" for p in io.get(key, [])
        ]
        return "; ".join(x.strip() for x in shown) or NOT_RECORDED

    return [
        ("recognized as", f"not recognized: your forward, exported whole by {exporter}"),
        ("inputs", ports("inputs")),
        ("outputs", ports("outputs")),
        ("streaming", _whole_graph_streaming(bundle)),
    ]


def _whole_graph_streaming(bundle: Bundle) -> str:
    """Whether a forward exported whole streams, in export's own words (manifest reference.streaming)."""
    said = str((bundle.manifest.get("reference") or {}).get("streaming", ""))
    if bundle.stateful:
        return f"yes: state in, state out — {said}" if said else "yes: state in, state out"
    return f"no (whole sequences from zero state) — {said}" if said else "no (whole sequences from zero state)"


def _config_items(bundle: Bundle) -> list[tuple[str, object]]:
    exporter = exported_whole(bundle)
    if exporter is not None:
        return _whole_graph_items(bundle, exporter)
    c = bundle.manifest.get("config", {})

    def get(key: str, fmt=str) -> str:
        return fmt(c[key]) if key in c and c[key] is not None else NOT_RECORDED

    return [
        ("recognized as", bundle.manifest.get("spec", NOT_RECORDED)),
        ("family", get("family", str.upper)),
        ("layers", get("num_layers")),
        ("hidden size", get("hidden_size")),
        ("directions", get("bidirectional", lambda b: "2 (bidirectional)" if b else "1")),
        ("projection", get("proj_size", lambda p: str(p) if p else "none")),
        ("head", get("head")),
        (
            "input size",
            get("input_size") + (f" (token ids, vocabulary {c['vocab_size']})" if c.get("vocab_size") else ""),
        ),
        ("output size", get("output_size")),
        ("task", f"{get('task')} ({get('kind')})"),
        ("layout", get("batch_first", lambda b: "batch-first [batch, seq, features]" if b else "time-major")),
        ("streaming", "yes: state in, state out" if bundle.manifest.get("streaming", True) else "no (whole sequences)"),
        ("gate layout", bundle.manifest.get("gate_layout", NOT_RECORDED)),
    ]


def _provenance_items(bundle: Bundle) -> list[tuple[str, object]]:
    m = bundle.manifest
    producers = m.get("producers") or {}
    exporter = ", ".join(f"{k} {v}" for k, v in producers.items()) or NOT_RECORDED
    ref = m.get("reference") or {}
    words = REFERENCE_WORDS.get(ref.get("kind", ""), ref.get("kind") or NOT_RECORDED)
    words += f" ({ref['forward']})" if ref.get("forward") else ""  # which forward: TorchScript, --code class, …
    val = m.get("validation")
    validated = (
        f"{val.get('runtime', '?')}: max scaled error {sci(val.get('max_scaled_error'))}"
        + (f" over {val['cases']} cases" if "cases" in val else "")
        if val
        else NOT_RECORDED
    )
    items = [("written by", exporter), ("validated against", words)]
    if ref.get("detail"):
        items.append(("reference detail", ref["detail"]))
    items.append(("export's own check", validated))
    if "import" in m:
        items.append(("imported from", m["import"].get("source", NOT_RECORDED)))
    sha = m.get("source_checkpoint_sha256")
    items.append(("source sha256", code(sha) if sha else NOT_RECORDED))
    return items


def model_card(bundle: Bundle) -> Markup:
    """What was recognized, who wrote it and what export validated against, and every artifact's size."""
    arts = bundle.manifest.get("artifacts", {})
    fp32_bytes = arts.get("fp32", {}).get("bytes")
    rows = []
    for name, e in arts.items():
        ratio = (
            f"{e['bytes'] / fp32_bytes:.2f}× fp32"
            if fp32_bytes and "bytes" in e and e.get("path", "").endswith(".onnx")
            else ""
        )
        rows.append(
            [
                name,
                code(e.get("path", "?")),
                Cell(size(e.get("bytes")), "num"),
                ratio,
                e.get("precision", ""),
                code(str(e.get("sha256", ""))[:12]),
            ]
        )
    io = bundle.manifest.get("io", {})
    io_rows = [
        [kind, p["name"], " × ".join(str(d) for d in p.get("shape", [])), p.get("dtype", "")]
        for kind in ("inputs", "outputs")
        for p in io.get(kind, [])
    ]
    return section(
        "model",
        "Model card",
        tag("h3", "What was recognized"),
        definitions(_config_items(bundle)),
        tag("h3", "Exporter and reference"),
        definitions(_provenance_items(bundle)),
        tag("h3", "Inputs and outputs"),
        table(["", "name", "shape", "dtype"], io_rows) if io_rows else para(NOT_RECORDED),
        tag("h3", "Artifacts"),
        table(["artifact", "file", "size", "", "precision", "sha256"], rows),
    )


def verdict_reasons(name: str, entry: dict, bundle: Bundle) -> list[str]:
    """Why a variant has its verdict, in sentences: fp32's export check; a quantized variant's task metric against
    its budget, fp16's parity bound, or why the metric could not be measured."""
    if name == "fp32":
        val = bundle.manifest.get("validation")
        if not val:
            return ["the exported model; export's check is not recorded"]
        return [f"the exported model; export checked it on {val.get('runtime', '?')} to a max scaled error of "
                f"{sci(val.get('max_scaled_error'))} against {REFERENCE_WORDS.get((bundle.manifest.get('reference') or {}).get('kind', ''), 'its reference')}"]  # fmt: skip
    r = entry.get("report") or {}
    m = r.get("metric") or {}
    why = []
    if m.get("variant") is None:
        why.append("its task metric was not measured (no task data): nothing says whether the loss is acceptable")
    else:
        relative = m.get("drop_kind") == "relative"
        drop = f"{m['drop']:+.1%}" if relative else f"{m['drop']:+.2f} points"
        budget = f"{m['budget']:.1%}" if relative else f"{m['budget']} points"
        over = "over" if m["drop"] > m["budget"] else "within"
        why.append(f"{m['name']} {m['fp32']:.4g} (fp32) → {m['variant']:.4g}: {drop}, {over} the budget of {budget}")
    pb = r.get("parity_bound")
    if pb:
        over = "over" if pb["max_scaled"] > pb["tolerance"] else "within"
        what, how = measured_against(bundle, r)
        why.append(
            f"max scaled error vs {what} up to T=1000 ({how}) {sci(pb['max_scaled'])}, {over} the fp16 bound "
            f"{pb['tolerance']:g}"
        )
    if r.get("measured_on"):
        why.append(f"measured on {r['measured_on']}")
    return why or [NOT_RECORDED]


def variants_section(bundle: Bundle) -> Markup:
    """Every variant the manifest lists with quantize's verdict and the reasons, as a table."""
    rows = []
    for v in bundle.variants():
        e = bundle.entry(v)
        verdict = entry_verdict(e)
        reasons = join(tag("li", w) for w in verdict_reasons(v, e, bundle))
        rows.append(
            [
                tag("b", v),
                Cell(verdict, STATUS_CLASS.get(verdict, "")),
                Cell(size(e.get("bytes")), "num"),
                tag("ul", reasons),
            ]
        )
    deployable = [v for v in bundle.variants() if bundle.verdict(v) == "deployable"]
    lead = para(
        "Deployable: ", join((code(v) for v in deployable), ", ") if deployable else "none",
        ". A variant over its budget is a finding, not an error: it stays in the bundle, marked.",
    )  # fmt: skip
    return section(
        "variants", "Variants and verdicts", lead, table(["variant", "quantize's verdict", "size", "why"], rows)
    )


def quantization_section(bundle: Bundle) -> Markup:
    """quantize's report: size, settings, error against fp32 per output and over T, the nodes it quantized, the
    error-profile figure with each variant's bound, and quantization.md as written."""
    quantized = [v for v in bundle.variants() if (bundle.entry(v).get("report"))]
    if not quantized:
        cmd = f"lstm-edge quantize {shlex.quote(str(bundle.root))}"
        return section("quantization", "Quantization", missing("quantize has not been run on this bundle.", cmd))
    # the outputs the graph has: y, hn, cn (LSTM); y, hn (GRU); y alone (a forward exported whole)
    outputs = [o for o in ("y", "hn", "cn") if any(o in (bundle.entry(v)["report"].get("error_vs_fp32") or {})
                                                   for v in quantized)]  # fmt: skip
    rows = []
    for v in quantized:
        r = bundle.entry(v)["report"]
        s = r.get("settings") or {}
        int8 = bundle.entry(v).get("precision") == "int8"
        how = ", ".join(
            w for w in (
                ("per-channel" if s.get("per_channel") else "per-tensor") if int8 else "weights and activations in fp16",
                "reduced range" if s.get("reduce_range") and int8 else "",
                f"{s['method']} calibration on {s.get('calibration_samples')} sequences" if s.get("method") else "",
            ) if w
        )  # fmt: skip
        err = r.get("error_vs_fp32", {})
        max_abs = " / ".join(sci(err[o]["max_abs"]) if o in err else "—" for o in outputs)
        sqnr = (err.get("y") or {}).get("sqnr_db")
        n_q = len((r.get("nodes") or {}).get("quantized", []))
        rows.append([tag("b", v), Cell(f"{r.get('size_ratio', 0):.2f}×", "num"), how, Cell(max_abs, "num"),
                     Cell("∞ (identical)" if sqnr is None else f"{sqnr:.1f}", "num"), Cell(str(n_q), "num")])  # fmt: skip
    header = f"max |Δ| vs fp32: {' / '.join(outputs)}"
    parts = [table(["variant", "size vs fp32", "settings", header, "SQNR y (dB)", "quantized nodes"], rows)]
    if "cn" in outputs:  # only an LSTM's cell state grows so: a GRU and a forward exported whole have no cn
        parts.append(para("Absolute errors of the cell state cn scale with |c|, which reaches tens on a long sequence; "
                          "verify judges the scaled error |Δ| / max(1, |ref|), which the figure shows.", cls="note"))  # fmt: skip
    what, how = measured_against(bundle, bundle.entry(quantized[0])["report"])
    uri = figures.quantization_figure(bundle, quantized, what)
    if uri:
        parts.append(figure(uri, "quantization error against sequence length", f"Max scaled error against {what} "
                            f"per sequence length ({how}) — solid; the "
                            "bound verify holds each variant to — dotted, same colour (int8: the recorded error "
                            f"× 4; fp16: fixed). Exact zeros, if any, are drawn at {figures.FLOOR:.0e}."))  # fmt: skip
    md = bundle.root / "quantization.md"
    if md.is_file():
        parts.append(
            tag(
                "details",
                join(
                    [tag("summary", "quantization.md as quantize wrote it"), tag("pre", md.read_text(errors="replace"))]
                ),
            )
        )
    return section("quantization", "Quantization", *parts)


def embed_section(bundle: Bundle) -> Markup:
    """The bundle targets and the one command for each, with the variant to embed (a deployable one)."""
    root = shlex.quote(str(bundle.root))
    deployable = [v for v in bundle.variants() if bundle.verdict(v) == "deployable"] or ["fp32"]
    v = deployable[0]
    # A forward exported whole without state I/O: its apps run whole sequences and Triton keeps no state; exported
    # whole at all, the C cannot be written (a trial's page offered all three as for a streaming model).
    whole = {
        "python": "a Python app folder: example.py runs each golden case whole",
        "triton": "a Triton model repository for whole sequences (no state kept; batch-first models only)",
    }
    rows = [
        [
            name,
            f"{whole.get(name, t.summary) if not bundle.stateful else t.summary} (needs {t.needs})",
            code(f"lstm-edge bundle {root} --target {name} --variant {v} --out embed/{name}"),
        ]
        for name, t in TARGETS.items()
        if name != "c" or exported_whole(bundle) is None  # codegen refuses a forward exported whole
    ]
    return section(
        "embed",
        "How to embed it",
        para(
            "Each folder checks itself against the bundle's golden vectors. The variant below is ",
            code(v),
            " (deployable); pass another with ",
            code("--variant"),
            " to embed it anyway.",
        ),  # fmt: skip
        table(["target", "for", "command"], rows),
    )

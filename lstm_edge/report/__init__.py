"""`lstm-edge report`: one self-contained HTML page of what was proven about one bundle.

It reads what the other stages wrote — the bundle's manifest (the model card, quantize's verdicts and report), and
the JSON of `lstm-edge verify --json` and `lstm-edge bench --json` where they were run — and never runs them; it
runs only ONNX Runtime CPU's self-check on each variant (its golden cases, ~40 ms each), so a bundle altered and
re-signed since export is not given a clean page. The
page needs no network: styles are inline and figures are base64 PNGs. Sections: summary, model card, variants and
verdicts, parity (verify), speed (bench), quantization, how to embed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from lstm_edge import __version__
from lstm_edge.atomic import atomic_write_text
from lstm_edge.report import card, proof
from lstm_edge.report.inputs import ReportInputs, gather
from lstm_edge.report.markup import join, page, para, tag

SECTIONS = (
    ("model", "Model card"),
    ("variants", "Variants"),
    ("verify", "Parity"),
    ("bench", "Speed"),
    ("quantization", "Quantization"),
    ("embed", "Embed"),
)


def render(inputs: ReportInputs) -> str:
    """The whole page as an HTML string (figures drawn here). Raises nothing of its own for a valid bundle."""
    b = inputs.bundle
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        card.model_card(b),
        card.variants_section(b),
        proof.verify_section(inputs),
        proof.bench_section(inputs),
        card.quantization_section(b),
        card.embed_section(b),
        tag(
            "footer",
            join(
                [
                    para(
                        f"Written by lstm-edge {__version__} report on {when} from {b.root}. It reads what "
                        "export, quantize, verify and bench wrote, and ran none of them: only ONNX Runtime CPU's "
                        "self-check of each variant on its golden cases."
                    )
                ]
            ),
        ),  # fmt: skip
    ]
    whole = card.exported_whole(b)  # no recognized structure to name: the manifest's spec would misdescribe it
    subtitle = f"{'your forward, exported whole' if whole else b.manifest.get('spec', '')} · bundle {b.root}"
    return page(f"lstm-edge report — {b.name}", subtitle, proof.summary(inputs), SECTIONS, body)


def write_report(
    bundle: str | Path,
    out: str | Path,
    verify_json: str | Path | None = None,
    bench_json: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Write the report of `bundle` to `out` (HTML, one file, atomically: a temporary sibling, then os.replace).

    Reads the bundle's manifest.json (and quantization.md where present), verify's JSON (`verify_json`, else
    BUNDLE/verify.json where it exists) and bench's JSON (`bench_json`, else BUNDLE/bench.json); a tool that was
    not run becomes a section giving the command to run. Each variant is run through ONNX Runtime CPU's self-check
    (report.inputs.self_check_warnings). `warn` is called with each line the page leads with (an artifact that no
    longer matches its sha256, a variant that fails its self-check, a verify report of other files). Returns `out`
    as a Path.

    Raises LstmEdgeError (nothing written) when `bundle` is not a bundle, when a named JSON is missing, not JSON
    or another tool's, or when `out` cannot be written.
    """
    inputs = gather(bundle, verify_json, bench_json)
    for line in inputs.warnings:  # the page leads with them too
        (warn or (lambda _: None))(line)
    return atomic_write_text(Path(out), render(inputs))

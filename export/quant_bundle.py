"""A quantize run's end: the made variants copied into the bundle with their manifest entries and report
(write_variants), and the QuantizeResult judged against the budgets (quantize_result). Used by quantize.py and
quant_forms.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx

from lstm_edge.atomic import staged_dir
from lstm_edge.bundle import Bundle
from lstm_edge.bundle import variant as bundle_variant
from lstm_edge.errors import LstmEdgeError
from lstm_edge.export.manifest import artifact_entry, write_manifest
from lstm_edge.export.onnx_stamp import stamp
from lstm_edge.export.quant_report import NOT_DEPLOYABLE, QuantizeReport, format_report, plot_error_growth


@dataclass
class QuantizeResult:
    """The bundle written to, each made variant's report and seconds to make it, and the variants not made with
    why (static int8 without data under --mode all)."""

    bundle: Path
    reports: dict[str, QuantizeReport]
    seconds: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def over_budget(self) -> list[str]:
        """Variants measured and found over their budget or bound (not the unverified ones)."""
        return [v for v, r in self.reports.items() if r.verdict == NOT_DEPLOYABLE]

    def to_dict(self) -> dict[str, dict]:
        """{variant: report as in the manifest} (`quantize --json`)."""
        return {v: r.to_dict() for v, r in self.reports.items()}


def quantize_result(bundle: Bundle, reports: dict[str, QuantizeReport], skipped: dict[str, str]) -> QuantizeResult:
    """The QuantizeResult. A variant over its budget or bound is a finding, not a failure: it is kept in the bundle,
    marked not deployable, and listed in result.over_budget (the CLI prints it as a finding line; `quantize --strict`
    exits 1 on it)."""
    return QuantizeResult(bundle.root, reports, {v: r.seconds for v, r in reports.items()}, skipped)


def over_budget_finding(result: QuantizeResult) -> str:
    """One line naming the variants quantize measured over their budget, or "" when there are none."""
    over = result.over_budget
    if not over:
        return ""
    verb = "is" if len(over) == 1 else "are"
    return (
        f"finding: {', '.join(over)} {verb} over the metric budget (fp16: its parity bound); kept in the bundle, "
        "marked not deployable (quantization.md says by how much; deploy fp32 or a deployable variant)"
    )


def manifest_now(stage: Path, bundle: Bundle) -> dict:
    """The manifest as the bundle holds it now (staged_dir copied it under the writers' lock), so a variant that a
    concurrent quantize added meanwhile is kept. Raises LstmEdgeError (exit 2, nothing written) where the model
    these variants were made from changed meanwhile (a re-export)."""
    now = Bundle.open(stage).manifest
    for key in ("fp32", "checkpoint"):
        if (now["artifacts"].get(key) or {}).get("sha256") != (bundle.manifest["artifacts"].get(key) or {}).get(
            "sha256"
        ):
            raise LstmEdgeError(
                f"{bundle.root} was re-exported while quantizing it (its {key} changed); nothing was written",
                "run quantize again",
            )
    return now


def write_variants(
    bundle: Bundle, made: dict[str, Path], reports: dict[str, QuantizeReport], skipped: dict[str, str]
) -> None:
    """Copy the variants into the bundle with their manifest entries, quantization.md and .png, atomically."""
    with staged_dir(bundle.root, copy_existing=True) as stage:
        manifest = manifest_now(stage, bundle)
        for variant, src in made.items():
            v = bundle_variant(variant)
            made_model = stamp(onnx.load(str(src)), manifest.get("name", bundle.root.name), variant)
            (stage / v.file).write_bytes(made_model.SerializeToString())
            manifest["artifacts"][variant] = artifact_entry(
                stage,
                v.file,
                v.precision,
                manifest["artifacts"]["fp32"].get("opset"),
                deployable=reports[variant].deployable,
                verdict=reports[variant].verdict,
                report=reports[variant].to_dict(),
            )
        # Variants made by an earlier run stay in the report, read back from the manifest.
        everything = {
            v: QuantizeReport.from_dict(e["report"]) for v, e in manifest["artifacts"].items() if "report" in e
        }
        (stage / "quantization.md").write_text(format_report(everything, skipped) + "\n")
        (stage / "quantization.png").write_bytes(plot_error_growth(everything))
        manifest["artifacts"]["quantization_report"] = artifact_entry(stage, "quantization.md", "text")
        manifest["artifacts"]["quantization_plot"] = artifact_entry(stage, "quantization.png", "image")
        write_manifest(stage, manifest)

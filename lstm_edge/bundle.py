"""Reading a bundle: manifest.json plus its artifacts, each checked against its sha256 before use.

This is the contract between stages and with embedding applications. The writing side lives in
lstm_edge.export.manifest; runtimes only read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_edge.atomic import sha256_file
from lstm_edge.config import H0, ModelConfig
from lstm_edge.errors import LstmEdgeError

MANIFEST = "manifest.json"
FORMAT = "lstm-edge/bundle"
FORMAT_VERSION = 1
# The embed targets' folders carry our tag too, so `--force` knows them as ours (atomic.is_ours): the python,
# node and web targets in manifest.json (FORMAT), a Triton model repository (which has no manifest.json) in
# lstm-edge.json.
TRITON_INFO = "lstm-edge.json"
TRITON_FORMAT = "lstm-edge/triton-repository"
# A bundle's name lands in paths (models/<name>/), package.json and the web target's HTML: letters, digits, '.', '_'
# and '-', starting with a letter or digit (so never '.', '..' or a hidden name), at most 64 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str, *, derived: bool = False) -> str:
    """`name` unchanged where it matches NAME_PATTERN; raises LstmEdgeError otherwise (derived: the name came from
    the checkpoint's file name, so the fix is --name)."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    where = "the name taken from the checkpoint's file name" if derived else "the bundle name"
    raise LstmEdgeError(
        f"{where} {str(name)[:80]!r} is not a safe name",
        "pass --name with 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )


@dataclass(frozen=True)
class Variant:
    """One precision variant of a bundle: its name (the manifest key and --variant), its file, the precision its
    artifact entry records, and the `quantize --mode` that makes it (None for fp32, written by export)."""

    name: str
    file: str
    precision: str
    mode: str | None


# The one table of variants: variant ↔ file ↔ precision ↔ quantize mode.
VARIANT_TABLE = (
    Variant("fp32", "model.onnx", "fp32", None),
    Variant("int8", "model.int8.onnx", "int8", "dynamic"),
    Variant("int8-static", "model.int8-static.onnx", "int8", "static"),
    Variant("fp16", "model.fp16.onnx", "fp16", "fp16"),
)
VARIANTS = tuple(v.name for v in VARIANT_TABLE)
QUANTIZE_MODES = tuple(v.mode for v in VARIANT_TABLE if v.mode)


def variant(name: str) -> Variant:
    """The Variant called `name`; raises LstmEdgeError naming the choices for any other name."""
    for v in VARIANT_TABLE:
        if v.name == name:
            return v
    raise LstmEdgeError(f"unknown variant {name!r}", f"choose one of {', '.join(VARIANTS)}")


def variant_for_mode(mode: str) -> Variant:
    """The Variant that `quantize --mode MODE` makes; raises LstmEdgeError for an unknown mode."""
    for v in VARIANT_TABLE:
        if v.mode == mode:
            return v
    raise LstmEdgeError(f"unknown --mode {mode!r}", f"choose {', '.join(QUANTIZE_MODES)} or all")


# What quantize concluded about a variant (the artifact entry's "verdict"). "unverified": made without task data, so
# its task metric was never measured; its entry keeps `deployable: false` for readers that know only that key.
VERDICTS = ("deployable", "not-deployable", "unverified")


def entry_verdict(entry: dict) -> str:
    """A variant's verdict from its manifest entry: one of VERDICTS.

    Entries written before verdicts existed carry only `deployable` (missing: true, as fp32 from export), which
    maps to "deployable" / "not-deployable". Raises nothing.
    """
    verdict = entry.get("verdict")
    if verdict in VERDICTS:
        return verdict
    return "deployable" if entry.get("deployable", True) else "not-deployable"


@dataclass
class Bundle:
    """An opened bundle: its folder and its parsed manifest (see Bundle.open)."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        root = Path(path)
        if root.is_file() and root.name == MANIFEST:
            root = root.parent
        if not root.exists():
            raise LstmEdgeError(f"bundle not found: {root}", "export one with `lstm-edge export MODEL.pt`")
        if not root.is_dir() or not (root / MANIFEST).is_file():
            raise LstmEdgeError(
                f"{root} is not an lstm-edge bundle (no {MANIFEST})",
                "pass the folder `lstm-edge export` wrote",
            )
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LstmEdgeError(f"{root / MANIFEST} is not valid JSON ({e})", "re-export the bundle") from e
        _validate(manifest, root / MANIFEST)
        bundle = cls(root, manifest)
        bundle.config  # noqa: B018 - a config that does not build is reported now, not at first use
        return bundle

    @property
    def config(self) -> ModelConfig:
        try:
            config = ModelConfig.from_dict(self.manifest["config"])
            sizes = (config.input_size, config.hidden_size, config.num_layers, config.output_size)
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
                raise ValueError(f"sizes must be positive integers, got {sizes}")
            return config
        except (TypeError, ValueError) as e:
            raise LstmEdgeError(f"the manifest's model config is invalid ({e})", "re-export the bundle") from e

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.root.name)

    def verdict(self, variant: str) -> str:
        """Quantize's verdict on a variant (entry_verdict); raises LstmEdgeError when the bundle lacks it."""
        return entry_verdict(self.entry(variant))

    def variants(self) -> list[str]:
        return [v for v in VARIANTS if v in self.manifest["artifacts"]]

    def entry(self, variant: str) -> dict:
        arts = self.manifest["artifacts"]
        if variant not in arts:
            have = ", ".join(self.variants()) or "none"
            raise LstmEdgeError(
                f"the bundle has no {variant!r} variant (it has: {have})",
                "run `lstm-edge quantize BUNDLE` to make int8/fp16 variants"
                if variant in VARIANTS
                else f"choose one of {have}",
            )
        return arts[variant]

    def artifact(self, variant: str, verify_hash: bool = True) -> Path:
        """The artifact's path, after checking its sha256 against the manifest."""
        entry = self.entry(variant)
        path = (self.root / entry["path"]).resolve()
        if self.root.resolve() not in path.parents:
            raise LstmEdgeError(f"manifest path {entry['path']!r} points outside the bundle", "re-export the bundle")
        if not path.is_file():
            raise LstmEdgeError(f"{path} is listed in the manifest but missing", "re-export the bundle")
        if verify_hash:
            actual = sha256_file(path)
            if actual != entry["sha256"]:
                raise LstmEdgeError(
                    f"{entry['path']} does not match its sha256 in the manifest (the file changed after export)",
                    "re-export the bundle, or pass --no-verify-hash if you changed it on purpose",
                )
        return path

    @property
    def stateful(self) -> bool:
        """Whether the graph takes its state as an input (h0): False for a stateless import or a fallback export of
        the user's own forward (manifest io without h0). A bidirectional model is stateful but cannot stream."""
        names = [p.get("name") for p in (self.manifest.get("io") or {}).get("inputs", []) if isinstance(p, dict)]
        return not names or H0 in names

    def checkpoint(self, verify_hash: bool = True) -> Path:
        return (
            self.artifact("checkpoint", verify_hash) if "checkpoint" in self.manifest["artifacts"] else self._missing()
        )

    def _missing(self) -> Path:
        if not self.manifest.get("streaming", True):  # exported from the user's own forward (the intake's fallback)
            raise LstmEdgeError(
                "the bundle was exported from the model's own forward and carries no PyTorch checkpoint; its "
                "reference for later checks is its ONNX in float64",
                "checks against the float64 ONNX reference (kind onnx-float64) are not wired into this command yet; "
                "`run` and `bundle` work on it",
            )
        raise LstmEdgeError(
            "the bundle carries no PyTorch checkpoint", "re-export it from a .pt with `lstm-edge export`"
        )

    def golden(self, verify_hash: bool = True) -> dict[str, dict[str, np.ndarray]]:
        """Golden cases: {case: {x, h0, c0, y, hn, cn}} from golden.npz."""
        path = self.artifact("golden", verify_hash)
        cases: dict[str, dict[str, np.ndarray]] = {}
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    case, name = key.split("/")
                    cases.setdefault(case, {})[name] = z[key]
        except (ValueError, OSError, EOFError) as e:
            raise LstmEdgeError(f"{path} is not a readable golden-vector file ({e})", "re-export the bundle") from e
        return cases


def _validate(manifest, where: Path) -> None:
    """The structure every reader relies on; anything else is one clear error, never a KeyError deep inside."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LstmEdgeError(f"{where} is not an lstm-edge manifest", "re-export the bundle")
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise LstmEdgeError(f"{where}: format_version is {version!r}", "re-export the bundle")
    if version > FORMAT_VERSION:
        raise LstmEdgeError("the bundle was written by a newer lstm-edge", "upgrade lstm-edge")
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not isinstance(manifest.get("config"), dict):
        raise LstmEdgeError(f"{where} lacks its artifacts or config", "re-export the bundle")
    for name, entry in artifacts.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not isinstance(entry.get("sha256"), str)
        ):
            raise LstmEdgeError(f"{where}: artifact {name!r} lacks a path or sha256", "re-export the bundle")
        if "precision" in entry and not isinstance(entry["precision"], str):
            raise LstmEdgeError(
                f"{where}: artifact {name!r} has precision {entry['precision']!r}", "re-export the bundle"
            )

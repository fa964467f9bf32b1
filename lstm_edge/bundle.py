"""Reading a bundle: manifest.json plus its artifacts, each checked against its sha256 before use.

This is the contract between stages and with embedding applications. The writing side lives in
lstm_edge.export.manifest; runtimes only read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lstm_edge import limits
from lstm_edge.config import H0, ModelConfig
from lstm_edge.digest import sha256_file
from lstm_edge.errors import IntegrityError, LstmEdgeError
from lstm_edge.formats import FORMAT, FORMAT_VERSION, MANIFEST

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


def bundle_root(path: str | Path) -> Path:
    """The folder of the bundle at `path` (its folder, or its manifest.json), checked to hold a manifest.json;
    nothing is read. Bundle.open starts here, and the CLI calls it before importing torch, so that a wrong path is
    refused at once.

    Raises:
        LstmEdgeError: the path does not exist, or is not a folder holding a manifest.json.
    """
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
    return root


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
        """The bundle at `path` (its folder, or its manifest.json), its manifest validated and its config built.

        Artifacts are not read here: each is checked (containment, size, sha256) when it is asked for.

        Raises:
            LstmEdgeError: the folder is missing or holds no manifest.json; the manifest is over
                limits.MAX_MANIFEST_BYTES, unreadable, not JSON, not lstm-edge's format (or a newer version), or
                malformed (paths, sizes, hashes); or its model config is invalid or too large.
        """
        root = bundle_root(path)
        where = root / MANIFEST
        limits.check_file_size(where, limits.MAX_MANIFEST_BYTES, "the manifest", "re-export the bundle")
        try:
            text = where.read_bytes()
        except OSError as e:
            raise LstmEdgeError(f"{where} cannot be read ({e.strerror})", "check its permissions") from e
        manifest = limits.loads_json(text, str(where), "re-export the bundle")
        _validate(manifest, where)
        bundle = cls(root, manifest)
        bundle.config  # noqa: B018 - a config that does not build is reported now, not at first use
        return bundle

    @property
    def config(self) -> ModelConfig:
        """The model's config from the manifest, its sizes checked.

        Raises LstmEdgeError for a config that does not build or whose sizes are out of bounds."""
        try:
            config = ModelConfig.from_dict(self.manifest["config"])
            check_config_sizes(config, "the manifest's model config", "re-export the bundle")
            return config
        except (TypeError, ValueError) as e:
            raise LstmEdgeError(f"the manifest's model config is invalid ({e})", "re-export the bundle") from e

    @property
    def name(self) -> str:
        """The bundle's name: the manifest's `name`, or the folder's name for a manifest without one."""
        return self.manifest.get("name", self.root.name)

    def verdict(self, variant: str) -> str:
        """Quantize's verdict on a variant (entry_verdict); raises LstmEdgeError when the bundle lacks it."""
        return entry_verdict(self.entry(variant))

    def variants(self) -> list[str]:
        """The precision variants this bundle holds, in VARIANTS order (fp32 first)."""
        return [v for v in VARIANTS if v in self.manifest["artifacts"]]

    def entry(self, variant: str) -> dict:
        """The manifest's artifact entry for `variant` (path, bytes, sha256, precision, …).

        Raises LstmEdgeError where the bundle has no such artifact (the fix names quantize for a known variant)."""
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

    def locate(self, name: str, check_size: bool = True) -> Path:
        """The one check every manifest path passes before anything reads it: the artifact `name`'s file, resolved.

        Refused (LstmEdgeError, nothing read): an absolute path or one with `..`; a path that resolves (symlinks
        followed, loops caught) outside the bundle; a missing file or not a regular file; a file over
        limits.MAX_ARTIFACT_BYTES; with check_size, a size other than the manifest's `bytes` (IntegrityError). NUL
        bytes and over-long paths are refused earlier, when the manifest is opened. Only the file's metadata is touched (stat), never its bytes.

        Raises LstmEdgeError for each refusal above.
        """
        rel = self.entry(name)["path"]
        fix = "re-export the bundle"
        if PurePosixPath(rel).is_absolute() or Path(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            raise LstmEdgeError(f"manifest path {rel!r} of {name!r} points outside the bundle (not read)", fix)
        root = self.root.resolve()
        try:
            path = (self.root / rel).resolve(strict=True)
        except FileNotFoundError as e:
            raise LstmEdgeError(f"{self.root / rel} is listed in the manifest but missing", fix) from e
        except (OSError, RuntimeError) as e:  # a symlink loop: ELOOP, or RuntimeError before Python 3.13
            raise LstmEdgeError(f"{self.root / rel} cannot be resolved ({_reason(e)})", fix) from e
        if root not in path.parents:
            raise LstmEdgeError(f"manifest path {rel!r} of {name!r} resolves outside the bundle (not read)", fix)
        try:
            st = path.stat()
        except OSError as e:
            raise LstmEdgeError(f"{path} cannot be read ({_reason(e)})", fix) from e
        if not os.path.isfile(path):
            raise LstmEdgeError(f"{path} is listed in the manifest but is not a regular file", fix)
        if st.st_size > limits.MAX_ARTIFACT_BYTES:
            raise LstmEdgeError(
                f"{rel} is {st.st_size} bytes, over the {limits.MAX_ARTIFACT_BYTES} bytes an artifact may have "
                "(not read)",
                "larger models need external data, which lstm-edge does not write; re-export the bundle",
            )
        recorded = self.entry(name).get("bytes")
        if check_size and recorded is not None and recorded != st.st_size:
            raise IntegrityError(
                f"{rel} is {st.st_size} bytes but the manifest records {recorded} (the file changed after export)",
                fix,
            )
        return path

    def recorded_hashes(self) -> dict[str, str]:
        """{artifact: the sha256 its manifest entry records}, for every artifact that records one (what verify stores
        as the files it judged, and what report checks the files against). Raises nothing."""
        arts = self.manifest.get("artifacts", {})
        return {k: e["sha256"] for k, e in arts.items() if isinstance(e, dict) and isinstance(e.get("sha256"), str)}

    def artifact(self, variant: str, verify_hash: bool = True) -> Path:
        """The artifact's path after `locate`'s containment and size check and, with verify_hash, its sha256.

        Raises LstmEdgeError for a missing variant or a refusal of `locate`; IntegrityError (exit 1) for a size or
        sha256 that does not match the manifest."""
        entry = self.entry(variant)
        # --no-verify-hash is for a file changed on purpose: its recorded size is skipped with its sha256 (the
        # containment and the size cap still hold).
        path = self.locate(variant, check_size=verify_hash)
        if verify_hash:
            actual = sha256_file(path)
            if actual != entry["sha256"]:
                raise IntegrityError(
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
        """The bundle's PyTorch checkpoint (model.pt), checked as `artifact` checks any file.

        Raises LstmEdgeError where the bundle has none (imported from ONNX, or written without one) or it fails
        its checks."""
        return (
            self.artifact("checkpoint", verify_hash) if "checkpoint" in self.manifest["artifacts"] else self._missing()
        )

    def _missing(self) -> Path:
        if (self.manifest.get("reference") or {}).get("kind") == "onnx-float64":
            raise LstmEdgeError(
                "the bundle was imported from an ONNX file and carries no PyTorch checkpoint",
                "verify judges it against its ONNX in float64 (provider reference); use an ONNX runtime to run it",
            )
        if not self.manifest.get("streaming", True):  # exported from the user's own forward (the intake's fallback)
            raise LstmEdgeError(
                "the bundle was exported from the model's own forward and carries no PyTorch checkpoint",
                "verify judges it against its ONNX in float64, and run, quantize and bundle work on it "
                "whole-sequence; lstm-edge needs no checkpoint for those",
            )
        raise LstmEdgeError(
            "the bundle carries no PyTorch checkpoint", "re-export it from a .pt with `lstm-edge export`"
        )

    def golden(self, verify_hash: bool = True) -> dict[str, dict[str, np.ndarray]]:
        """Golden cases: {case: {x, h0, c0, y, hn, cn}} from golden.npz.

        Raises LstmEdgeError where golden.npz is missing, fails its checks, or cannot be read as the cases."""
        import zipfile  # deferred: ~2 ms (with lzma, bz2, shutil) that opening a runner does not need

        path = self.artifact("golden", verify_hash)
        cases: dict[str, dict[str, np.ndarray]] = {}
        fix = "re-export the bundle"
        try:
            limits.check_npz(path, limits.MAX_ARTIFACT_BYTES, fix)
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    case, _, name = key.partition("/")
                    cases.setdefault(case, {})[name] = z[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:  # NIE: zip version 6.4
            raise LstmEdgeError(f"{path} is not a readable golden-vector file ({_reason(e)})", fix) from e
        c = self.config
        io = self.manifest.get("io") if isinstance(self.manifest.get("io"), dict) else {}
        declared = [p.get("name") for k in ("inputs", "outputs") for p in io.get(k, []) if isinstance(p, dict)]
        want = declared or [*c.input_names, *c.output_names]  # the graph's own I/O: stateless bundles have x → y
        x_rank, x_kind = (2, "iu") if c.vocab_size else (3, "f")  # token ids [B, T] int64, else [B, T, F] float
        for case, arrays in cases.items():
            missing = [k for k in want if k not in arrays]
            if missing:
                raise LstmEdgeError(f"golden case {case!r} in {path.name} lacks {', '.join(missing)}", fix)
            if arrays["x"].ndim != x_rank or arrays["x"].dtype.kind not in x_kind:
                raise LstmEdgeError(f"golden case {case!r}: x has shape {arrays['x'].shape}, {arrays['x'].dtype}", fix)
        if not cases:
            raise LstmEdgeError(f"{path.name} holds no golden cases", fix)
        return cases


def _reason(e: BaseException) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).splitlines()[0][:160]


def check_config_sizes(config: ModelConfig, what: str, fix: str) -> None:
    """Refuse (LstmEdgeError) sizes that are not integers in 1..limits.MAX_MODEL_DIM, or whose fp32 weights
    (4·H·(F + H_out) + biases per layer and direction, plus the head) would exceed limits.MAX_ARTIFACT_BYTES:
    `hidden_size = 2**40` is one line here, not an allocation of 2**40 floats later.

    Raises LstmEdgeError (`what` names the source, `fix` is its fix) for either."""
    limits.check_dims(
        {k: getattr(config, k) for k in ("input_size", "hidden_size", "num_layers", "output_size")}, what, fix
    )
    for k in ("proj_size", "vocab_size"):
        v = getattr(config, k)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limits.MAX_MODEL_DIM:
            raise LstmEdgeError(f"{what}: {k} is {v!r}, not an integer in 0..{limits.MAX_MODEL_DIM}", fix)
    H, W, F = config.hidden_size, config.state_size, config.input_size
    per_layer = 4 * H * (max(F, config.recurrent_width) + W + 2) + W * H
    weights = config.num_directions * config.num_layers * per_layer + config.vocab_size * F
    weights += config.recurrent_width * config.output_size
    if 4 * weights > limits.MAX_ARTIFACT_BYTES:
        raise LstmEdgeError(
            f"{what} describes {weights} weights ({4 * weights} bytes in fp32), over the "
            f"{limits.MAX_ARTIFACT_BYTES}-byte cap (input_size {F}, hidden_size {H}, num_layers {config.num_layers})",
            fix,
        )


def _validate(manifest, where: Path) -> None:
    """The structure every reader relies on; anything else is one clear error, never a KeyError deep inside.

    Types are checked here (a string "false" for `deployable` was counted as deployable); paths are checked for
    NUL bytes and length here, and for containment by Bundle.locate before any read."""
    fix = "re-export the bundle"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LstmEdgeError(f"{where} is not an lstm-edge manifest", fix)
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise LstmEdgeError(f"{where}: format_version is {limits.short_repr(version)}", fix)
    if version > FORMAT_VERSION:
        raise LstmEdgeError("the bundle was written by a newer lstm-edge", "upgrade lstm-edge")
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not isinstance(manifest.get("config"), dict):
        raise LstmEdgeError(f"{where} lacks its artifacts or config", fix)
    if "name" in manifest and not isinstance(manifest["name"], str):
        raise LstmEdgeError(f"{where}: name is {limits.short_repr(manifest['name'])}", fix)
    for name, entry in artifacts.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not isinstance(entry.get("sha256"), str)
        ):
            raise LstmEdgeError(f"{where}: artifact {name!r} lacks a path or sha256", fix)
        path = entry["path"]
        if "\x00" in path:
            raise LstmEdgeError(f"{where}: the path of artifact {name!r} holds a NUL byte", fix)
        if not path or len(path) > limits.MAX_PATH_CHARS:
            raise LstmEdgeError(
                f"{where}: the path of artifact {name!r} is {len(path)} characters long "
                f"(1..{limits.MAX_PATH_CHARS} allowed)",
                fix,
            )
        for key, types, what in (
            ("precision", (str,), "a string"),
            ("deployable", (bool,), "true or false"),
            ("report", (dict,), "an object"),
            ("bytes", (int,), "an integer"),
            ("opset", (int,), "an integer"),
        ):
            value = entry.get(key)
            bad_bool = isinstance(value, bool) and bool not in types
            if key in entry and (not isinstance(value, types) or bad_bool):
                raise LstmEdgeError(f"{where}: artifact {name!r} has {key} {limits.short_repr(value)}, not {what}", fix)
        if isinstance(entry.get("bytes"), int) and entry["bytes"] < 0:
            raise LstmEdgeError(f"{where}: artifact {name!r} has bytes {entry['bytes']}", fix)

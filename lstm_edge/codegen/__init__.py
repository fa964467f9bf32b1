"""`lstm-edge codegen`: a bundle as a self-contained C99 library (fp32, or the int8 scheme of lstm_edge.c_int8_sim).

generate("models/adding", "out/", CodegenConfig(precision="int8")) writes NAME.h, NAME.c, NAME_check.c, Makefile,
startup_m4.c and mps2_an386.ld. Reads the bundle only (model.onnx, manifest, golden.npz); torch runs the int8
Python simulation (lstm_edge.c_int8_sim) that computes the constants and the check program's expected outputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lstm_edge import __version__
from lstm_edge.atomic import is_ours, staged_dir
from lstm_edge.bundle import Bundle
from lstm_edge.c_int8_sim import forward, input_amax
from lstm_edge.c_support import bundle_sha256, generator_digest
from lstm_edge.checkpoint import load_checkpoint, read_checkpoint
from lstm_edge.codegen import board
from lstm_edge.codegen.check_program import check_program
from lstm_edge.codegen.emit_fp32 import FP32
from lstm_edge.codegen.emit_int8 import INT8
from lstm_edge.codegen.int8_forms import GruInt8Layer, embedding_q, forward_gru, int8_params, token_amax
from lstm_edge.codegen.scaffold import Precision, header
from lstm_edge.codegen.weights import ModelWeights, read_weights
from lstm_edge.data import TaskSpec, held_out, metric
from lstm_edge.errors import LstmEdgeError
from lstm_edge.formats import CODEGEN_FORMAT, CODEGEN_INFO
from lstm_edge.progress import stage as progress_line
from lstm_edge.tolerances import metric_drop

# With no recorded input range, the int16 input covers the golden inputs and at least ±6 std of the normalization.
# The golden inputs alone (a few hundred normal draws: |x| ≤ 3.43 std on tests/test_codegen_gru.py's Kws) were
# exceeded by verify's own draws (3.81 in --quick), and the clipped step put the int8 C's hn 4.7e-2 from float64 where
# the C's recorded bound was 1.3e-2; a normal draw passes 6 std about once in 5e8, and the wider scale costs
# log2(6 / 3.43) = 0.8 of the int16 input's 15 bits.
UNRECORDED_STD = 6.0

# The one table of precisions: what each writes (its NAME.c, state, check defaults); the scaffold writes the rest.
EMITTERS: dict[str, Precision] = {"fp32": FP32, "int8": INT8}
PRECISIONS = tuple(EMITTERS)


@dataclass
class CodegenConfig:
    """What codegen writes: the precision, the C prefix, whether to check the bundle's hashes, and --force."""

    precision: str = "fp32"  # fp32 | int8
    prefix: str | None = None  # C identifier prefix and file stem (default: the bundle's name)
    verify_hash: bool = True
    force: bool = False  # replace an existing, non-empty --out folder
    progress: bool = True  # int8: one line on stderr per stage (lstm_edge.progress; TQDM_DISABLE turns it off)


@dataclass
class CodegenResult:
    """What generate() wrote: the folder, prefix, precision, bundle sha256, file names, and for int8 its input range
    and task metric."""

    out: Path
    prefix: str
    precision: str
    sha256: str  # the bundle's (manifest.json's) sha256, also in NAME.h
    files: list[str] = field(default_factory=list)
    input_range: str = ""  # int8: where the input scale came from
    int8_metric: dict | None = None  # int8: its task metric against fp32 (int8_task_metric), None when unmeasurable


def c_prefix(name: str) -> str:
    """A C identifier from a bundle name: other characters become '_', a leading digit gets 'm_'."""
    p = re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
    return f"m_{p}" if p[0].isdigit() else p


def _check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", prefix):
        raise LstmEdgeError(f"--prefix {prefix!r} is not a C identifier", "use letters, digits and '_' (e.g. adding)")
    return prefix


def input_range(bundle: Bundle, int8_settings: dict | None = None) -> tuple[list[float], list[float], str]:
    """Per-feature [min, max] of the raw input for the int8 input scale, and where it came from. `int8_settings`:
    the int8 variant's report settings where the manifest does not hold them yet (quantize, measuring the C's int8
    scheme for the variant it is making); None reads them from the manifest."""
    c = bundle.config
    if c.x_min and c.x_max:
        return list(c.x_min), list(c.x_max), "the training data's range (config x_min/x_max)"
    if int8_settings is None:
        int8_settings = ((bundle.manifest["artifacts"].get("int8") or {}).get("report") or {}).get("settings", {})
    eq = (int8_settings or {}).get("input_equalization") or {}
    if eq.get("x_min") and eq.get("x_max"):
        return list(eq["x_min"]), list(eq["x_max"]), "the int8 variant's calibration data (manifest)"
    x = np.concatenate([case["x"].reshape(-1, c.input_size) for case in bundle.golden().values()])
    mean, std = (np.asarray(v, np.float64) for v in (c.x_mean, c.x_std))
    lo = np.minimum(x.min(axis=0), mean - UNRECORDED_STD * std)
    hi = np.maximum(x.max(axis=0), mean + UNRECORDED_STD * std)
    return lo.tolist(), hi.tolist(), f"the golden inputs' range and ±{UNRECORDED_STD:g} std (no recorded range)"


def simulate_int8(
    params, x: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None, embedding: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """The int8 C's outputs for x [B, T, F] (token ids [B, T] with `embedding`, the (V, F) float32 table), h0/c0
    [L, B, H], from the bit-exact simulation: (y, hn, cn) for an LSTM, (y, hn) for a GRU (c0 None)."""
    if embedding is not None:
        x = embedding[np.asarray(x, np.int64)]  # (B, T, F): q16(E · X_INV_SCALE) below is the C's int16 table
    with torch.no_grad():
        if isinstance(params.layers[0], GruInt8Layer):
            y, h = forward_gru(params, torch.from_numpy(x), torch.from_numpy(h0))
            return y.numpy(), h.numpy()
        y, (h, c) = forward(params, torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    return y.numpy(), h.numpy(), c.numpy()


def int8_scheme(bundle: Bundle, int8_settings: dict | None = None, verify_hash: bool = True) -> tuple:
    """(params, weights): the int8 C's constants (c_int8_sim.Int16x8Params; a GRU's layers GruInt8Layer) and the
    float weights they come from (codegen.weights.ModelWeights, the embedding table with them), read from the
    bundle's model.onnx — what simulate_int8 takes to compute the C's answers. `int8_settings` as input_range's.

    Raises LstmEdgeError for a model the C cannot express (codegen.weights.read_weights) or a file failing its hash.
    """
    weights = read_weights(bundle, verify_hash)
    return _int8(bundle, weights, int8_settings)[0], weights


def _int8(bundle: Bundle, weights: ModelWeights, int8_settings: dict | None = None) -> tuple:
    """(params, the input scale's provenance, its provenance lines) for the int8 scheme of `weights`."""
    c = bundle.config
    if weights.embedding is not None:
        params = int8_params(weights, token_amax(weights))
        note = "the embedding table's |max|"
    else:
        lo, hi, note = input_range(bundle, int8_settings)
        params = int8_params(weights, input_amax(c.x_mean, c.x_std, lo, hi))
    lines = [
        "int8 scheme: int8 weights (one scale per output row), int16 activations and h, int32 accumulation,",
        "float32 cell state and gate math, tanh/sigmoid from a 513-entry table (no libm, no library at all).",
        f"Input scale from {note}: |normalized x| <= {params.x_amax:.6g}; beyond it inputs saturate."
        if weights.embedding is None
        else f"Input scale from {note}: |E| <= {params.x_amax:.6g}, so no row saturates.",
    ]
    if weights.embedding is not None:
        lines.append("Embedding table stored as int16 at layer 0's input scale (lstm_edge/codegen/int8_forms.py).")
    return params, note, lines


def _form_line(w: ModelWeights) -> str:
    """The provenance's words on the recurrent form and the input."""
    cell = ("unidirectional GRU (torch.nn.GRU: linear_before_reset=1), gate blocks r, z, n" if w.family == "gru"
            else "unidirectional LSTM, gate blocks i, f, c, o")  # fmt: skip
    if w.embedding is None:
        return cell + "."
    return f"{cell}; input: int32 token ids through a {w.embedding.shape[0]} x {w.embedding.shape[1]} embedding table."


def _dims(weights: ModelWeights, sha256: str, precision: str = "fp32") -> dict:
    """The sizes and form the C is written for (codegen.prepare's "dims"), with the bundle identity it embeds."""
    dims = {
        "L": len(weights.layers),
        "H": weights.hidden_size,
        "F": weights.input_size,
        "O": weights.output_size,
        "head": weights.head,
        "sha256": sha256,
        "family": weights.family,  # lstm | gru
        "V": 0 if weights.embedding is None else int(weights.embedding.shape[0]),  # > 0: int32 token ids in
    }
    if precision == "int8" and weights.family == "gru" and (3 * weights.hidden_size) % 2:
        dims["G"] = 3 * weights.hidden_size + 1  # batch_int8's kernels take rows in pairs: one zero row, never read
    return dims


def int8_library(params, weights: ModelWeights, prefix: str, identity: str) -> dict[str, str]:
    """{PREFIX.c, PREFIX.h}: the int8 C library for constants `params` (int8_scheme's), without a bundle on disk to
    prepare from — quantize compiles the int8 C of the variant it is making, whose input range is not in the
    manifest yet (export/quant_c.py). `identity` stands where a bundle's sha256 is embedded (NAME_bundle_sha256);
    the text is what render(prepare(...)) writes for the same params, bar that and the provenance comment.
    Raises nothing of its own."""
    dims = _dims(weights, identity, "int8")
    prep = {"prefix": prefix, "dims": dims, "params": params}
    prep["embedding_q"] = None if weights.embedding is None else embedding_q(params, weights)
    provenance = [f"int8 C built by lstm-edge {__version__} for {identity}, from int8_scheme's constants."]
    return {f"{prefix}.h": header(prefix, dims, INT8, provenance), f"{prefix}.c": INT8.source(prep)}


def prepare(bundle_path: str | Path, cfg: CodegenConfig) -> dict:
    """Everything the C files are written from: {prefix, dims, weights, params, provenance, cases, …}.

    Raises LstmEdgeError for an unknown precision, an invalid prefix, an unreadable bundle or a model the C cannot
    express (codegen.weights.check_supported).
    """
    if cfg.precision not in PRECISIONS:
        raise LstmEdgeError(f"--precision {cfg.precision!r}", f"choose one of {', '.join(PRECISIONS)}")
    bundle = Bundle.open(bundle_path)
    prefix = _check_prefix(cfg.prefix or c_prefix(bundle.name))
    weights = read_weights(bundle, cfg.verify_hash)
    sha = bundle_sha256(bundle)
    c = bundle.config
    dims = _dims(weights, sha, cfg.precision)
    arts = bundle.manifest["artifacts"]
    provenance = [
        f"Bundle {bundle.name!r} ({bundle.root}); sha256 of its manifest.json:",
        f"  {sha}",
        f"model.onnx sha256 {arts['fp32']['sha256']}",
        f"checkpoint sha256 {bundle.manifest.get('source_checkpoint_sha256', '?')}",
        f"Model: input {dims['F']}, hidden {dims['H']}, {dims['L']} layers, output {dims['O']}, head {dims['head']}, "
        f"task {c.task} ({c.kind}); {_form_line(weights)}",
        f"Written by lstm-edge {__version__} codegen, precision {cfg.precision}.",
    ]
    golden = bundle.golden(cfg.verify_hash)
    cases = [{"name": name, **arrays} for name, arrays in golden.items()]
    params, range_note = None, ""
    if cfg.precision == "int8":
        params, range_note, lines = _int8(bundle, weights)
        provenance += lines
        for case in cases:
            got = simulate_int8(params, case["x"], case["h0"], case.get("c0"), weights.embedding)
            case.update(zip(("y", "hn", "cn"), got, strict=False))
    return {
        "bundle": bundle,
        "prefix": prefix,
        "dims": dims,
        "weights": weights,
        "params": params,
        "embedding_q": None if params is None or weights.embedding is None else embedding_q(params, weights),
        "provenance": provenance,
        "cases": cases,
        "range_note": range_note,
        "sha256": sha,
    }


def render(
    prep: dict,
    precision: str,
    against: str | None = None,
    tolerance: float | None = None,
    chunk: int | None = None,
) -> dict[str, str]:
    """{file name: text} for the C library, its check program, the Makefile and the Cortex-M4 start-up files.

    The check program runs prep["cases"] (the bundle's golden cases, from prepare; lstm_edge.codegen.matrix puts
    verify's cases there) against `against` (what the expected outputs are, for its comment; default: the golden
    outputs, or for int8 the simulation's) within `tolerance` (default FP32_ABS, or C_INT8_VS_SIM for int8), and
    with `chunk` also in calls of that many steps.
    """
    p, dims = prep["prefix"], prep["dims"]
    form = EMITTERS[precision]
    tol, extra = form.check_tolerance, form.check_note
    if tolerance is not None:
        tol, extra = tolerance, "Tolerance: from lstm_edge/tolerances.py."
    return {
        f"{p}.h": header(p, dims, form, prep["provenance"]),
        f"{p}.c": form.source(prep),
        f"{p}_check.c": check_program(p, dims, prep["cases"], tol, against or form.check_against, extra, chunk),
        "Makefile": board.makefile(p),
        "startup_m4.c": board.STARTUP,
        "mps2_an386.ld": board.LINKER,
    }


INT8_EVAL_SAMPLES = 512  # as quantize's eval_samples: the same held-out sequences judge both kinds of int8


def _int8_y(params, x: torch.Tensor) -> torch.Tensor:
    """y of the int8 C's simulation for raw inputs x (B, T, F), zero state: an LSTM's or a GRU's."""
    if isinstance(params.layers[0], GruInt8Layer):
        return forward_gru(params, x)[0]
    return forward(params, x)[0]


def int8_task_metric(prep: dict, samples: int = INT8_EVAL_SAMPLES) -> dict | None:
    """The int8 C's task metric against the fp32 model's on held-out data, judged by quantize's default budget.

    The int8 C is computed by its bit-exact simulation (lstm_edge.c_int8_sim), the fp32 model by the bundle's
    checkpoint in PyTorch, both on `samples` held-out sequences of the split recorded in the checkpoint
    (TaskSpec.recorded → held_out "test", the data quantize judges its variants on).

    Returns:
        {"name": "mse" | "accuracy", "fp32", "int8", "drop" (relative for MSE, points for accuracy), "budget"
        (tolerances.metric_drop's default), "deployable", "samples"}; None when the bundle has
        no checkpoint or its task has no built-in data (pass-through: nothing to judge against, as quantize's
        "unverified").
    """
    bundle = prep["bundle"]
    if "checkpoint" not in bundle.manifest["artifacts"]:  # an imported model: no PyTorch reference, no task
        return None
    ckpt = bundle.checkpoint()
    model, config = load_checkpoint(ckpt)
    spec = TaskSpec.recorded(config.task, read_checkpoint(ckpt).get("training"))
    if not spec.has_data or prep["weights"].embedding is not None:  # the built-in tasks feed features, not ids
        return None
    X, y = held_out(spec, "test", samples)
    with torch.no_grad():
        xs = torch.from_numpy(X)
        fp32 = np.concatenate([model(xs[i : i + 256])[0].numpy() for i in range(0, len(X), 256)])
        int8 = np.concatenate([_int8_y(prep["params"], xs[i : i + 256]).numpy() for i in range(0, len(X), 256)])
    name, m_fp32 = metric(config.kind, fp32, y)
    m_int8 = metric(config.kind, int8, y)[1]
    drop, budget = metric_drop(config.kind, m_fp32, m_int8)
    return {"name": name, "fp32": m_fp32, "int8": m_int8, "drop": drop, "budget": budget,
            "deployable": bool(drop <= budget), "samples": len(X)}  # fmt: skip


def c_int8_verdict(bundle: Bundle) -> str:
    """The `c` runtime's int8 verdict for verify: its own task metric (int8_task_metric: the int8 C's bit-exact
    simulation on the checkpoint's held-out split, quantize's budget), not quantize's verdict on ORT's int8 — a
    different arithmetic (on the shipped adding model: −22% against +30%).

    Returns "deployable", "not-deployable", or "unverified" without task data or for a form the C cannot express
    (the c runner then refuses it in its own line, as unsupported). Raises nothing of its own.
    """
    try:
        m = int8_task_metric(prepare(bundle.root, CodegenConfig(precision="int8")))
    except LstmEdgeError:  # a form the C cannot express: the c runner refuses it in its own line, as unsupported
        return "unverified"
    return "unverified" if m is None else "deployable" if m["deployable"] else "not-deployable"


def _refuse_foreign_files(out: Path, written: set[str] | None) -> None:
    """--force replaces a C folder codegen wrote, never files a user added inside it: raises LstmEdgeError naming the
    first file under `out` that is not in `written` (what codegen wrote there: its lstm-edge-c.json records it; None
    for a folder codegen did not tag, left to is_ours). Raises nothing where every file is codegen's."""
    if written is None or not out.is_dir():
        return
    ours = written | {CODEGEN_INFO}  # codegen writes flat: any folder inside is the user's too
    foreign = sorted(rel for rel in (str(f.relative_to(out)) for f in out.rglob("*")) if rel not in ours)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise LstmEdgeError(
            f"{out} holds files codegen did not write ({foreign[0]}{more}); --force replaces only codegen's own",
            "move them out of the folder, or choose another --out",
        )


def _written_before(out: Path) -> set[str] | None:
    """The files a previous codegen recorded writing into `out` (its lstm-edge-c.json "files"); an empty set for a
    tag from before they were recorded (checked against this run's files instead); None: not codegen's folder."""
    try:
        tag = json.loads((out / CODEGEN_INFO).read_text())
    except (OSError, ValueError):
        return None
    return set(tag.get("files") or []) if isinstance(tag, dict) and tag.get("format") == CODEGEN_FORMAT else None


def generate(bundle_path: str | Path, out: str | Path, cfg: CodegenConfig | None = None) -> CodegenResult:
    """Write the C library for a bundle into `out` (atomically: all files or none).

    Raises LstmEdgeError for a model the C cannot express (bidirectional, variable lengths, no builder graph),
    an invalid prefix or precision, an existing non-empty `out` without cfg.force, or with it a folder lstm-edge did
    not write (atomic.is_ours) or a C folder holding files codegen did not write — refused before any work.
    """
    cfg = cfg or CodegenConfig()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.force:
        raise LstmEdgeError(f"{out} already exists and is not empty", "choose another --out or pass --force")
    if out.exists() and not is_ours(out):  # before the int8 simulation's tens of seconds, not after
        raise LstmEdgeError(
            f"{out} is not a folder lstm-edge wrote (a bundle, embed, C or score folder); --force replaces only those",
            "choose a new folder for --out",
        )
    before = _written_before(out)
    if before:  # the files it recorded: refused before the int8 simulation's tens of seconds, as above
        _refuse_foreign_files(out, before)
    int8 = cfg.precision == "int8"  # int8 simulates the C bit-exactly (tens of seconds): say what it is doing
    progress_line("int8: simulating the C on the bundle's golden cases", int8 and cfg.progress)
    prep = prepare(bundle_path, cfg)
    files = render(prep, cfg.precision)
    if before is not None and not before:  # an older tag without its file list: what codegen writes now
        _refuse_foreign_files(out, set(files))
    with staged_dir(out) as stage:
        for name, text in files.items():
            (stage / name).write_text(text)
        tag = {
            "format": CODEGEN_FORMAT,
            "prefix": prep["prefix"],
            "precision": cfg.precision,
            "bundle_sha256": prep["sha256"],
            "files": sorted(files),  # what --force may replace next time: never a file the user added
        }
        (stage / CODEGEN_INFO).write_text(json.dumps(tag, indent=1) + "\n")  # ours to replace with --force
    progress_line(f"int8: judging the C's task metric on {INT8_EVAL_SAMPLES} held-out sequences", int8 and cfg.progress)
    judged = int8_task_metric(prep) if int8 else None
    return CodegenResult(out, prep["prefix"], cfg.precision, prep["sha256"], sorted(files), prep["range_note"], judged)


__all__ = [
    "EMITTERS",
    "PRECISIONS",
    "c_int8_verdict",
    "generator_digest",
    "CodegenConfig",
    "CodegenResult",
    "generate",
    "int8_library",
    "int8_scheme",
    "int8_task_metric",
    "prepare",
    "render",
    "bundle_sha256",
]

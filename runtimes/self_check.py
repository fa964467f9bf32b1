"""Self-check at load: a runner answers only where it has reproduced its bundle's golden cases on this machine.

Before a runner opened with `RunnerOptions.self_check` (lstm_edge.load, run, score, bench) answers anything, it runs
the bundle's golden cases (golden.npz, or an embed folder's golden/index.json) whole, and the streaming case
(STREAMING_CASE) one step per call, and compares each output with the recorded reference at the variant's tolerance
(lstm_edge.tolerances.tolerance, scaled by max(1, |ref|)). A failure is one ParityError (exit 1) naming the runtime,
the variant, the measured error, the bound and the way to turn the check off. A pass is remembered in the user cache
(cache_home()/self-check, one JSON file per key) keyed by the bundle's sha256 × the runtime, its version and settings
× this CPU's model and features (or the GPU's name), so a second open costs a lookup.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_edge.atomic import atomic_write_text
from lstm_edge.environment import cpu_flags, cpu_model
from lstm_edge.errors import LstmEdgeError, ParityError
from lstm_edge.formats import MANIFEST
from lstm_edge.tolerances import scaled_error, tolerance
from lstm_edge.version import __version__

STREAMING_CASE = "b1_t100_random"  # the golden case every check also streams one step per call (targets too)
FORMAT = 1  # bumped when what a pass means changes: older cache entries are then never read
# RunnerOptions fields that can change a runtime's arithmetic, so a pass under one setting is not a pass under another.
KEY_OPTIONS = ("variant", "threads", "allow_fallback", "precision_hint", "graph_optimization", "gates", "float64")
OFF = "--no-self-check (API: self_check=False)"  # how to turn it off, named in every refusal
# What a runner's describe()["self_check"] says: checked now, found in the cache, turned off, or nothing to check
# against (a bare .onnx, a bundle without golden cases).
PASSED, CACHED, SKIPPED, UNAVAILABLE = "passed", "cached", "skipped", "unavailable"


@dataclass(frozen=True)
class GoldenCase:
    """One recorded case: its arrays by name (inputs and the reference outputs), and for an embed folder the
    tolerances its index recorded ({output: bound}; None: computed from the bundle's entry)."""

    name: str
    arrays: dict[str, np.ndarray]
    bounds: dict[str, float] | None = None


def cache_home() -> Path:
    """The user cache of lstm-edge: $LSTM_EDGE_CACHE, else $XDG_CACHE_HOME/lstm-edge, else ~/.cache/lstm-edge (the
    XDG rule platformdirs applies on Linux). The c runner's libraries go under c/, self-check passes under
    self-check/."""
    if os.environ.get("LSTM_EDGE_CACHE"):
        return Path(os.environ["LSTM_EDGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-edge"


def has_golden(source) -> bool:
    """Whether what a runner opened names golden cases (a bundle's golden artifact, an embed folder's index),
    read from its manifest alone."""
    manifest = source.bundle.manifest if source.bundle is not None else {}
    return "golden" in manifest.get("artifacts", {}) or isinstance((manifest.get("embed") or {}).get("golden"), str)


def golden_cases(source) -> list[GoldenCase]:
    """The golden cases of what a runner opened (a runtimes.source.Source): the bundle's golden.npz, an embed
    folder's golden/index.json, or [] where there are none (a bare .onnx, a bundle written without them).

    Raises:
        LstmEdgeError: golden files that fail their hash or cannot be read as cases.
    """
    bundle = source.bundle
    if bundle is None:
        return []
    if "golden" in bundle.manifest.get("artifacts", {}):
        return [GoldenCase(n, a) for n, a in bundle.golden().items()]
    index_name = (bundle.manifest.get("embed") or {}).get("golden")
    if not isinstance(index_name, str) or not index_name.endswith(".json"):
        return []
    index_path, fix = bundle.root / index_name, "re-run lstm-edge bundle"
    try:
        return [_embed_case(index_path.parent, case) for case in json.loads(index_path.read_text())["cases"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LstmEdgeError(f"{index_path} is not a readable golden index ({type(e).__name__}: {e})"[:300], fix) from e


def _embed_case(folder: Path, case: dict) -> GoldenCase:
    """One case of an embed folder's golden index: its raw little-endian .bin arrays, with the recorded bounds."""
    arrays = {}
    for key, m in case["arrays"].items():
        a = np.fromfile(folder / Path(m["file"]).name, "<i8" if m.get("dtype") == "int64" else "<f4")
        arrays[key] = a.reshape(m["shape"])  # ValueError where the file does not hold that shape
    return GoldenCase(case["name"], arrays, {k: float(v) for k, v in case["tolerance"].items()})


def cache_key(runner, provider: str) -> dict:
    """What a pass depends on: the bundle (its manifest's sha256, which records every artifact's; plus the opened
    file's own where hashes were not checked), the runtime as describe() reports it (name, version, device, …),
    the settings in KEY_OPTIONS, this CPU's model and feature flags (or the GPU's name), and lstm-edge's version."""
    source, opts = runner.source, runner.options
    files = [source.bundle.root / MANIFEST] if source.bundle is not None else []
    if not opts.verify_hash or source.bundle is None:
        files.append(source.path)
    described = {k: v for k, v in runner.describe().items() if k not in ("model", "built_now", "self_check")}
    device = described.get("device", "cpu")
    return {
        "format": FORMAT,
        "lstm_edge": __version__,
        "provider": provider,
        "files": [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files],
        "runtime": described,
        "options": {k: repr(getattr(opts, k, None)) for k in (*KEY_OPTIONS, "cflags")},
        "machine": gpu_name() if str(device).startswith("cuda") else cpu_identity(),
    }


@functools.cache
def cpu_identity() -> str:
    """This CPU as a cache key: machine, model name and every feature flag (sorted, hashed)."""
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:16]
    return f"{platform.machine()} · {cpu_model()} · flags {flags}"


def gpu_name() -> str:
    """The CUDA device's name (torch.cuda), or "cuda:0" where torch cannot tell."""
    try:
        import torch  # deferred: only a CUDA runner's key needs the GPU's name, and torch is heavy to import

        return f"cuda:0 · {torch.cuda.get_device_name(0)}"
    except Exception:  # noqa: BLE001 - a CPU-only torch, no driver: the device id alone keys the entry
        return "cuda:0"


def entry_path(key: dict) -> Path:
    """The cache file of one key: cache_home()/self-check/<sha256 of the key>.json."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_home() / "self-check" / f"{digest[:32]}.json"


def measure(runner, provider: str, cases: list[GoldenCase]) -> list[dict]:
    """Each golden case run whole, and STREAMING_CASE streamed one step per call where the model streams: one row per
    case × mode × output with its max scaled error and bound. Raises LstmEdgeError where the runtime fails a case."""
    source = runner.source
    config, entry = source.config, bound_entry(runner)
    streams = source.bundle.stateful and source.has_state and (config is None or config.streamable)
    states = [n for n in source.input_names if n in ("h0", "c0")]
    rows = []
    for case in cases:
        a = case.arrays
        x, lengths = a["x"], a.get("lengths")
        T = x.shape[1 if config is None or config.batch_first else 0]
        state = tuple(a[n] for n in states) or None
        y, final = runner.run(x, state, lengths)
        got = {"full": (y, *final)}
        if streams and case.name == STREAMING_CASE and (lengths is None or int(np.min(lengths)) == T):
            s = runner.stream(batch=x.shape[0 if config is None or config.batch_first else 1])
            if state is not None:
                s.state = state
            got["stream (1 step per call)"] = (s.feed(x, 1), *s.state)
        for mode, outs in got.items():
            for name, out in zip(source.output_names, outs, strict=False):
                bound = case.bounds[name] if case.bounds else tolerance(entry, T, name, provider)
                out, row = np.asarray(out), {"case": case.name, "mode": mode, "output": name, "bound": bound}
                if out.shape != a[name].shape:  # a wrong time axis or head fails outright, never broadcast
                    row |= {"error": float("inf"), "shape": [list(out.shape), list(a[name].shape)]}
                else:
                    row["error"] = float(np.max(scaled_error(out, a[name]))) if out.size else 0.0
                rows.append(row)
    return rows


def bound_entry(runner) -> dict | None:
    """The manifest entry whose tolerance applies: the variant asked for (the c runner opens fp32's graph for its
    int8 C, judged by the bundle's int8 bound, as verify judges it); None where the bundle records none (the int8 C
    of a bundle never quantized)."""
    return runner.source.bundle.manifest.get("artifacts", {}).get(runner.options.variant)


def stale_c_bound(provider: str, entry: dict) -> str:
    """The first words of a failed check's fix where the c runtime's int8 was held to ORT's bound because the bundle
    was quantized before quantize recorded the int8 C's own (report c_error_profile); "" otherwise."""
    report = entry.get("report") or {}
    if provider != "c" or entry.get("precision") != "int8" or report.get("c_error_profile"):
        return ""
    return (
        "the bundle records ONNX Runtime's int8 bound only, not the int8 C's own: re-run `lstm-edge quantize "
        "BUNDLE` to record it; else "
    )


def refusal(runtime: str, variant: str, name: str, worst: dict) -> str:
    """The words of a failed self-check, shared by every runtime and target (templates/parity.mjs writes the same):
    the runtime ("onnxruntime 1.32.0 (cpu)"), the variant, the bundle's name, and the worst row of `measure`
    (case, mode, output, error, bound)."""
    # The golden cases cannot tell a runtime fault from a bundle altered since export (a tampered or truncated file
    # fails the same way), so the words blame neither: they say what disagrees with what.
    head = f"self-check failed: {runtime}'s answers for the {variant} variant of {name} disagree with its golden case"
    if "shape" in worst:  # (got, want)
        got, want = (tuple(s) for s in worst["shape"])
        return (
            f"{head} {worst['case']} ({worst['mode']}) {worst['output']} has shape {got} where the reference has {want}"
        )
    return (
        f"{head} {worst['case']} ({worst['mode']}) {worst['output']} max scaled error {worst['error']:.2e} > bound "
        f"{worst['bound']:.2e}"
    )


def self_check(runner, provider: str) -> str:
    """Check `runner` (just opened on `provider`) against its golden cases, or find its pass in the cache.

    Returns:
        CACHED (a pass recorded under the same key), PASSED (checked now; the pass is recorded), or UNAVAILABLE
        (nothing to check against: a bare .onnx, no golden cases, or no recorded bound for the variant).

    Raises:
        ParityError: an output outside its bound (non-finite included): one line naming the runtime and version,
            the variant, the case, the measured error and the bound, and the way to turn the check off.
        LstmEdgeError: golden files that cannot be read, or a runtime that fails on a golden case.
    """
    if not has_golden(runner.source) or bound_entry(runner) is None:
        return UNAVAILABLE
    key = cache_key(runner, provider)  # first the lookup: the golden files are read only when checking
    path = entry_path(key)
    try:
        if json.loads(path.read_text()).get("key") == key:
            return CACHED
    except (OSError, ValueError, AttributeError):  # no entry yet, or an unreadable one: check now
        pass
    cases = golden_cases(runner.source)
    if not cases:
        return UNAVAILABLE
    rows = measure(runner, provider, cases)
    worst = max(rows, key=lambda r: r["error"] / r["bound"] if r["error"] == r["error"] else float("inf"))
    if not worst["error"] <= worst["bound"]:  # NaN fails too
        info = key["runtime"]
        runtime = f"{info.get('runtime')} {info.get('version')} ({info.get('device')})"
        raise ParityError(
            refusal(runtime, runner.options.variant, runner.source.bundle.name, worst),
            stale_c_bound(provider, bound_entry(runner))
            + "do not use its answers; `lstm-edge verify BUNDLE` against the float64 reference tells a corrupt bundle "
            f"(every runtime fails) from a runtime fault (this one alone): then try another --provider or --variant, "
            f"re-export, or skip the check with {OFF}",
        )
    record = {"key": key, "worst": worst, "cases": len(cases), "rows": len(rows)}
    try:
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    except LstmEdgeError:  # an unwritable cache: the check passed, it is just not remembered
        pass
    return PASSED

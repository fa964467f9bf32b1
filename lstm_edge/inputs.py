"""Reading model inputs from files (.npy, .npz, .csv, .json, or '-' for JSON on stdin) and writing outputs."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from lstm_edge import limits
from lstm_edge.config import C0, H0, INPUT_NAMES, LENGTHS, X
from lstm_edge.errors import LstmEdgeError, first_line

State = tuple[np.ndarray, np.ndarray] | None


def _from_json(text: str | bytes, origin: str, tokens: bool = False) -> dict[str, np.ndarray]:
    if len(text) > limits.MAX_JSON_INPUT_BYTES:
        raise LstmEdgeError(
            f"{origin} holds {len(text)} bytes of JSON, over the {limits.MAX_JSON_INPUT_BYTES}-byte cap",
            "give large inputs as .npy or .npz",
        )
    doc = limits.loads_json(text, origin, 'give {"x": [[...]]}')
    if isinstance(doc, list):
        doc = {"x": doc}
    if not isinstance(doc, dict) or "x" not in doc:
        raise LstmEdgeError(f"{origin} has no 'x'", 'give {"x": [[step features], ...], "h0": ..., "c0": ...}')
    _both_or_neither(origin, [n for n in (H0, C0) if n in doc], (H0, C0))
    arrays = {}
    name = X
    try:
        for name in (X, LENGTHS, H0, C0):
            if name in doc:
                ints = name == LENGTHS or (name == X and tokens)
                arrays[name] = np.asarray(doc[name], dtype=np.float64 if not ints else None)
    except OverflowError as e:  # an integer beyond float64 (10**400): json reads it, numpy cannot
        raise LstmEdgeError(f"{origin} holds a number too large for float64", "give values within ±1.8e308") from e
    except RecursionError as e:
        raise LstmEdgeError(f"{origin} is nested too deeply to read", "give x as [[step features], ...]") from e
    except (ValueError, TypeError) as e:
        raise LstmEdgeError(
            f"{origin}: {name} is not a rectangular array of numbers", "every step needs the same features"
        ) from e
    return arrays


def _both_or_neither(origin: str, present: list[str], names: tuple[str, str]) -> None:
    """A state is (h0, c0) together: one without the other was silently ignored before; now it is one line."""
    if len(present) == 1:
        raise LstmEdgeError(
            f"{origin} gives {present[0]} but not {next(n for n in names if n not in present)}",
            f"give both {names[0]} and {names[1]} or neither (zeros)",
        )


def _load_npy(path: Path) -> np.ndarray:
    """An .npy, its header checked first: data past MAX_INPUT_BYTES, or less data than the header claims (a
    header saying (1e6, 1e6, 2) with 16 bytes behind it), is refused without allocating."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        shape, dtype, offset = limits.read_npy_header(f, str(path), "re-save it with np.save")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > limits.MAX_INPUT_BYTES:
        raise LstmEdgeError(
            f"{path}: its header claims {shape} {dtype} ({need} bytes), over the {limits.MAX_INPUT_BYTES}-byte "
            "cap on an input file",
            "split the input into smaller files",
        )
    if need > size - offset:
        raise LstmEdgeError(
            f"{path}: its header claims {shape} {dtype} ({need} bytes) but the file holds {size - offset}",
            "the file is truncated or its header is wrong; re-save it with np.save",
        )
    return np.load(path, allow_pickle=False)


def zip_errors() -> tuple[type[Exception], ...]:
    """(zipfile.BadZipFile, NotImplementedError) once an .npz has been opened (np.load imports zipfile), else (): a
    .npy run skips importing zipfile (~2 ms with lzma, bz2, shutil) just to name an error it cannot raise. zipfile
    raises NotImplementedError for a member whose header asks a newer zip version (6.4). Raises nothing."""
    zipfile = sys.modules.get("zipfile")
    return (zipfile.BadZipFile, NotImplementedError) if zipfile is not None else ()


def read_input(spec: str, input_names: list[str] | None = None) -> tuple[np.ndarray, State]:
    """x (a single sequence [T, F] becomes [1, T, F]) and an optional (h0, c0): the seed's LSTM form."""
    arrays = read_inputs(spec, input_names)
    state = (arrays[H0], arrays[C0]) if H0 in arrays and C0 in arrays else None
    return arrays[X], state


def read_inputs(
    spec: str, input_names: list[str] | None = None, tokens: bool = False, batch_first: bool = True
) -> dict[str, np.ndarray]:
    """The arrays a model takes, by name: x always, and whichever of lengths, h0, c0 the file holds.

    x: float [B, T, F] (one sequence [T, F] becomes [1, T, F]), or with tokens=True int64 ids [B, T] (one sequence
    [T] becomes [1, T]), in the model's own layout (time-major: one sequence becomes [T, 1, …]). Files: .npy (x),
    .npz (arrays by name), .csv (one sequence, rows are steps), .json ({"x": …, "lengths": …, "h0": …, "c0": …}) or
    '-' for JSON on stdin. Every file is checked against lstm_edge.limits before it is read whole: JSON size and
    nesting, .npy headers against the file's size, .npz members from the zip directory (never inflated past
    MAX_INPUT_BYTES). Raises LstmEdgeError for an unreadable, oversized or malformed input, for h0 without c0
    (or c0 without h0), or for a state or lengths array the model does not take."""
    names = input_names or list(INPUT_NAMES)
    if spec == "-":
        arrays = _from_json(
            getattr(sys.stdin, "buffer", sys.stdin).read(limits.MAX_JSON_INPUT_BYTES + 1), "stdin", tokens
        )
        refuse_foreign_roles("stdin", list(arrays), names)
    else:
        path = Path(spec)
        if not path.exists():
            raise LstmEdgeError(f"input file not found: {path}", "pass --input FILE (.npy, .npz, .csv, .json) or -")
        if path.is_dir():
            raise LstmEdgeError(f"{path} is a directory", "pass an input file")
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                arrays = {X: _load_npy(path)}
            elif suffix == ".npz":
                limits.check_npz(path, limits.MAX_INPUT_BYTES, "split the input into smaller files")
                with np.load(path, allow_pickle=False) as z:
                    xn = names[0] if names[0] in z else "x"
                    if xn not in z:
                        raise LstmEdgeError(
                            f"{path} has no array {names[0]!r}", f"save it as np.savez(path, {names[0]}=x)"
                        )
                    arrays = {X: z[xn]}
                    states = [n for n in names[1:] if n != LENGTHS] or [H0, C0]
                    if len(states) == 2:
                        _both_or_neither(str(path), [n for n in states if n in z], (states[0], states[1]))
                    if all(n in z for n in states):
                        arrays.update((k, z[n]) for k, n in zip((H0, C0), states, strict=False))
                    if LENGTHS in z:
                        arrays[LENGTHS] = z[LENGTHS]
                    refuse_foreign_roles(str(path), z.files, names)
            elif suffix == ".csv":
                limits.check_file_size(path, limits.MAX_JSON_INPUT_BYTES, "the CSV input", "give large inputs as .npy")
                arrays = {X: _read_csv(path)}
            elif suffix == ".json":
                limits.check_file_size(path, limits.MAX_JSON_INPUT_BYTES, "the JSON input", "give large inputs as .npy")
                arrays = _from_json(path.read_bytes(), str(path), tokens)
                refuse_foreign_roles(str(path), list(arrays), names)
            else:
                raise LstmEdgeError(f"unknown input format {suffix!r}", "use .npy, .npz, .csv or .json")
        except (ValueError, OSError, EOFError, *zip_errors()) as e:
            raise LstmEdgeError(f"{path} could not be read ({first_line(e, 120)})", "check the file") from e
    if arrays[X].ndim == (1 if tokens else 2):  # one sequence: a batch of 1, on the model's batch axis
        arrays[X] = arrays[X][None] if batch_first else np.expand_dims(arrays[X], 1)
    return arrays


def refuse_foreign_roles(where: str, keys: list[str], names: list[str]) -> None:
    """Refuse a state or lengths array the model does not take (c0 for a GRU, lengths for a model without them):
    read and dropped, it would change nothing while the caller believes it was used.

    Raises:
        LstmEdgeError: naming the array and the model's inputs.
    """
    foreign = [k for k in keys if k in (H0, C0, LENGTHS) and k not in names]
    if foreign:
        raise LstmEdgeError(
            f"{where} holds {', '.join(foreign)}, which this model does not take (its inputs: {', '.join(names)})",
            f"drop {', '.join(foreign)} from the input",
        )


def _read_csv(path: Path) -> np.ndarray:
    """One sequence: rows are steps, columns features; an optional header row is skipped."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise LstmEdgeError(f"{path} is empty", "give one row per step")
    try:
        float(lines[0].split(",")[0])
    except ValueError:
        lines = lines[1:]
    if not lines:
        raise LstmEdgeError(f"{path} has a header but no rows", "give one row per step")
    try:
        return np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise LstmEdgeError(f"{path}: {e}", "every row needs the same number of numeric columns") from e


def write_output(path: str, y: np.ndarray, h: np.ndarray | None, c: np.ndarray | None = None) -> Path:
    """y alone (.npy) or y with the final state (.npz: y, hn, and cn for an LSTM; y alone for a graph that returns
    no state), written atomically.

    Raises LstmEdgeError for another suffix or a folder that cannot be written."""
    p = Path(path)
    buf = io.BytesIO()
    if p.suffix == ".npy":
        np.save(buf, y)
    elif p.suffix == ".npz":
        np.savez(buf, y=y, **({"hn": h} if h is not None else {}), **({"cn": c} if c is not None else {}))
    else:
        raise LstmEdgeError(f"unknown output format {p.suffix!r}", "use .npy (y) or .npz (y, hn, cn)")
    from lstm_edge.atomic import atomic_write_bytes  # deferred: tempfile/shutil (~3 ms), for --output alone

    return atomic_write_bytes(p, buf.getvalue())


def read_feeds(spec: str | None, named: tuple[str, ...], signature) -> dict[str, np.ndarray]:
    """Feeds for a bare .onnx, by the model's own input names (runtimes.signature.Signature).

    spec: an .npz (every array by its key; a key x/h0/c0/lengths goes to the input playing that role when the model
    names it otherwise), or .npy/.csv/.json/- holding x (a .csv, one [T, F] sequence, gets its batch axis where
    the model keeps batch). named: "NAME=FILE" pairs (.npy, or an .npz holding NAME or one array). Raises LstmEdgeError for an
    unreadable file or a malformed pair; unknown names are reported by Signature.bind."""
    declared = {p.name for p in signature.inputs}
    roles = {r: p.name for r in ("x", "h0", "c0", "lengths") if (p := signature.port(r)) is not None}
    feeds: dict[str, np.ndarray] = {}
    if spec and spec != "-" and Path(spec).suffix.lower() == ".npz":
        path = Path(spec)
        if not path.is_file():
            raise LstmEdgeError(f"input file not found: {path}", "pass --input FILE.npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    feeds[key if key in declared else roles.get(key, key)] = z[key]
        except (ValueError, OSError, EOFError) as e:
            raise LstmEdgeError(f"{path} could not be read ({first_line(e, 120)})", "check the file") from e
    elif spec:
        if "x" not in roles:
            raise LstmEdgeError(
                f"no input of the model is recognisably x ({', '.join(p.describe() for p in signature.inputs)})",
                "give an .npz with arrays by input name, or --input-name NAME=FILE",
            )
        x, state = read_input(spec, [roles["x"]])
        if x.ndim == 3 and signature.x_time == 0 and spec.endswith(".csv"):
            x = x.transpose(1, 0, 2)  # one [T, F] sequence for a time-major model: [T, 1, F]
        feeds[roles["x"]] = x
        if state is not None:
            for role, a in zip(("h0", "c0"), state, strict=False):
                if role in roles:
                    feeds[roles[role]] = a
    for pair in named:
        name, sep, file = pair.partition("=")
        if not sep or not name or not file:
            raise LstmEdgeError(f"--input-name {pair!r}", "write it as NAME=FILE (.npy or .npz)")
        path = Path(file)
        if not path.is_file():
            raise LstmEdgeError(f"input file not found: {path} (for {name})", "check the path")
        try:
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    if name not in z.files and len(z.files) != 1:
                        raise LstmEdgeError(f"{path} has no array {name!r} and more than one array", "save it alone")
                    feeds[name] = z[name if name in z.files else z.files[0]]
            else:
                feeds[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise LstmEdgeError(f"{path} could not be read ({first_line(e, 120)})", "give a .npy or .npz") from e
    if not feeds:
        raise LstmEdgeError("no input given", "pass --input FILE or --input-name NAME=FILE")
    return feeds


def write_outputs(path: str, outputs: dict[str, np.ndarray]) -> Path:
    """Every output by name (.npz), or the first one alone (.npy), written atomically.

    Raises LstmEdgeError for another suffix or a folder that cannot be written."""
    p = Path(path)
    buf = io.BytesIO()
    if p.suffix == ".npy":
        np.save(buf, next(iter(outputs.values())))
    elif p.suffix == ".npz":
        np.savez(buf, **outputs)
    else:
        raise LstmEdgeError(
            f"unknown output format {p.suffix!r}", "use .npz (every output by name) or .npy (the first)"
        )
    from lstm_edge.atomic import atomic_write_bytes  # deferred: tempfile/shutil (~3 ms), for --output alone

    return atomic_write_bytes(p, buf.getvalue())

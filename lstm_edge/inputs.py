"""Reading model inputs from files (.npy, .npz, .csv, .json, or '-' for JSON on stdin) and writing outputs."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from lstm_edge import limits
from lstm_edge.atomic import atomic_write_bytes
from lstm_edge.config import INPUT_NAMES
from lstm_edge.errors import LstmEdgeError, first_line

State = tuple[np.ndarray, np.ndarray] | None


def _from_json(text: str | bytes, origin: str, names: tuple[str, str] = ("h0", "c0")) -> tuple[np.ndarray, State]:
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
    _both_or_neither(origin, [n for n in names if n in doc], names)
    try:
        x = np.asarray(doc["x"], dtype=np.float64)
        state = tuple(np.asarray(doc[n], np.float64) for n in names) if names[0] in doc else None
    except OverflowError as e:  # an integer beyond float64 (10**400): json reads it, numpy cannot
        raise LstmEdgeError(f"{origin} holds a number too large for float64", "give values within ±1.8e308") from e
    except RecursionError as e:
        raise LstmEdgeError(f"{origin} is nested too deeply to read", "give x as [[step features], ...]") from e
    except (ValueError, TypeError) as e:
        raise LstmEdgeError(
            f"{origin}: x is not a rectangular array of numbers", "every step needs the same features"
        ) from e
    return x, state


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


def read_input(spec: str, input_names: list[str] | None = None) -> tuple[np.ndarray, State]:
    """x (a single sequence [T, F] becomes [1, T, F]) and an optional (h0, c0).

    Every file is checked against lstm_edge.limits before it is read whole: JSON size and nesting, .npy headers
    against the file's size, .npz members from the zip directory (never inflated past MAX_INPUT_BYTES). Raises
    LstmEdgeError for an unreadable, oversized or malformed input, or for h0 without c0 (or c0 without h0).
    """
    names = input_names or list(INPUT_NAMES)
    state_names = (names[1], names[2]) if len(names) >= 3 else ("h0", "c0")
    if spec == "-":
        x, state = _from_json(
            getattr(sys.stdin, "buffer", sys.stdin).read(limits.MAX_JSON_INPUT_BYTES + 1), "stdin", state_names
        )
    else:
        path = Path(spec)
        if not path.exists():
            raise LstmEdgeError(f"input file not found: {path}", "pass --input FILE (.npy, .npz, .csv, .json) or -")
        if path.is_dir():
            raise LstmEdgeError(f"{path} is a directory", "pass an input file")
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                x, state = _load_npy(path), None
            elif suffix == ".npz":
                limits.check_npz(path, limits.MAX_INPUT_BYTES, "split the input into smaller files")
                with np.load(path, allow_pickle=False) as z:
                    xn = names[0] if names[0] in z else "x"
                    if xn not in z:
                        raise LstmEdgeError(
                            f"{path} has no array {names[0]!r}", f"save it as np.savez(path, {names[0]}=x)"
                        )
                    x = z[xn]
                    _both_or_neither(str(path), [n for n in state_names if n in z], state_names)
                    state = (z[state_names[0]], z[state_names[1]]) if state_names[0] in z else None
            elif suffix == ".csv":
                limits.check_file_size(path, limits.MAX_JSON_INPUT_BYTES, "the CSV input", "give large inputs as .npy")
                x, state = _read_csv(path), None
            elif suffix == ".json":
                limits.check_file_size(path, limits.MAX_JSON_INPUT_BYTES, "the JSON input", "give large inputs as .npy")
                x, state = _from_json(path.read_bytes(), str(path), state_names)
            else:
                raise LstmEdgeError(f"unknown input format {suffix!r}", "use .npy, .npz, .csv or .json")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise LstmEdgeError(f"{path} could not be read ({first_line(e, 120)})", "check the file") from e
    if x.ndim == 2:
        x = x[None]
    return x, state


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


def write_output(path: str, y: np.ndarray, h: np.ndarray, c: np.ndarray) -> Path:
    p = Path(path)
    buf = io.BytesIO()
    if p.suffix == ".npy":
        np.save(buf, y)
    elif p.suffix == ".npz":
        np.savez(buf, y=y, hn=h, cn=c)
    else:
        raise LstmEdgeError(f"unknown output format {p.suffix!r}", "use .npy (y) or .npz (y, hn, cn)")
    return atomic_write_bytes(p, buf.getvalue())

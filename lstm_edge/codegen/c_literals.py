"""C literals and constant arrays that read back to the very bits Python holds (every generated file uses these)."""

from __future__ import annotations

import numpy as np

PER_LINE = 10  # values per line in a generated array


def c_float(v: float) -> str:
    """A float32 as a C literal that reads back to the same bits (9 significant digits)."""
    s = f"{float(np.float32(v)):.9g}"
    if not any(ch in s for ch in ".en"):
        s += ".0"
    return s + "f"


def c_double(v: float) -> str:
    """A float64 as a C literal that reads back to the same bits (Python's shortest round-trip repr)."""
    s = repr(float(v))
    return s if any(ch in s for ch in ".en") else s + ".0"


def c_array(ctype: str, name: str, a: np.ndarray) -> str:
    """`static const ctype name[d0][d1]… = {…};` with the values in C order (ctype "double": float64 literals)."""
    a = np.asarray(a)
    dims = "".join(f"[{d}]" for d in a.shape)
    fmt = c_double if ctype == "double" else c_float if a.dtype.kind == "f" else (lambda v: str(int(v)))

    def flat(v: np.ndarray) -> str:
        # Integers: str() of the Python ints of one tolist() — the same text as str(int(x)) per numpy scalar, in
        # half the time (the seed size's int8 library, 890k weights: 0.39 s → 0.17 s; quantize and codegen int8
        # both write it). Not bool: str(True) is "True".
        words = list(map(str, v.tolist())) if a.dtype.kind in "iu" else [fmt(x) for x in v]
        lines = [", ".join(words[k : k + PER_LINE]) for k in range(0, len(words), PER_LINE)]
        return ",\n    ".join(lines) if lines else "0"

    if a.ndim == 2:  # one brace pair per row (-Wmissing-braces)
        body = ",\n    ".join("{" + flat(row) + "}" for row in a)
    else:
        body = flat(a.ravel())
    return f"static const {ctype} {name}{dims} = {{\n    {body}\n}};\n"

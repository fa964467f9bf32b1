"""Figures to PNG: the one place lstm-edge picks matplotlib's backend and turns a figure into bytes.

Every report figure (training curve, quantization error growth, verify drift, bench speed-ups) is written through
here, so the headless backend, the dpi choice and closing the figure (matplotlib keeps every open figure alive until
closed) are decided once.
"""

from __future__ import annotations

import io
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display on servers and CI).

    Imported lazily: matplotlib costs ~0.3 s to import and most commands draw nothing. Raises nothing of its own.
    """
    import matplotlib  # deferred: matplotlib (heavy, ~0.3 s), see above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib, after the backend is chosen

    return plt


def png_bytes(fig: Any, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes at `dpi` dots per inch, then close it.

    Args:
        fig: a matplotlib Figure, already laid out (call `fig.tight_layout()` first if wanted).
        dpi: resolution; report figures use 90, the training curve 100.

    Returns:
        the PNG file's bytes, for lstm_edge.atomic.atomic_write_bytes or a staged bundle file.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return buf.getvalue()

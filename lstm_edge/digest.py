"""A file's sha256, read in chunks: what every integrity check of a bundle's artifacts compares with its manifest.

Its own module so that reading a bundle (which hashes) does not import the write helpers of lstm_edge.atomic
(tempfile, shutil, fcntl: ~3 ms of a cold `lstm-edge run`); atomic re-exports it for its older callers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """The file's sha256 as hex, read in 1 MiB chunks (memory stays flat for any size). Raises OSError unreadable."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""Writes that never leave half a file or half a bundle: a temporary sibling, then os.replace."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lstm_edge.errors import LstmEdgeError


def _writable_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmEdgeError(f"cannot create the folder {parent} ({e.strerror})", "choose a writable location") from e
    if not os.access(parent, os.W_OK):
        raise LstmEdgeError(f"the folder {parent} is not writable", "choose a writable output location")
    return parent


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    parent = _writable_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=parent)
    except OSError as e:
        raise LstmEdgeError(f"the folder {parent} is not writable ({e.strerror})", "choose a writable location") from e
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise LstmEdgeError(f"could not write {path} ({e.strerror})", "free disk space or choose another place") from e
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def _remove_stale_stages(parent: Path, name: str) -> None:
    """Staging folders of writers that died (SIGKILL, power loss) are removed by the next writer.

    Their names carry the writer's pid; a folder whose pid is no longer alive is garbage.
    """
    for stale in parent.glob(f".{name}.tmp-*-*"):
        try:
            pid = int(stale.name[len(f".{name}.tmp-") :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def staged_dir(target: Path, *, copy_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `target` in one rename, on failure it vanishes.

    With copy_existing, the folder starts as a copy of `target` (for adding files to a bundle).
    """
    target = Path(target)
    parent = _writable_parent(target)
    _remove_stale_stages(parent, target.name)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as e:
        raise LstmEdgeError(f"the folder {parent} is not writable ({e.strerror})", "choose a writable --out") from e
    os.chmod(stage, 0o755)
    try:
        if copy_existing and target.exists():
            shutil.copytree(target, stage, dirs_exist_ok=True)
        yield stage
        if not target.exists():
            os.replace(stage, target)
        elif _exchange(stage, target):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the previous contents
        else:
            # No atomic swap here: move the old folder aside, then rename (a window of two renames).
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / "b")
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write in pieces (e.g. a streamed Parquet file); on success it replaces
    `path` in one os.replace, on any failure it vanishes — so a reader never sees half a file."""
    path = Path(path)
    parent = _writable_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=parent)
    except OSError as e:
        raise LstmEdgeError(f"the folder {parent} is not writable ({e.strerror})", "choose a writable location") from e
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

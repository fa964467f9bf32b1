"""Writes that never leave half a file or half a bundle: a temporary sibling, then os.replace."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from lstm_edge.digest import sha256_file as sha256_file  # re-exported: its callers import it from here
from lstm_edge.errors import LstmEdgeError
from lstm_edge.formats import (
    CODEGEN_FORMAT,
    CODEGEN_INFO,
    FORMAT,
    MANIFEST,
    SCORE_FORMAT,
    SCORE_INFO,
    TRITON_FORMAT,
    TRITON_INFO,
)


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
    """Write `data` to `path` through a synced temporary sibling and one os.replace (staged_file): a reader sees the
    old file or the new one, never half. Raises LstmEdgeError (one line) for an unwritable folder or a full disk."""
    path = Path(path)
    try:
        with staged_file(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, e.strerror) from e
        raise LstmEdgeError(f"could not write {path} ({e.strerror})", "free disk space or choose another place") from e
    return path


_STAGE_NAME = re.compile(r"^\.(.+)\.tmp-\d+-[^/]*$")


def disk_full(dest: str | os.PathLike | None, what: str = "No space left on device") -> LstmEdgeError:
    """The one line for a full disk (ENOSPC) or quota (EDQUOT): the destination that was being written, and the
    space left on its filesystem (read from the nearest existing folder above it)."""
    if dest is None:
        return LstmEdgeError(what, "free disk space or write elsewhere; nothing half-written was left")
    # a path inside a staging sibling (.NAME.tmp-PID-XXXX) is shown as the destination it was to become: NAME
    where = Path(*(_STAGE_NAME.sub(r"\1", part) for part in Path(os.fsdecode(dest)).parts))
    probe = where
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = f"{shutil.disk_usage(probe).free / 2**20:.1f} MiB free on its filesystem"
    except OSError:
        free = "free space unknown"
    return LstmEdgeError(
        f"{what} writing {where} ({free})", "free disk space or write elsewhere; nothing half-written was left"
    )


def atomic_write_text(path: Path, text: str) -> Path:
    """`text` (UTF-8) written as atomic_write_bytes writes bytes: a temp sibling, then one os.replace. Returns path.

    Raises LstmEdgeError where the folder is not writable (atomic_write_bytes)."""
    return atomic_write_bytes(path, text.encode())


def _remove_stale_stages(parent: Path, name: str) -> None:
    """Staging folders and files of writers that died (SIGKILL, power loss) are removed by the next writer of the
    same destination.

    Their names carry the writer's pid; one whose pid is no longer alive, owned by this user, is garbage (a
    symlink of that name is never followed, only unlinked).
    """
    for stale in parent.glob(f".{name}.tmp-*-*"):
        try:
            pid = int(stale.name[len(f".{name}.tmp-") :].split("-", 1)[0])
            st = stale.lstat()
        except (ValueError, OSError):
            continue
        if pid == os.getpid() or _alive(pid) or st.st_uid != os.geteuid():
            continue
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# renameat2 flags (linux/fs.h): fail with EEXIST where the new name exists; swap two existing names.
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
# A manifest larger than this is not one we wrote (ours are a few kB; quantize reports add ~20 kB per variant).
_MANIFEST_CAP = 16 << 20


def _renameat2(a: Path, b: Path, flags: int) -> int | None:
    """Linux renameat2(2): 0 on success, the errno on failure, None where the call does not exist."""
    import ctypes  # deferred: ctypes (+ ctypes.util) is for this call alone; a run that only hashes skips ~10 ms
    import ctypes.util  # deferred: as above

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return 0
    err = ctypes.get_errno()
    return None if err in (errno.ENOSYS, errno.EINVAL) else err  # EINVAL: this filesystem lacks the flag


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    return _renameat2(a, b, RENAME_EXCHANGE) == 0


def is_ours(folder: Path) -> bool:
    """True for a folder lstm-edge may replace: empty, or holding a manifest.json with our format tag (a bundle
    from export/quantize, or an embed folder from `lstm-edge bundle`, whose manifest carries the same tag), or
    an lstm-edge.json with the Triton repository's tag, a Ray score output's _lstm-edge.json, or codegen's C
    folder with its lstm-edge-c.json."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    try:
        if not any(folder.iterdir()):
            return True
    except OSError:
        return False
    return (
        _tagged(folder / MANIFEST, FORMAT)
        or _tagged(folder / TRITON_INFO, TRITON_FORMAT)
        or _tagged(folder / SCORE_INFO, SCORE_FORMAT)
        or _tagged(folder / CODEGEN_INFO, CODEGEN_FORMAT)
    )


def _tagged(path: Path, tag: str) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > _MANIFEST_CAP:
            return False
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("format") == tag


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def out_folder(out: str | Path, *, inputs: Sequence[str | Path] = (), force: bool = False) -> Path:
    """The real folder an --out names, checked before any work: the one containment rule of export, quantize and
    bundle. Returns the path with symlinks resolved (a link to a bundle stays a link; the folder it points to is
    the one staged and swapped).

    Raises LstmEdgeError when `out` is the filesystem root, the working folder or one containing it; equals, lies
    inside or contains one of `inputs` (the checkpoint or bundle being read); exists and is not a folder; exists
    without `force`; or exists and is not ours to replace (see is_ours): --force never deletes a user's folder.
    """
    raw = Path(out)
    target = raw.resolve()
    if target.parent == target:
        raise LstmEdgeError(f"--out {out} is the filesystem root", "choose a new folder for --out")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise LstmEdgeError(
            f"--out {out} is the working folder{'' if target == cwd else ' or contains it'}",
            "choose a new folder for --out, e.g. --out models/NAME",
        )
    for src in inputs:
        if _overlaps(target, Path(src).resolve()):
            raise LstmEdgeError(
                f"--out {out} overlaps the input {src} (the same path, inside it, or containing it)",
                "write to a separate folder",
            )
    if raw.is_symlink() or target.exists():
        if target.exists() and not target.is_dir():
            raise LstmEdgeError(f"--out {out} exists and is not a folder", "choose another --out")
        if not force and target.exists():
            raise LstmEdgeError(f"{out} already exists", "pass --force to replace it, or choose another --out")
        if target.exists() and not is_ours(target):
            raise LstmEdgeError(
                f"{out} is not a folder lstm-edge wrote (a bundle, embed, C or score folder); --force replaces only those",
                "choose a new folder for --out",
            )
    return target


@contextlib.contextmanager
def _locked(parent: Path, name: str) -> Iterator[None]:
    """An exclusive flock on `.NAME.lock` beside the folder (not inside it: the folder itself is swapped), held
    for a writer's read-modify-swap so two writers of one bundle take turns instead of losing an update.

    The holder removes the file on release, so none is left behind. A waiter that then gets the lock holds an
    unlinked file: it sees the path no longer names its file and locks afresh (the usual lock-file protocol)."""
    path = parent / f".{name}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LstmEdgeError(
                f"the folder {parent} is not writable (lock file {path.name}: {e.strerror})", "choose a writable --out"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the previous holder removed this file: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding the lock
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def staged_dir(target: Path, *, copy_existing: bool = False, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `target` in one rename, on failure it vanishes.

    `target` is resolved first: where it is a symlink, the folder it points to is replaced and the link stays.
    The whole stage-and-swap holds a lock beside the target, so concurrent writers take turns; with
    copy_existing the folder starts as a copy of `target` as it is under that lock (for adding files to a
    bundle: re-read its manifest from the stage, not from before). Raises LstmEdgeError where `target` exists
    and `replace` is False (another writer made it meanwhile: the rename never replaces), or where it exists
    and is not ours (is_ours): a user's folder is never swapped away.
    """
    target = Path(target).resolve()
    parent = _writable_parent(target)
    with _locked(parent, target.name):
        _remove_stale_stages(parent, target.name)
        if target.exists() and not replace:
            raise LstmEdgeError(
                f"{target} already exists (another process wrote it meanwhile?)", "choose another --out or --force"
            )
        if target.exists() and not is_ours(target):
            raise LstmEdgeError(
                f"{target} is not a folder lstm-edge wrote (a bundle, embed, C or score folder)", "choose a new folder"
            )
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
        except OSError as e:
            raise LstmEdgeError(f"the folder {parent} is not writable ({e.strerror})", "choose a writable --out") from e
        os.chmod(stage, 0o755)
        try:
            if copy_existing and target.exists():
                shutil.copytree(target, stage, dirs_exist_ok=True)
            yield stage
            _swap_in(stage, target, replace)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def _swap_in(stage: Path, target: Path, replace: bool) -> None:
    if not target.exists() or not replace:
        err = _renameat2(stage, target, RENAME_NOREPLACE)
        if err is None:  # no renameat2: rename(2) of a folder fails onto a non-empty folder
            try:
                os.rename(stage, target)
                err = 0
            except OSError as e:
                err = e.errno
        if err in (errno.EEXIST, errno.ENOTEMPTY):
            raise LstmEdgeError(
                f"{target} appeared while writing it (another process wrote it meanwhile)",
                "nothing was replaced; choose another --out, or --force to replace it",
            )
        if err:
            raise LstmEdgeError(f"could not rename into {target} ({os.strerror(err)})", "choose a writable --out")
    elif _exchange(stage, target):
        shutil.rmtree(stage, ignore_errors=True)  # now holds the previous contents
    else:
        # No atomic swap here: move the old folder aside, then rename (a window of two renames).
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        try:
            os.replace(target, old / "b")
            os.replace(stage, target)
        finally:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write in pieces (e.g. a streamed Parquet file); on success it replaces
    `path` in one os.replace, on any failure it vanishes — so a reader never sees half a file. Its name,
    .NAME.tmp-PID-XXXX, lets the next writer of `path` remove it where this process was killed (SIGKILL).

    Raises LstmEdgeError where the folder cannot be written; the block's own exceptions pass through."""
    path = Path(path)
    parent = _writable_parent(path)
    _remove_stale_stages(parent, path.name)  # what a killed writer of this path left
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=parent)
    except OSError as e:
        raise LstmEdgeError(f"the folder {parent} is not writable ({e.strerror})", "choose a writable location") from e
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

"""Python child processes that never run code from the user's working folder.

`python -c` and `python -m` put the working folder first on sys.path, so a stray `json.py` there would be imported
by the child. Every child lstm-edge starts goes through here: `python -I` (no working folder or script folder on
sys.path, no PYTHON* variables, no user site-packages) with a fresh empty temporary folder as its working folder.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from lstm_edge.errors import LstmEdgeError, first_line


def python_argv(*args: str) -> list[str]:
    """The argv of an isolated interpreter: [sys.executable, "-I", *args]."""
    return [sys.executable, "-I", *args]


def run_python(code: str, args: Sequence[str] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` in an isolated child (`python -I -c code *args`) whose working folder is an empty temporary
    folder; returns the CompletedProcess (stdout and stderr as text). Paths in `args` must be absolute.

    Raises LstmEdgeError where the child outlives `timeout` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="lstm-edge-child-") as cwd:
        try:
            return subprocess.run(
                python_argv("-c", code, *args), cwd=cwd, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise LstmEdgeError(
                f"a child process ran over {timeout:.0f} s", "check the machine's load and run it again"
            ) from e


def failure(proc: subprocess.CompletedProcess) -> str | None:
    """None for a child that succeeded; otherwise one line saying how it failed: the signal that killed it (a
    native crash: SIGSEGV, SIGABRT, …), or its exit status and the last line it wrote to stderr."""
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"crashed ({name})"
    lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
    return f"exit status {proc.returncode}: {first_line(lines[-1]) if lines else 'no message'}"

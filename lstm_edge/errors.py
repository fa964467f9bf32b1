"""The one exception type a user sees: what went wrong and how to fix it."""

from __future__ import annotations


def first_line(e: BaseException | str, limit: int = 300) -> str:
    """The first line of an exception's message, at most `limit` characters: runtimes raise multi-line C++ traces,
    and a user gets one line (the whole chain stays on the exception for --debug)."""
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__ if isinstance(e, BaseException) else ""])[0][:limit]


class LstmEdgeError(Exception):
    """A problem with the user's input or environment. The CLI prints it on one line and exits 2."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class ParityError(LstmEdgeError):
    """A numerical check failed (export validation, verify, quantize budget). The CLI exits 1."""

    def __init__(self, problem: str, fix: str = "", report: str = "") -> None:
        super().__init__(problem, fix)
        self.report = report


class IntegrityError(ParityError):
    """An artifact no longer matches what its manifest records (sha256 or size): a failed check, not bad input, so
    the CLI exits 1 as the README's exit codes say (it exited 2 in every command but verify)."""

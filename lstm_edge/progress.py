"""Progress for people, on stderr, with one off switch: tqdm bars and one-line stage notes (on a terminal).

Both are off when the caller says so (`enabled=False`: the CLI's `-q/--quiet`, `--json -`, an API caller's
`progress=False`) or when the environment sets TQDM_DISABLE to anything but "", "0" or "false" — tqdm's own switch,
which a bar built with an explicit `disable=False` would override, so no bar here passes one.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def disabled_by_env() -> bool:
    """True when TQDM_DISABLE asks for no progress (any value but "", "0", "false", case-insensitive)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def progress_bar(*args, enabled: bool = True, **kwargs) -> Any:
    """A tqdm.auto bar (same arguments; returns the tqdm), off when `enabled` is False or TQDM_DISABLE is set.

    tqdm reads TQDM_DISABLE only for arguments the call does not pass, so `disable` is passed only to turn it off."""
    from tqdm.auto import tqdm  # deferred: a command that shows no bar (run, a refusal) never imports it

    if not enabled or disabled_by_env():
        kwargs["disable"] = True
    return tqdm(*args, **kwargs)


def stage(message: str, enabled: bool = True) -> None:
    """One line on stderr saying what a step over ~2 s is doing now (`… message`), unless progress is off — and,
    as git reports progress, only where stderr is a terminal: a log or a pipe gets the result and errors alone, so
    an error stays the one line on stderr that scripts read."""
    if enabled and not disabled_by_env() and getattr(sys.stderr, "isatty", lambda: False)():
        sys.stderr.write(f"… {message}\n")
        sys.stderr.flush()

"""What every command shares: errors mapped to one line and an exit code, comma lists, the provider/variant check.

Exit codes: 0 success, 1 a parity or budget failure (ParityError), 2 bad input (LstmEdgeError and the OS-level
errors no boundary check caught), 130 interrupted.
"""

from __future__ import annotations

import errno
import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from lstm_edge.errors import LstmEdgeError, ParityError, first_line


def last_resort(e: BaseException) -> LstmEdgeError:
    """Errors no boundary check caught, as one line: the boundary checks estimate sizes before allocating, so these
    are what remains (a full disk, a file vanishing mid-read, memory another process took)."""
    if isinstance(e, MemoryError):
        return LstmEdgeError("out of memory", "use smaller inputs (fewer sequences or steps) or free memory")
    if isinstance(e, RecursionError):
        return LstmEdgeError("an input is nested too deeply to process", "flatten the input")
    where = next((str(f) for f in (e.filename, e.filename2) if f), "")
    what = e.strerror or first_line(e, 160) or type(e).__name__
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    return LstmEdgeError(
        f"{what}{f': {where}' if where else ''}",
        "free disk space or write elsewhere; nothing half-written was left" if full else "check the path and try again",
    )


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One line and exit 2 for user errors, exit 1 for parity failures; --debug adds the traceback and keeps the
    exit code. MemoryError, RecursionError and OSError that reach here are mapped to one line, exit 2, too.

    The wrapped command raises nothing: every error above ends in sys.exit (SystemExit) with its code; Ctrl-C
    exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except ParityError as e:
            if debug:
                traceback.print_exc()
            if e.report:
                click.echo(e.report, err=True)
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except (LstmEdgeError, MemoryError, RecursionError, OSError) as e:
            if debug:
                traceback.print_exc()
            err = e if isinstance(e, LstmEdgeError) else last_resort(e)
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was left behind", err=True)
            sys.exit(130)

    return wrapper


def check_provider_variant(provider: str, variant: str) -> None:
    """One clear line for an unknown --provider or --variant, before anything opens.

    Raises:
        LstmEdgeError: a provider that is not a key of lstm_edge.runtimes.RUNTIMES, or an unknown variant.
    """
    # numpy, which both import, deferred: `lstm-edge --help` stays fast
    from lstm_edge.bundle import variant as bundle_variant
    from lstm_edge.runtimes import RUNTIMES  # numpy, as above

    if provider not in RUNTIMES:
        raise LstmEdgeError(f"unknown provider {provider!r}", f"choose one of {', '.join(RUNTIMES)}")
    bundle_variant(variant)


# --no-self-check, on every command that opens a runner to answer (run, score, bench): runtimes.self_check.
no_self_check_option = click.option(
    "--no-self-check",
    is_flag=True,
    help="Answer without first reproducing the bundle's golden cases on this runtime (recorded as self_check: skipped).",
)
UNCHECKED = (
    "warning: self-check skipped (--no-self-check): these answers were not checked against the bundle's golden cases "
    "on this runtime"
)


def say_unchecked(status: str | None) -> None:
    """One line on stderr where the self-check was turned off (status "skipped"), so no answer looks checked."""
    if status == "skipped":
        click.echo(UNCHECKED, err=True)


def csv_option(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple of its non-empty, stripped items; None when not given or empty."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None

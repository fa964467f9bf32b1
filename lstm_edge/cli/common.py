"""What every command shares: errors mapped to one line and an exit code, comma lists, the provider/variant check.

Exit codes: 0 success (a quantized variant over its budget is a finding, not a failure), 1 a parity failure
(ParityError; quantize --strict: a variant over budget), 2 bad input (LstmEdgeError and the OS-level errors no boundary
check caught), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import click

from lstm_edge.atomic import disk_full
from lstm_edge.errors import LstmEdgeError, ParityError, first_line
from lstm_edge.extras import missing_extra


def last_resort(e: BaseException) -> LstmEdgeError:
    """Errors no boundary check caught, as one line: the boundary checks estimate sizes before allocating, so these
    are what remains (a full disk, a file vanishing mid-read, memory another process took)."""
    if isinstance(e, MemoryError):
        return LstmEdgeError("out of memory", "use smaller inputs (fewer sequences or steps) or free memory")
    if isinstance(e, RecursionError):
        return LstmEdgeError("an input is nested too deeply to process", "flatten the input")
    what = e.strerror or first_line(e, 160) or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        # shutil's copies set filename to the source and filename2 to the destination: the full disk is the latter's
        return disk_full(e.filename2 or e.filename, what)
    where = next((str(f) for f in (e.filename, e.filename2) if f), "")
    return LstmEdgeError(f"{what}{f': {where}' if where else ''}", "check the path and try again")


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One line and exit 2 for user errors, exit 1 for parity failures; --debug adds the traceback and keeps the
    exit code. MemoryError, RecursionError and OSError that reach here are mapped to one line, exit 2, too, and so
    is a missing optional package (the extra that installs it: lstm_edge.extras).

    The wrapped command raises nothing: every error above ends in sys.exit (SystemExit) with its code; Ctrl-C
    exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            with terminate_as_interrupt():
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
        except ImportError as e:  # an optional package this command needs: name its extra (lstm_edge.extras)
            err = missing_extra(e)
            if err is None:
                raise
            if debug:
                traceback.print_exc()
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            click.echo("interrupted; nothing half-written was left behind", err=True)
            sys.exit(128 + signal.SIGTERM if isinstance(e, Terminated) else 130)

    return wrapper


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a job scheduler's timeout) raised as an interrupt, so staged writes clean up as on Ctrl-C."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated instead of ending the process at once (which would leave
    staged temp files behind); the previous handler is restored after. A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def csv_option(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple of its non-empty, stripped items; None when not given or empty."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None

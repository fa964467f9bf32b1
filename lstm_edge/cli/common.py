"""What every command shares: errors mapped to one line and an exit code, `-q/--quiet` and `--json PATH` (one
definition each), comma lists, the provider/variant check.

Exit codes: 0 success (a quantized variant over its budget is a finding, not a failure), 1 a parity failure
(ParityError; quantize --strict: a variant over budget), 2 bad input (LstmEdgeError and the OS-level errors no boundary
check caught), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

Quiet: `-q`, or `--json -` (the JSON alone on stdout), runs the command with stdout and stderr sent to os.devnull
and TQDM_DISABLE=1 (for child processes too); errors are printed after, one line as always. The JSON goes to the
real stdout, kept in the context.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from lstm_edge.atomic import atomic_write_text, disk_full
from lstm_edge.errors import LstmEdgeError, ParityError, first_line
from lstm_edge.extras import missing_extra
from lstm_edge.progress import disabled_by_env

QUIET = "lstm_edge.quiet"  # ctx.meta key: -q given
STDOUT = "lstm_edge.stdout"  # ctx.meta key: the stdout `--json -` writes to while a quiet command runs


def set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """-q's callback: remember it for handle_errors and progress_on (the command never sees it)."""
    if value:
        ctx.meta[QUIET] = True


quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    expose_value=False,
    callback=set_quiet,
    help="Print nothing but errors (one line each): no progress, no tables, no notes. The exit code still tells.",
)

json_option = click.option(
    "--json",
    "json_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True),
    is_flag=False,
    flag_value="-",
    help="Write the result as JSON to PATH (written whole or not at all). PATH '-' (or --json alone, as before) "
    "prints the JSON alone on stdout and nothing else but errors.",
)


def is_quiet(ctx: click.Context | None = None) -> bool:
    """True under -q or `--json -`: the command's own output and progress are off."""
    ctx = ctx or click.get_current_context()
    return bool(ctx.meta.get(QUIET)) or ctx.params.get("json_path") == "-"


def progress_on() -> bool:
    """Whether a command shows progress: not under -q or `--json -`, and TQDM_DISABLE not set."""
    return not is_quiet() and not disabled_by_env()


def write_json(path: str | None, doc: Any, indent: int | None = None) -> None:
    """`doc` as JSON to the --json PATH: '-' prints it on stdout (the real one, under -q too); a file is written
    atomically with a trailing newline. Nothing when `path` is None.

    Raises:
        OSError: the file cannot be written (handle_errors: one line, exit 2; nothing half-written).
    """
    if path is None:
        return
    text = json.dumps(doc, indent=indent)
    if path == "-":
        out: TextIO = click.get_current_context().meta.get(STDOUT) or sys.stdout
        click.echo(text, file=out)
    else:
        atomic_write_text(Path(path), text + "\n")


@contextlib.contextmanager
def quieted(quiet: bool) -> Iterator[None]:
    """While a quiet command runs: stdout and stderr to os.devnull, TQDM_DISABLE=1; both restored after."""
    if not quiet:
        yield
        return
    ctx = click.get_current_context()
    ctx.meta[STDOUT] = sys.stdout
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with (
            open(os.devnull, "w", encoding="utf-8") as null,
            contextlib.redirect_stdout(null),
            contextlib.redirect_stderr(null),
        ):
            yield
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved


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
    is a missing optional package (the extra that installs it: lstm_edge.extras). Under -q or `--json -` the
    command runs `quieted`; its errors are printed after, as always.

    The wrapped command raises nothing: every error above ends in sys.exit (SystemExit) with its code; Ctrl-C
    exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            with terminate_as_interrupt(), quieted(is_quiet(ctx)):
                return fn(*args, **kwargs)
        except ParityError as e:
            if debug:
                traceback.print_exc()
            if e.report and not is_quiet(ctx):
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


def usage_error(e: click.UsageError) -> LstmEdgeError:
    """click's usage error (a missing argument, an unknown option or command, a bad value) as the CLI's one line:
    the problem, then the fix naming the command's --help — instead of click's three lines of usage and hint."""
    message = e.format_message().strip()
    problem, _, hint = message.partition(". ")  # "No such option '--x'. Did you mean '--out'?"
    problem = problem.rstrip(".")
    problem = problem[:1].lower() + problem[1:]
    where = f"`{e.ctx.command_path} --help`" if e.ctx is not None else "`lstm-edge --help`"
    hint = hint.strip().strip("()")  # "(Did you mean one of: '--json', '--out'?)"
    fix = f"{hint[:1].lower()}{hint[1:]} ({where} lists them all)" if hint else f"see {where}"
    return LstmEdgeError(" ".join(problem.split()), fix)


@contextlib.contextmanager
def one_line_usage() -> Iterator[None]:
    """Around click's parsing (LazyGroup): a usage error is printed as one line, "error: problem — fix", exit 2.
    A group called with no arguments still shows its help (click's NoArgsIsHelpError)."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as e:
        click.echo(f"error: {usage_error(e)}", err=True)
        sys.exit(2)


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


def check_lists(bundle: str, providers: tuple[str, ...] | None, variants: tuple[str, ...] | None) -> None:
    """--providers and --variants (verify, bench) refused at once, before torch is imported: each provider must be
    a key of lstm_edge.runtimes.RUNTIMES, each variant one the bundle has (its manifest is all that is read).

    Raises:
        LstmEdgeError: an unknown provider, a variant the bundle lacks, or a bundle Bundle.open refuses.
    """
    # numpy, which bundle imports, deferred: `lstm-edge --help` stays fast
    from lstm_edge.bundle import Bundle

    for p in providers or ():
        check_provider_variant(p, "fp32")
    if variants:
        opened = Bundle.open(bundle)
        for v in variants:
            opened.entry(v)  # the library's own line: "the bundle has no 'int4' variant (it has: …)"


def choices(table) -> str:
    """A table's keys as option help reads them ("torch | cpu | … | c"): RUNTIMES for --provider, VARIANTS for
    --variant, so the help lists what the code accepts."""
    return " | ".join(table)


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

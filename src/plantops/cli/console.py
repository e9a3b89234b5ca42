"""The CLI's consoles and its one way of turning library errors into exits.

Command modules import from here, never from ``cli.main``: ``main`` imports the command
modules to register them, so importing it back from them would make a cycle.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from plantops.errors import EXIT_INFRA, EXIT_USAGE, PlantopsError, UserError

P = ParamSpec("P")
_PATH_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EEXIST}
)
R = TypeVar("R")

# Piped output (CI logs, `make run`) gets a wide table instead of Rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def configure_consoles() -> None:
    """Set both consoles up again for the current standard streams and environment, as at
    import (Rich decides colours and width when a console is made). The plan server calls
    this for each request, once the caller's terminal or pipe is on fds 0-2 and the
    caller's environment is applied; the objects stay the same, so every module's
    ``from plantops.cli.console import out`` still prints through them."""
    Console.__init__(out, highlight=False, width=None if sys.stdout.isatty() else 160)
    Console.__init__(err, stderr=True, highlight=False, soft_wrap=True)


def fail(exc: PlantopsError) -> typer.Exit:
    """Print a plantops error for a human and return the matching exit."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, emoji=False)
    return typer.Exit(exc.exit_code)


def _os_reason(exc: OSError) -> str:
    """``PATH: file name too long`` rather than ``[Errno 36] …``: the path first, then why."""
    if exc.strerror is None:
        return str(exc)
    reason = exc.strerror[:1].lower() + exc.strerror[1:]
    if exc.filename is None:
        return reason
    where = os.fsdecode(exc.filename)
    if len(where) > 80:
        where = where[:60] + "…" + where[-16:]
    hint = "; choose a shorter name" if exc.errno == errno.ENAMETOOLONG else ""
    return f"{where}: {reason}{hint}"


def run_guarded(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call library code, turning plantops errors into clean exits (never a traceback)."""
    try:
        return fn(*args, **kwargs)
    except PlantopsError as exc:
        raise fail(exc) from exc
    except OSError as exc:
        err.print(f"[bold red]error:[/] {escape(_os_reason(exc))}", markup=True, emoji=False)
        # A path the user named that cannot be one (too long, a loop of links, a file where
        # a folder should be) is bad input; a full disk or a refused permission is not.
        bad_input = exc.errno in _PATH_ERRNOS
        raise typer.Exit(EXIT_USAGE if bad_input else EXIT_INFRA) from exc


def parse_today(value: str | None) -> dt.date:
    """``--today YYYY-MM-DD`` (for expiry and window checks), or the real date: a date that
    does not exist (2027-02-30) is a usage error naming the option, never a traceback."""
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(UserError(f"--today {value!r}: expected a real date, YYYY-MM-DD")) from None

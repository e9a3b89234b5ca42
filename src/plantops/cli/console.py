"""The CLI's consoles and its one way of turning library errors into exits.

Command modules import from here, never from ``cli.main``: ``main`` imports the command
modules to register them, so importing it back from them would make a cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from plantops.errors import EXIT_INFRA, PlantopsError

P = ParamSpec("P")
R = TypeVar("R")

# Piped output (CI logs, `make run`) gets a wide table instead of Rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(exc: PlantopsError) -> typer.Exit:
    """Print a plantops error for a human and return the matching exit."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, emoji=False)
    return typer.Exit(exc.exit_code)


def run_guarded(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call library code, turning plantops errors into clean exits (never a traceback)."""
    try:
        return fn(*args, **kwargs)
    except PlantopsError as exc:
        raise fail(exc) from exc
    except OSError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, emoji=False)
        raise typer.Exit(EXIT_INFRA) from exc

"""plantops command line entry point.

Commands return data from the library and this module prints it; exceptions from
the library are mapped to exit codes here and nowhere else.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from plantops.errors import EXIT_INFRA, EXIT_USAGE, PlantopsError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="plantops",
    help="Control plane for a manufacturing group's Odoo plants.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


# --- command registration (one line per module) ---------------------------------
from plantops.cli import fleet as _fleet  # noqa: E402

_fleet.register(app)
from plantops.cli import backup as _backup  # noqa: E402

_backup.register(app)
from plantops.cli import manifests as _manifests  # noqa: E402

_manifests.register(app)
from plantops.cli import addons as _addons  # noqa: E402

_addons.register(app)
from plantops.cli import vulns as _vulns  # noqa: E402

_vulns.register(app)
from plantops.cli import release as _release  # noqa: E402

_release.register(app)
from plantops.cli import observe as _observe  # noqa: E402

_observe.register(app)
from plantops.cli import policy as _policy  # noqa: E402

_policy.register(app)


# A CLI run builds many long-lived objects (the loaded fleet, the plan) and few cycles;
# collecting every 700 allocations walked that heap over and over, ~15 % of a
# one-plant re-plan of 1,000 plants (BENCHMARKS.md). Set for the console script only.
GC_THRESHOLD = (50_000, 20, 20)


def main() -> None:
    """Console-script entry point."""
    gc.freeze()  # modules and classes imported so far live as long as the process
    gc.set_threshold(*GC_THRESHOLD)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_USAGE)

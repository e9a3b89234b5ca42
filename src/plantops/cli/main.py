"""plantops command line entry point.

Commands return data from the library and this module prints it; exceptions from
the library are mapped to exit codes here and nowhere else.
"""

from __future__ import annotations

import gc
import sys
from typing import ParamSpec, TypeVar

import typer
import typer.core
from typer._click.core import Context, Parameter  # Typer vendors click since 0.26

from plantops.errors import EXIT_USAGE

P = ParamSpec("P")
R = TypeVar("R")


def _tidy_params(params: list[Parameter]) -> None:
    """Give every parameter a metavar a person reads (``--plant PLANT``, ``--jobs JOBS``)
    instead of Typer's Python types (``<list[str]>``, ``<int range>``, ``--help <bool>``);
    choices keep their ``<text|json>``. An explicit ``metavar=`` always wins."""
    for param in params:
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif getattr(getattr(param, "type_descriptor", None), "is_choice", False):
            continue
        elif isinstance(param, typer.core.TyperArgument):
            # the name column already shows it (`fleet`, `paths...`): no type column
            param.__class__ = _Argument
        else:
            param.metavar = (param.name or "value").upper()


class _Argument(typer.core.TyperArgument):
    def display_type_rich(self, ctx: Context) -> str | None:
        return None


class _Command(typer.core.TyperCommand):
    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        _tidy_params(params)
        return params


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        _tidy_params(params)
        return params


def _default(cls: object, typer_default: type) -> bool:
    """``cls`` is unset: None, Typer's class, or Typer's placeholder for it."""
    value = getattr(cls, "value", cls)
    return value is None or value is typer_default


def _use_tidy_help(typer_app: typer.Typer) -> None:
    """Every command and group of ``typer_app`` (recursively) prints tidy help."""
    if _default(typer_app.info.cls, typer.core.TyperGroup):
        typer_app.info.cls = _Group
    for command in typer_app.registered_commands:
        if _default(command.cls, typer.core.TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        if _default(group.cls, typer.core.TyperGroup):
            group.cls = _Group
        if group.typer_instance is not None:
            _use_tidy_help(group.typer_instance)


app = typer.Typer(
    name="plantops",
    help="Control plane for a manufacturing group's Odoo plants.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

# --- command registration (one line per module) ---------------------------------
from plantops.cli import fleet as _fleet  # noqa: E402
from plantops.cli.console import err, fail, out, run_guarded  # noqa: E402,F401  (re-exported)

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
from plantops.cli import promote as _promote  # noqa: E402

_promote.register(app)
from plantops.cli import ledger as _ledger  # noqa: E402

_ledger.register(app)
from plantops.cli import rollback as _rollback  # noqa: E402

_rollback.register(app)
from plantops.cli import ci as _ci  # noqa: E402

_ci.register(app)
from plantops.cli import server as _server  # noqa: E402

_server.register(app)
_use_tidy_help(app)


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

"""plantops command line entry point.

Commands return data from the library and this module prints it; exceptions from
the library are mapped to exit codes here and nowhere else.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import ParamSpec, TypeVar

import typer
import typer.core
from typer._click.core import Context, Parameter  # Typer vendors click since 0.26

from plantops.cli.console import err, fail, out, run_guarded  # noqa: F401  (re-exported)
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


COMMAND_MODULES = (
    "fleet",
    "backup",
    "manifests",
    "addons",
    "vulns",
    "release",
    "observe",
    "policy",
    "promote",
    "ledger",
    "rollback",
    "ci",
    "server",
    "daemon",
)
"""Command modules under plantops.cli, in registration order: each has ``register(app)``.
A new command module is added here (and to the CLI contract in pyproject.toml)."""

LEAN_COMMANDS = {
    name: "fleet" for name in ("validate", "schema", "init", "classify", "plan", "cost")
}
"""Commands the console script runs with only their own module imported: a one-plant
re-plan must not pay for importing the backup, observe, addons and policy commands (and
what they import). Every other command, ``--help`` and typos get the whole app.
``tests/cli/test_lean_entry.py`` holds this table to the modules' own commands."""


def build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """The Typer app with the commands of ``modules`` registered, tidy help on all."""
    built = typer.Typer(
        name="plantops",
        help="Control plane for a manufacturing group's Odoo plants.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="markdown",
        pretty_exceptions_enable=False,
    )
    for name in modules:
        importlib.import_module(f"plantops.cli.{name}").register(built)
    _use_tidy_help(built)
    return built


def __getattr__(name: str) -> typer.Typer:
    """``app``: every command (built on first use, so the console script can run a lean
    app instead)."""
    if name == "app":
        full = globals()["app"] = build_app()
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A CLI run builds many long-lived objects (the loaded fleet, the plan) and few cycles;
# collecting every 700 allocations walked that heap over and over, ~15 % of a
# one-plant re-plan of 1,000 plants (BENCHMARKS.md). Set for the console script only.
GC_THRESHOLD = (50_000, 20, 20)


def run(argv: list[str], prog_name: str | None = None) -> None:
    """Run ``plantops ARGV`` in this process; ends with ``SystemExit`` like a command
    line does. The plan server calls this once per request (without ``main``'s
    process-wide garbage-collector settings, which it manages itself)."""
    command = argv[0] if argv else ""
    lean = LEAN_COMMANDS.get(command)
    try:
        build_app((lean,) if lean else COMMAND_MODULES)(args=argv, prog_name=prog_name)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_USAGE)


def main() -> None:
    """Console-script entry point (after :mod:`plantops.cli.entry` found no plan server)."""
    gc.freeze()  # modules and classes imported so far live as long as the process
    gc.set_threshold(*GC_THRESHOLD)
    run(sys.argv[1:])

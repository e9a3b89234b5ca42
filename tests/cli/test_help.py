"""Every command's ``--help`` reads as plain help: no Python types (``<list[str]>``,
``<int range>``, ``--help <bool>``), no raw reST markup, and every option says what it
does. Read-only over the whole app, the backup commands included."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from plantops.cli.main import app

LEAKS = ("<list[", "<int", "<bool>", "<float", "<str>", "``", "<path>", "<datetime")


def _commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = [()]

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(root, ())
    return found


def _command(path: tuple[str, ...]) -> object:
    cmd: object = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


COMMANDS = _commands()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "plantops" for p in COMMANDS])
def test_help_has_no_python_types_nor_raw_markup(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    for leak in LEAKS:
        assert leak not in result.output, f"{leak!r} in `{' '.join(path)} --help`"


def _options(path: tuple[str, ...]) -> list[tuple[tuple[str, ...], object]]:
    cmd = _command(path)
    return [
        ((*path, p.opts[0]), p)  # type: ignore[attr-defined]
        for p in getattr(cmd, "params", [])
        if p.param_type_name == "option" and not p.hidden  # type: ignore[attr-defined]
    ]


OPTIONS = [opt for path in COMMANDS for opt in _options(path)]


@pytest.mark.parametrize("key", [k for k, _ in OPTIONS], ids=[" ".join(k) for k, _ in OPTIONS])
def test_every_option_has_a_help_text(key: tuple[str, ...]) -> None:
    param = dict(OPTIONS)[key]
    assert (getattr(param, "help", None) or "").strip(), f"{' '.join(key)} has no help"


def test_help_shows_readable_metavars() -> None:
    result = CliRunner().invoke(app, ["plan", "--help"], terminal_width=200)
    assert "--plant" in result.output and "CODE" in result.output
    assert "--out" in result.output and "DIR" in result.output

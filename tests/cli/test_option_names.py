"""One name per meaning across the whole CLI: ``--format``/``-f`` chooses what a command
prints (text, json, csv, sarif…), ``--output``/``-o`` names a file it writes. Old
spellings stay accepted but hidden (``backup … --output json``, ``backup run --format
dump``; tests/backup/test_backup_cli.py)."""

from __future__ import annotations

import enum
import typing

import typer.main

from plantops.cli.main import app

OUTPUT_FORMATS = {"text", "json"}


def _options() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        for p in getattr(cmd, "params", []):
            if p.param_type_name == "option":
                found.append((" ".join(path), p))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _choices(param: object) -> set[str]:
    annotation = param.type_descriptor.annotation  # type: ignore[attr-defined]
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return {str(m.value) for m in arg}
    return set()


def test_every_output_format_option_is_named_format() -> None:
    seen = []
    for command, p in _options():
        if p.hidden:  # type: ignore[attr-defined]
            continue
        choices = _choices(p)
        if OUTPUT_FORMATS & choices or "json" in choices:
            seen.append(command)
            assert p.opts[0] == "--format", (command, p.opts)  # type: ignore[attr-defined]
    assert {"classify", "plan", "backup list", "backup run", "backup verify"} <= set(seen)


def test_visible_output_options_name_files() -> None:
    for command, p in _options():
        names = [*p.opts, *p.secondary_opts]  # type: ignore[attr-defined]
        if "--output" in names and not p.hidden:  # type: ignore[attr-defined]
            assert not _choices(p), f"{command} --output is a format, not a file"
            assert "file" in (p.help or "").lower(), (command, p.help)  # type: ignore[attr-defined]

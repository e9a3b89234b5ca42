"""Every `plantops …` command a DR runbook prints is accepted by the CLI exactly as
printed: parsed by the real Typer app (options, types, --target-time), and `backup pitr
restore` run up to the point where it needs the VM's pgBackRest config."""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.render.recovery import render_runbook
from plantops.services.backup import recovery_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
WHEN = dt.datetime(2025, 3, 1, 14, 5, tzinfo=dt.UTC)
CASES = [
    (plant, when)
    for plant in ("leipzig-vm", "lyon-meddev", "brno-components", "porto-plastics")
    for when in (None, WHEN)
]


def plantops_commands(runbook: str) -> list[list[str]]:
    """``plantops …`` command lines: inline code spans and lines of fenced blocks."""
    spans = re.findall(r"`(plantops [^`]+)`", runbook)
    fenced = [ln for ln in runbook.splitlines() if ln.startswith("plantops ")]
    return [shlex.split(c)[1:] for c in spans + fenced]


def parse(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """Resolve the subcommand chain and parse its options as click does before running
    it (unknown options, missing required ones and --target-time callbacks raise)."""
    cmd: Any = typer.main.get_command(app)  # Typer's own (vendored) click objects
    ctx = cmd.make_context("plantops", list(args))
    while hasattr(cmd, "resolve_command"):
        # A group's parse leaves the subcommand and its arguments on the context.
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, name
        cmd, ctx = sub, sub.make_context(name or "", rest, parent=ctx)
    return cmd, ctx.params


@pytest.mark.parametrize(("plant", "when"), CASES, ids=lambda v: str(v))
def test_every_printed_plantops_command_parses(plant: str, when: dt.datetime | None) -> None:
    commands = plantops_commands(render_runbook(recovery_plan(EXAMPLE, plant, "prod", when)))
    assert any(c[:2] == ["backup", "list"] for c in commands)
    for args in commands:
        parse(args)  # raises click.UsageError / BadParameter if the CLI rejects it


@pytest.mark.parametrize("when", [None, WHEN], ids=["latest", "time"])
def test_vm_pitr_command_runs_as_printed_until_it_needs_the_config(
    when: dt.datetime | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runbook = render_runbook(recovery_plan(EXAMPLE, "leipzig-vm", "prod", when))
    (pitr,) = [c for c in plantops_commands(runbook) if c[:3] == ["backup", "pitr", "restore"]]
    _cmd, params = parse(pitr)
    assert (params["target_time"] is None) == (when is None) == params["latest"]
    monkeypatch.chdir(tmp_path)  # no pgbackrest.conf here: the first check that needs the VM
    result = CliRunner().invoke(app, pitr)
    assert result.exit_code == 2
    assert "pgBackRest config pgbackrest.conf does not exist" in result.output, result.output


def test_pitr_restore_takes_a_time_or_latest_never_both_or_neither(tmp_path: Path) -> None:
    base = ["backup", "pitr", "restore", "--config", "x.conf", "--to", str(tmp_path / "d")]
    for extra in ([], ["--latest", "--target-time", "2025-03-01T14:05:00+00:00"]):
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and "one of them" in result.output, result.output
    result = CliRunner().invoke(app, [*base, "--latest", "--pause"])
    assert result.exit_code == 2 and "--pause needs --target-time" in result.output
    # What the runbook printed before: a sentence where the time goes.
    with pytest.raises(typer.BadParameter, match="not ISO 8601"):
        parse([*base, "--target-time", "latest (end of the archived WAL)"])
    with pytest.raises(typer.BadParameter, match="time zone"):
        parse([*base, "--target-time", "2025-03-01T14:05"])

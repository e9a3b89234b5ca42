"""The console script runs the fleet commands with only their own module imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from plantops.cli.main import COMMAND_MODULES, LEAN_COMMANDS, app, build_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"


def _names(typer_app: object) -> set[str]:
    group = get_command(typer_app)  # type: ignore[arg-type]
    return set(group.commands)  # type: ignore[attr-defined]


def test_lean_table_is_exactly_each_modules_commands() -> None:
    for module in set(LEAN_COMMANDS.values()):
        own = _names(build_app((module,)))
        assert own == {c for c, m in LEAN_COMMANDS.items() if m == module}
    assert set(LEAN_COMMANDS) <= _names(app)
    assert set(LEAN_COMMANDS.values()) <= set(COMMAND_MODULES)


def test_lean_app_prints_the_same_help_as_the_full_app() -> None:
    for command in LEAN_COMMANDS:
        lean = build_app((LEAN_COMMANDS[command],))
        full = CliRunner().invoke(app, [command, "--help"])
        alone = CliRunner().invoke(lean, [command, "--help"])
        assert full.exit_code == alone.exit_code == 0
        assert alone.output == full.output, command


def test_validate_imports_no_other_command_module() -> None:
    probe = (
        "import sys\n"
        f"sys.argv = ['plantops', 'validate', {str(EXAMPLE)!r}]\n"
        "from plantops.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "else:\n    code = 0\n"
        "heavy = ['plantops.cli.observe', 'plantops.cli.backup', 'plantops.addons',\n"
        "         'plantops.check.policy', 'plantops.release', 'httpx']\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert res.stdout.strip().splitlines()[-1] == "0 []", res.stdout + res.stderr

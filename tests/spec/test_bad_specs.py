"""The corpus of broken fleets: every one fails with exit 2 and located messages.

Each case in ``bad/<case>/case.yaml`` edits a copy of ``base/`` and lists nothing
else: the expected messages live in ``bad/<case>/expected.txt`` (golden; rewrite
with ``--update-golden`` and review the diff).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.errors import SpecError
from plantops.model import build_fleet
from plantops.plan import build_plan
from plantops.spec import load_fleet
from tests.conftest import TODAY

HERE = Path(__file__).parent
CASES = sorted(p.name for p in (HERE / "bad").iterdir() if (p / "case.yaml").is_file())


def make_case(name: str, tmp: Path) -> Path:
    root = tmp / "fleet"
    shutil.copytree(HERE / "base", root)
    case: dict[str, Any] = yaml.safe_load((HERE / "bad" / name / "case.yaml").read_text())
    for edit in case["edits"]:
        target = root / edit["file"]
        if "copy" in edit:
            shutil.copy(root / edit["copy"], target)
        elif "write" in edit:
            target.write_text(edit["write"])
        else:
            text = target.read_text()
            assert edit["replace"] in text, f"{name}: {edit['replace']!r} not in {edit['file']}"
            target.write_text(text.replace(edit["replace"], edit["with"], 1))
    return root


def errors_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        loaded = load_fleet(root, today=TODAY)
        build_plan(build_fleet(loaded, today=TODAY))
    return [p.render() for p in info.value.problems]


def test_base_fleet_is_valid() -> None:
    loaded = load_fleet(HERE / "base", today=TODAY)
    assert [p.code for p in loaded.plants] == ["alpha", "beta"]
    assert build_plan(build_fleet(loaded, today=TODAY)).deployments


@pytest.mark.parametrize("name", CASES)
def test_bad_spec(name: str, tmp_path: Path, update_golden: bool) -> None:
    root = make_case(name, tmp_path)
    messages = errors_of(root)
    assert messages, "a bad fleet must produce problems"
    for m in messages:
        # every message is located: file:line:col
        file, line, col = m.split(":", 3)[:3]
        assert (root / file).exists(), m
        assert int(line) >= 1 and int(col) >= 1, m
    golden = HERE / "bad" / name / "expected.txt"
    text = "\n".join(messages) + "\n"
    if update_golden:
        golden.write_text(text)
    assert golden.is_file(), f"run pytest --update-golden to create {golden}"
    assert text == golden.read_text()


@pytest.mark.parametrize("name", CASES)
def test_bad_spec_cli_exit_2(name: str, tmp_path: Path) -> None:
    root = make_case(name, tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["plan", str(root), "--out", str(out), "--today", TODAY.isoformat()]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error" in result.output
    assert not out.exists(), "a failed plan must not leave an output tree"


def test_many_errors_are_reported_together(tmp_path: Path) -> None:
    messages = errors_of(make_case("many-errors", tmp_path))
    files = {m.split(":", 1)[0] for m in messages}
    assert files == {"fleet.yaml", "plants/alpha.yaml", "plants/beta.yaml"}


def test_expired_override_may_be_a_warning(tmp_path: Path) -> None:
    root = make_case("expired-override", tmp_path)
    loaded = load_fleet(root, today=TODAY, allow_expired_overrides=True)
    assert [w.severity for w in loaded.warnings] == ["warning"]
    assert "expired on 2026-01-31" in loaded.warnings[0].message
    # the expired exception no longer applies: beta falls back to its classified pattern
    plan = build_plan(build_fleet(loaded, today=TODAY))
    beta = next(c for c in plan.classifications if c.plant == "beta")
    assert beta.pattern == "shared-multitenant"

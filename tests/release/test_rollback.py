"""``plantops rollback``: the database decision follows what the releases rolled back over
did; --apply writes the pin, and the re-render runs no module update."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.release.pins import next_pin, read_pin, write_pin
from tests.release.pinned_fleet import FLEET, PROD, _record

runner = CliRunner()


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    return root


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rollback", *args])
    return result.exit_code, result.output


def test_migrating_release_needs_a_restore(fleet: Path) -> None:
    before = (fleet / "releases/monterrey-assembly/prod.yaml").read_text()
    code, output = _run(
        "--fleet",
        str(fleet),
        "--plant",
        "monterrey-assembly",
        "--env",
        "prod",
        "--at",
        "2026-12-01T08:00:00Z",
        "--format",
        "json",
    )
    assert code == 0, output
    doc = json.loads(output)
    db = doc["database"]
    assert db["action"] == "restore"
    assert db["backup"] == f"monterrey-assembly-pre-upgrade-{PROD[1].upgrade_id}"
    assert db["target_time"] == "2026-11-22T06:00:00Z"
    assert db["migrated_by"] == [PROD[1].release]
    assert doc["to"]["release"] == PROD[0].release
    assert doc["pin"]["current"]["update_modules"] == []
    assert doc["commands"][0].startswith("plantops dr plan --fleet")
    assert "--target-time 2026-11-22T06:00:00Z" in doc["commands"][0]
    assert doc["written"] is None
    assert (fleet / "releases/monterrey-assembly/prod.yaml").read_text() == before


def test_apply_then_nothing_left(fleet: Path, tmp_path: Path) -> None:
    from plantops.store.ledger import open_ledger

    db = f"sqlite:///{tmp_path / 'state.db'}"
    code, output = _run(
        "--fleet",
        str(fleet),
        "--plant",
        "monterrey-assembly",
        "--env",
        "prod",
        "--apply",
        "--as",
        "rita",
        "--reason",
        "MRP totals wrong",
        "--db",
        db,
        "--at",
        "2026-12-01T08:00:00Z",
    )
    assert code == 0, output
    assert "database: RESTORE" in output and "wrote" in output
    assert "recorded in the ledger" in output
    ledger = open_ledger(db)
    try:
        (entry,) = ledger.entries(kinds=("rollback",))
        assert ledger.verify().ok
    finally:
        ledger.close()
    assert entry.actor == "rita" and entry.release_id == PROD[1].release
    assert entry.payload == {
        "plant": "monterrey-assembly",
        "to_release": PROD[0].release,
        "reason": "MRP totals wrong",
        "database": "restore",
    }
    pin = read_pin(fleet, "monterrey-assembly", "prod")
    assert pin is not None
    assert pin.current.release == PROD[0].release
    assert pin.current.rollback_of == PROD[1].release and not pin.current.migrates
    code, output = _run("--fleet", str(fleet), "--plant", "monterrey-assembly", "--env", "prod")
    assert code == 2 and "no previous release" in output


def test_image_only_release_is_just_a_repin(fleet: Path) -> None:
    current = read_pin(fleet, "monterrey-assembly", "dev")
    assert current is not None
    new = next_pin(current, _record(3, (), "dev"), plant="monterrey-assembly", environment="dev")
    write_pin(fleet, new, replaces=current)
    code, output = _run(
        "--fleet", str(fleet), "--plant", "monterrey-assembly", "--env", "dev", "--format", "json"
    )
    assert code == 0, output
    doc = json.loads(output)
    assert doc["database"]["action"] == "none" and doc["database"]["backup"] is None
    assert [c.split()[1] for c in doc["commands"]] == ["rollback", "-C"]


def test_to_a_release_further_back(fleet: Path) -> None:
    current = read_pin(fleet, "monterrey-assembly", "prod")
    assert current is not None
    third = next_pin(
        current, _record(3, (), "prod"), plant="monterrey-assembly", environment="prod"
    )
    write_pin(fleet, third, replaces=current)
    code, output = _run(
        "--fleet",
        str(fleet),
        "--plant",
        "monterrey-assembly",
        "--env",
        "prod",
        "--to",
        PROD[0].release[:14],
        "--format",
        "json",
    )
    assert code == 0, output
    doc = json.loads(output)
    # release 3 changed only the image, but release 2 (rolled back over too) migrated
    assert doc["database"]["action"] == "restore"
    assert doc["database"]["migrated_by"] == [PROD[1].release]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plant", "nowhere", "--env", "prod"], "not a plant"),
        (["--plant", "monterrey-assembly", "--env", "qa"], "no such environment"),
        (["--plant", "monterrey-assembly", "--env", "dev"], "no previous release"),
        (
            ["--plant", "monterrey-assembly", "--env", "prod", "--to", "sha256:ff"],
            "not in the pin history",
        ),
        (["--plant", "../x", "--env", "prod"], "not a valid"),
        (["--plant", "monterrey-assembly", "--env", "prod", "--at", "yesterday"], "ISO 8601"),
    ],
)
def test_bad_input(fleet: Path, args: list[str], message: str) -> None:
    code, output = _run("--fleet", str(fleet), *args)
    assert code == 2
    assert message in output


def test_stale_plan_is_not_applied(fleet: Path) -> None:
    from plantops.release.pins import PinConflict
    from plantops.release.rollback import apply_rollback, plan_rollback

    current = read_pin(fleet, "monterrey-assembly", "prod")
    assert current is not None
    plan = plan_rollback(
        current,
        unit="monterrey-assembly",
        fleet_dir=fleet,
        at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )
    moved = next_pin(
        current, _record(4, (), "prod"), plant="monterrey-assembly", environment="prod"
    )
    write_pin(fleet, moved, replaces=current)
    with pytest.raises(PinConflict):
        apply_rollback(fleet, plan)


def test_apply_needs_who_and_why(fleet: Path) -> None:
    before = (fleet / "releases/monterrey-assembly/prod.yaml").read_text()
    args = ("--fleet", str(fleet), "--plant", "monterrey-assembly", "--env", "prod", "--apply")
    code, output = _run(*args)
    assert code == 2 and "--as WHO and --reason WHY" in output
    code, output = _run(*args, "--as", "rita", "--reason", "  ")
    assert code == 2
    assert (fleet / "releases/monterrey-assembly/prod.yaml").read_text() == before


def test_no_record_no_rollback(fleet: Path, tmp_path: Path) -> None:
    """The ledger refuses the entry (its database file is not a database): the pin is
    put back, byte for byte."""
    before = (fleet / "releases/monterrey-assembly/prod.yaml").read_text()
    missing = tmp_path / "state.db"
    missing.write_bytes(b"not a database" * 100)
    code, output = _run(
        "--fleet", str(fleet), "--plant", "monterrey-assembly", "--env", "prod", "--apply",
        "--as", "rita", "--reason", "bad MRP", "--db", f"sqlite:///{missing}",
    )  # fmt: skip
    assert code != 0, output
    assert "Traceback" not in output
    assert (fleet / "releases/monterrey-assembly/prod.yaml").read_text() == before

"""``plantops release waves``: the rollout plan of the fleet, before any release exists."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plantops.cli.main import app
from tests.conftest import EXAMPLE
from tests.release.fleet import release_fleet

runner = CliRunner()


def waves_json(fleet: Path) -> dict[str, dict[int, list[str]]]:
    r = runner.invoke(app, ["release", "waves", "--fleet", str(fleet), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    return {s["stage"]: {w["wave"]: w["plants"] for w in s["waves"]} for s in doc["stages"]}


def test_example_rollout_goes_from_the_pilot_to_the_critical_plants() -> None:
    r = runner.invoke(app, ["release", "waves", "--fleet", str(EXAMPLE), "--format", "json"])
    assert r.exit_code == 0, r.output
    stages = {s["stage"]: s for s in json.loads(r.output)["stages"]}
    assert list(stages) == ["dev", "test", "staging", "prod"]
    prod = stages["prod"]
    assert prod["production"] is True and stages["staging"]["production"] is False
    assert prod["gates"] == [
        "addons", "vulnerabilities", "rehearsal", "smoke", "approvals", "soak", "windows"
    ]  # fmt: skip
    assert prod["approvals"] == {"count": 2, "roles": ["plant-manager", "release-manager"]}
    assert prod["approvals_by_tier"] == {"pilot": {"count": 1, "roles": ["release-manager"]}}
    assert prod["windows"] == ["weekend"] and prod["wave_soak_hours"] == 4
    waves = {w["wave"]: w["plants"] for w in prod["waves"]}
    # pilot tier first, critical last: the default from each plant's tier
    assert waves[min(waves)] == ["pune-pilot"]
    assert waves[max(waves)] == ["detroit-stamping", "lyon-meddev"]
    every = sorted(p for ps in waves.values() for p in ps)
    assert every == sorted(p.stem for p in (EXAMPLE / "plants").glob("*.yaml"))
    # leipzig-vm has only staging and prod: it is in no dev or test wave
    assert all("leipzig-vm" not in ps for ps in waves_json(EXAMPLE)["test"].values())


def test_a_plant_file_moves_its_plant_to_its_own_wave(tmp_path: Path) -> None:
    fleet = release_fleet(tmp_path)
    plant = fleet / "plants" / "detroit-stamping.yaml"
    text = plant.read_text(encoding="utf-8")
    assert "release_wave" not in text
    plant.write_text(text.rstrip("\n") + "\nrelease_wave: 0\n", encoding="utf-8")
    prod = waves_json(fleet)["prod"]
    assert prod[0] == ["detroit-stamping"]
    assert all("detroit-stamping" not in ps for w, ps in prod.items() if w != 0)


def test_text_table_names_stages_gates_and_production(tmp_path: Path) -> None:
    r = runner.invoke(app, ["release", "waves", "--fleet", str(EXAMPLE)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "prod (production)" in r.output and "2 approval(s)" in r.output
    assert "windows weekend" in r.output and "soak 48 h" in r.output


def test_a_fleet_without_a_releases_section_has_no_gates(tmp_path: Path) -> None:
    fleet = release_fleet(tmp_path, "")
    r = runner.invoke(app, ["release", "waves", "--fleet", str(fleet), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert all(s["gates"] == [] for s in json.loads(r.output)["stages"])


def test_a_missing_fleet_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["release", "waves", "--fleet", str(tmp_path / "nope")])
    assert r.exit_code == 2

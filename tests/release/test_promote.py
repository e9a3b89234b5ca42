"""``plantops promote`` end to end on a copy of the example fleet: a release goes dev →
test → staging → prod wave by wave, each gate blocks for its reason, pins are written,
the ledger records it all and catches tampering, and racing promoters get one winner."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.release.pins import read_pins
from plantops.store import open_catalog
from plantops.store.ledger import open_ledger
from tests.fixtures.postgres import PgCluster
from tests.release.fleet import IMAGE, addons_repo, probe_run, release_fleet, write_json

runner = CliRunner()
TRIVY_CLEAN = {"SchemaVersion": 2, "ArtifactName": IMAGE, "Results": []}


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    fleet = release_fleet(tmp_path)
    addons = addons_repo(tmp_path)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    lock = tmp_path / "r.lock"
    r = cli("release", "create", "--fleet", str(fleet), "--image", IMAGE, "--addons", str(addons),
            "--out", str(lock), "--as", "alice", "--db", db, "--today", "2026-12-01")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "ledger entry 1: release by alice" in r.output
    yield {"fleet": fleet, "db": db, "lock": lock, "tmp": tmp_path}


def promote(w: dict[str, Any], stage: str, now: str, *extra: str) -> Any:
    return cli("promote", str(w["lock"]), "--fleet", str(w["fleet"]), "--to", stage,
               "--db", w["db"], "--now", now, "--as", "bob", *extra)  # fmt: skip


def entries(w: dict[str, Any]) -> int:
    led = open_ledger(w["db"])
    try:
        v = led.verify()
        assert v.ok, v.reason
        return v.entries
    finally:
        led.close()


def all_waves(w: dict[str, Any], stage: str, now: str, *extra: str) -> list[int]:
    waves: list[int] = []
    for _ in range(6):
        r = promote(w, stage, now, "--format", "json", *extra)
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        if doc["message"]:
            assert "every wave" in doc["message"]
            return waves
        assert doc["promoted"] == [p["plant"] for p in doc["plants"]]
        waves.append(doc["wave"])
    raise AssertionError("promotion did not finish")


def smoke_file(w: dict[str, Any], stage: str, name: str = "smoke.json", **kw: Any) -> Path:
    plants = ["brno-components", "detroit-stamping", "gdansk-packaging", "leipzig-vm",
              "lyon-meddev", "monterrey-assembly", "porto-plastics", "pune-pilot", "rotterdam-dc"]  # fmt: skip
    return write_json(w["tmp"] / name, probe_run([(p, stage) for p in plants], **kw))


def test_dry_run_records_nothing_and_dev_goes_wave_by_wave(world: dict[str, Any]) -> None:
    r = promote(world, "dev", "2026-12-05T10:00:00Z", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "DRY RUN" in r.output and "pune-pilot [pilot, wave 1]: eligible" in r.output
    assert entries(world) == 1 and not (world["fleet"] / "releases").exists()
    assert all_waves(world, "dev", "2026-12-05T10:00:00Z") == [1, 2, 3, 4]
    pins = read_pins(world["fleet"])
    assert sorted(p for p, e in pins if e == "dev") == [
        "brno-components", "detroit-stamping", "gdansk-packaging", "lyon-meddev",
        "monterrey-assembly", "porto-plastics", "pune-pilot", "rotterdam-dc",
    ]  # fmt: skip
    assert {p.current.stage for p in pins.values()} == {"dev"}
    assert entries(world) == 5  # release + one promotion per wave
    # The promotion entry carries the gate evidence and the rollback reference.
    led = open_ledger(world["db"])
    last = led.entries(kinds=("promotion",))[-1]
    led.close()
    assert last.payload["wave"] == 4
    assert last.payload["rollback"]["lyon-meddev"]["previous_release"] is None
    assert "plantops rollback" in last.payload["rollback"]["lyon-meddev"]["plan"]
    assert [g["gate"] for g in last.payload["gates"]["lyon-meddev"]] == ["order", "addons"]


def test_through_every_stage_with_gates_waves_and_windows(world: dict[str, Any]) -> None:
    w = world
    all_waves(w, "dev", "2026-12-05T10:00:00Z")
    # test: soak 2 h in dev and a smoke result from dev.
    r = promote(w, "test", "2026-12-05T11:00:00Z")
    assert r.exit_code == 1
    assert "FAIL soak: 1.0 h in dev, 2 h needed" in r.output
    assert "FAIL smoke: no probe result for brno-components in dev" in r.output
    assert entries(w) == 5  # nothing recorded for a promotion that did not happen
    bad = smoke_file(w, "dev", "bad.json", ok=False, serie="16.0")
    r = promote(w, "test", "2026-12-05T13:00:00Z", "--smoke", str(bad))
    assert r.exit_code == 1 and "failed check: version" in r.output
    good = smoke_file(w, "dev")
    assert all_waves(w, "test", "2026-12-05T13:00:00Z", "--smoke", str(good)) == [2, 3, 4]

    # staging: vulnerabilities, approvals (one qa, not the author), 24 h soak.
    trivy = write_json(w["tmp"] / "trivy.json", TRIVY_CLEAN)
    smoke_test = smoke_file(w, "test", "smoke-test.json")
    stage_args = ("--smoke", str(smoke_test), "--vulns", str(trivy))
    r = promote(w, "staging", "2026-12-06T14:00:00Z", *stage_args)
    assert r.exit_code == 1 and "FAIL approvals: 0 of 1 approval(s)" in r.output
    approve = ("release", "approve", str(w["lock"]), "--fleet", str(w["fleet"]), "--db", w["db"])
    r = cli(*approve, "--stage", "staging", "--as", "alice", "--role", "qa")
    assert r.exit_code == 2 and "author of a release cannot approve it" in r.output
    r = cli(*approve, "--stage", "staging", "--as", "quinn", "--role", "qa")
    assert r.exit_code == 0, r.output
    r = cli(*approve, "--stage", "staging", "--as", "quinn", "--role", "nobody")
    assert r.exit_code == 2 and "no stage asks for it" in r.output
    # leipzig-vm runs in staging but not in test: it waits for the release to enter test.
    assert all_waves(w, "staging", "2026-12-06T14:00:00Z", *stage_args) == [2, 3, 4]

    # prod: rehearsal on the newest verified backup, two approvals with roles, 48 h soak,
    # the weekend window, 4 h between waves.
    catalog = open_catalog(w["db"])
    rehearsals = []
    for plant in ("pune-pilot", "brno-components", "gdansk-packaging", "leipzig-vm",
                  "porto-plastics", "monterrey-assembly", "rotterdam-dc", "detroit-stamping",
                  "lyon-meddev"):  # fmt: skip
        bid = f"b-{plant}"
        when = dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC)
        catalog.create_backup(backup_id=bid, plant=plant, env="prod", tier="", fmt="native",
                              store_url="file:///b", location=bid, started_at=when, host="h",
                              pid=1, key_id=None, db_name=plant)  # fmt: skip
        catalog.complete_backup(bid, objects=[], manifest={}, row_counts={}, pg_version="15",
                                odoo_version="17.0", finished_at=when)  # fmt: skip
        catalog.add_verification(bid, status="passed", started_at=when, finished_at=when,
                                 rto_seconds=1, rto_objective_seconds=2, rpo_seconds=1,
                                 rpo_objective_seconds=2, checks={})  # fmt: skip
        doc = {"schema": "plantops.io/rehearsal/v1", "release": json.loads(w["lock"].read_text())["id"],
               "plant": plant, "environment": "prod", "backup_id": bid, "neutralized": True,
               "modules": [], "exit_code": 0, "duration_seconds": 42.0, "log_sha256": "ab" * 32}  # fmt: skip
        rehearsals += ["--rehearsal", str(write_json(w["tmp"] / f"reh-{plant}.json", doc))]
    catalog.close()
    smoke_staging = smoke_file(w, "staging", "smoke-staging.json")
    prod_args = ("--smoke", str(smoke_staging), "--vulns", str(trivy), *rehearsals)
    for user, role in (("rita", "release-manager"), ("paul", "plant-manager")):
        assert cli(*approve, "--stage", "prod", "--as", user, "--role", role).exit_code == 0
    # Wednesday: soaked, but outside the weekend window; told when it opens (Sat 00:00 IST).
    r = promote(w, "prod", "2026-12-09T12:00:00Z", *prod_args)
    assert r.exit_code == 1, r.output
    assert "pune-pilot [pilot, wave 1]: blocked (eligible at 2026-12-11T18:30:00+00:00)" in r.output
    assert "outside every allowed window (weekend)" in r.output
    r = promote(w, "prod", "2026-12-12T04:00:00Z", *prod_args, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["promoted"] == ["pune-pilot"]
    # The next wave waits 4 h after the pilot wave.
    r = promote(w, "prod", "2026-12-12T05:00:00Z", *prod_args)
    assert r.exit_code == 1 and "wave 1 needs 4 h" in r.output
    status = cli("release", "status", str(w["lock"]), "--fleet", str(w["fleet"]), "--db", w["db"],
                 "--now", "2026-12-12T05:00:00Z", "--json")  # fmt: skip
    assert status.exit_code == 0, status.output
    doc = json.loads(status.output)
    prod = next(s for s in doc["stages"] if s["stage"] == "prod")
    assert [(x["wave"], x["state"]) for x in prod["waves"]] == [
        (1, "done"), (2, "pending"), (3, "pending"), (4, "pending"),
    ]  # fmt: skip
    assert doc["author"] == "alice" and len(doc["approvals"]["prod"]) == 2

    # Break-glass: an emergency fix overrides the failed soak, loudly, with two approvers.
    bg = ("--break-glass", "MRP crash at Brno, hotfix INC-4711", "--approver", "carol")
    r = promote(w, "prod", "2026-12-12T05:00:00Z", *prod_args, *bg)
    assert r.exit_code == 2 and "two different --approver" in r.output
    r = promote(w, "prod", "2026-12-12T05:00:00Z", *prod_args, *bg, "--approver", "dave")
    assert r.exit_code == 0, r.output
    assert "BREAK-GLASS" in r.output
    led = open_ledger(w["db"])
    glass = led.entries(kinds=("break-glass",))
    led.close()
    assert len(glass) == 1 and glass[0].payload["approvers"] == ["carol", "dave"]
    assert glass[0].payload["overridden_gates"]["brno-components"] == ["soak"]

    # Tampering is caught and named.
    r = cli("ledger", "verify", "--db", w["db"])
    assert r.exit_code == 0 and "ledger intact" in r.output
    with sqlite3.connect(w["tmp"] / "state.db") as conn:
        conn.execute("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 3")
    r = cli("ledger", "verify", "--db", w["db"])
    assert r.exit_code == 1 and "BROKEN at entry 3" in r.output


def test_bad_input_exits_2(world: dict[str, Any], tmp_path: Path) -> None:
    r = promote(world, "qa", "2026-12-05T10:00:00Z")
    assert r.exit_code == 2 and "not a stage of the fleet" in r.output
    r = promote(world, "dev", "2026-12-05T10:00:00")
    assert r.exit_code == 2 and "give the offset" in r.output
    r = promote(world, "dev", "2026-12-05T10:00:00Z", "--wave", "9")
    assert r.exit_code == 2 and "has waves 1, 2, 3, 4" in r.output
    edited = tmp_path / "edited.lock"
    edited.write_text(world["lock"].read_text().replace('"17.0"', '"18.0"'))
    r = cli(
        "promote", str(edited), "--fleet", str(world["fleet"]), "--to", "dev", "--db", world["db"]
    )
    assert r.exit_code == 2 and "does not match its id" in r.output
    other = f"sqlite:///{tmp_path / 'other.db'}"
    r = cli(
        "promote", str(world["lock"]), "--fleet", str(world["fleet"]), "--to", "dev", "--db", other
    )
    assert r.exit_code == 2 and "release register" in r.output
    assert entries(world) == 1


def _race(fleet: str, lock: str, db: str, barrier: Any, results: Any) -> None:
    from plantops.services import release as release_services

    barrier.wait()
    try:
        res = release_services.promote_release(
            Path(fleet), Path(lock), to="dev", actor="racer", wave=1, db=db,
            now=dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC),
        )  # fmt: skip
        results.put("won" if res.entries else "nothing to do")
    except Exception as exc:  # the loser's PromotionConflict
        results.put(type(exc).__name__)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_promoters_racing_exactly_one_wins(
    world: dict[str, Any], backend: str, request: pytest.FixtureRequest
) -> None:
    db = world["db"]
    if backend == "postgresql":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        db = cluster.url(cluster.create_database("race"))
        assert (
            cli("release", "register", str(world["lock"]), "--as", "alice", "--db", db).exit_code
            == 0
        )
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    args = (str(world["fleet"]), str(world["lock"]), db, barrier, results)
    procs = [ctx.Process(target=_race, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes.count("won") == 1, outcomes
    assert outcomes[0] in ("PromotionConflict", "nothing to do", "PinConflict") or outcomes[1] in (
        "PromotionConflict", "nothing to do", "PinConflict",
    )  # fmt: skip
    led = open_ledger(db)
    try:
        assert led.verify().ok
        assert len(led.entries(kinds=("promotion",))) == 1
        assert led.claims(json.loads(world["lock"].read_text())["id"], "dev") == {"pune-pilot": 2}
    finally:
        led.close()


def test_a_git_fleet_repo_gets_one_commit_per_promotion(world: dict[str, Any]) -> None:
    import subprocess

    fleet = world["fleet"]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(fleet), *args],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "fleet")
    (fleet / "notes.txt").write_text("not part of the promotion\n")
    env = {"GIT_AUTHOR_NAME": "p", "GIT_AUTHOR_EMAIL": "p@example.com",
           "GIT_COMMITTER_NAME": "p", "GIT_COMMITTER_EMAIL": "p@example.com"}  # fmt: skip
    r = runner.invoke(app, ["promote", str(world["lock"]), "--fleet", str(fleet), "--to", "dev",
                            "--db", world["db"], "--now", "2026-12-05T10:00:00Z"], env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "fleet repo commit" in r.output
    log = git("log", "-1", "--format=%B")
    assert log.startswith("promote sha256:") and "to dev wave 1: pune-pilot" in log
    assert "pune-pilot: order ok, addons ok" in log and "Ledger-Entry: 2 " in log
    assert git("show", "--name-only", "--format=").split() == ["releases/pune-pilot/dev.yaml"]
    assert "notes.txt" in git("status", "--porcelain")  # the user's own change is left alone


@pytest.mark.parametrize("kind", ["missing", "fifo", "directory", "wrong-schema", "not-json"])
def test_hostile_evidence_files_exit_2_naming_them(
    world: dict[str, Any], tmp_path: Path, kind: str
) -> None:
    import os

    path = tmp_path / f"evidence-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "wrong-schema":
        write_json(path, {"schema": "plantops.io/probe-run/v1", "targets": []})
    elif kind == "not-json":
        path.write_text("{not json")
    all_waves(world, "dev", "2026-12-05T10:00:00Z")
    r = promote(world, "test", "2026-12-05T13:00:00Z", "--rehearsal", str(path))
    assert r.exit_code == 2, r.output
    assert path.name in r.output
    assert entries(world) == 5


def test_bad_database_urls_exit_2(world: dict[str, Any]) -> None:
    r = cli("ledger", "verify", "--db", "mysql://x/y")
    assert r.exit_code == 2 and "not supported" in r.output
    r = cli("ledger", "export", "--db", world["db"], "--format", "xml")
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "section,why",
    [
        ("releases:\n  stages:\n    qa: {gates: [addons]}\n", "releases.stages.qa: not an environment"),
        ("releases:\n  stages:\n    prod:\n      approvals_by_tier: {gold: {count: 1}}\n",
         "approvals_by_tier.gold: not a tier"),
        ("releases:\n  vulns_policy: ../../etc/policy.yaml\n", "inside the fleet repository"),
        ("releases:\n  stages:\n    prod: {gates: [karma]}\n", "karma"),
    ],
)  # fmt: skip
def test_bad_releases_sections_exit_2(tmp_path: Path, section: str, why: str) -> None:
    fleet = release_fleet(tmp_path, section)
    addons = addons_repo(tmp_path)
    lock = tmp_path / "r.lock"
    r = cli("release", "create", "--fleet", str(fleet), "--image", IMAGE, "--addons", str(addons),
            "--out", str(lock), "--today", "2026-12-01")  # fmt: skip
    if r.exit_code == 0:  # cross-file checks happen when promoting
        r = cli("promote", str(lock), "--fleet", str(fleet), "--to", "dev", "--db",
                f"sqlite:///{tmp_path / 's.db'}")  # fmt: skip
    assert r.exit_code == 2, r.output
    assert why in r.output

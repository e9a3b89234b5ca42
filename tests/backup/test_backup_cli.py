"""The CLI end to end against a real PostgreSQL: run, list, verify, restore, prune."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from odoo_helpers import OdooDb
from typer.testing import CliRunner

from plantops.cli.main import app

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def backup_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The critical tier these tests back up requires encryption: a key in the
    environment, as an operator would set it, serves backup, verify and restore."""
    from plantops.backup.crypto import KEY_ENV, generate_identity

    secret, _ = generate_identity()
    monkeypatch.setenv(KEY_ENV, secret)
    return secret


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _run_backup(db: OdooDb, tmp_path: Path, *extra: str) -> str:
    code, out = _invoke(
        "backup",
        "run",
        "--db-url",
        db.url,
        "--filestore",
        str(db.filestore),
        "--store",
        str(tmp_path / "store"),
        "--state-db",
        f"sqlite:///{tmp_path}/s.db",
        "--plant",
        "lyon",
        "--env",
        "prod",
        "--tier",
        "critical",
        "--format",
        "json",
        *extra,
    )
    assert code == 0, out
    return str(json.loads(out)["id"])


def test_cli_run_list_verify_restore_neutralize(odoo_db: OdooDb, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    server = odoo_db.cluster.url()
    bid = _run_backup(odoo_db, tmp_path, "--archive-format", "dump")

    code, out = _invoke(
        "backup", "list", "--plant", "lyon", "--format", "json", "--state-db", state
    )
    assert code == 0, out
    listed = json.loads(out)
    assert [b["id"] for b in listed] == [bid] and listed[0]["status"] == "complete"
    code, out = _invoke("backup", "list", "--state-db", state)
    assert bid in out and "lyon/prod" in out

    code, out = _invoke("backup", "verify", bid, "--server", server, "--state-db", state)
    assert code == 0, out
    assert "PASSED" in out and "RTO (measured restore time)" in out and "met" in out

    copy = f"{odoo_db.name}_stg"
    fs = tmp_path / "stg-fs"
    try:
        code, out = _invoke(
            "backup",
            "restore",
            bid,
            "--to-db",
            copy,
            "--filestore",
            str(fs),
            "--neutralize",
            "--server",
            server,
            "--state-db",
            state,
        )
        assert code == 0, out
        with odoo_db.cluster.connect(copy) as conn:
            crons = conn.execute("SELECT name, active FROM ir_cron ORDER BY id").fetchall()
            mail = conn.execute("SELECT bool_or(active) FROM ir_mail_server").fetchone()
            params = dict(conn.execute("SELECT key, value FROM ir_config_parameter").fetchall())
        assert crons == [("Autovacuum", True), ("Send invoices", False), ("Carrier sync", False)]
        assert mail == (False,)
        assert params["database.is_neutralized"] == "true"
        assert params["database.uuid"] != "a4b1c2d3-0000-4000-8000-000000000001"

        # Refuses to overwrite without --force; nothing changes.
        marker = fs / "keep-me"
        marker.write_text("x")
        code, out = _invoke(
            "backup",
            "restore",
            bid,
            "--to-db",
            copy,
            "--filestore",
            str(fs),
            "--server",
            server,
            "--state-db",
            state,
        )
        assert code == 2 and "already exists" in out and marker.exists()
        code, out = _invoke(
            "backup",
            "restore",
            bid,
            "--to-db",
            copy,
            "--filestore",
            str(fs),
            "--force",
            "--server",
            server,
            "--state-db",
            state,
        )
        assert code == 0, out
        assert not marker.exists()
        with odoo_db.cluster.connect(copy) as conn:
            assert conn.execute(
                "SELECT value FROM ir_config_parameter WHERE key='database.uuid'"
            ).fetchone() == ("a4b1c2d3-0000-4000-8000-000000000001",)
    finally:
        odoo_db.cluster.drop_database(copy)


def test_corrupted_archive_fails_verification_and_restore(odoo_db: OdooDb, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    bid = _run_backup(odoo_db, tmp_path, "--archive-format", "odoo-zip")
    (zip_path,) = (tmp_path / "store").rglob("backup.zip.age")
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    code, out = _invoke(
        "backup", "verify", bid, "--server", odoo_db.cluster.url(), "--state-db", state
    )
    assert code == 1, out
    assert "FAILED" in out and "corrupted" in out
    code, out = _invoke("backup", "list", "--format", "json", "--state-db", state)
    assert json.loads(out)[0]["verification"]["status"] == "failed"
    with odoo_db.cluster.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'plantops_verify_%'"
        ).fetchone()
    assert left == (0,)

    zip_path.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    code, out = _invoke(
        "backup",
        "restore",
        bid,
        "--to-db",
        "never_created",
        "--server",
        odoo_db.cluster.url(),
        "--state-db",
        state,
    )
    assert code == 3 and "truncated" in out
    assert not odoo_db.cluster.database_exists("never_created")


def test_bad_input_exit_codes(odoo_db: OdooDb, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    common = ["--store", str(tmp_path / "store"), "--state-db", state]
    code, out = _invoke("backup", "run", "--db-url", "postgresql://postgres@127.0.0.1:1/x", *common)
    assert code == 3 and "cannot connect" in out
    bad_user = odoo_db.url.replace("postgres@", "nobody@")
    code, out = _invoke("backup", "run", "--db-url", bad_user, *common)
    assert code == 3 and "nobody" in out
    code, out = _invoke(
        "backup", "run", "--db-url", odoo_db.url, "--filestore", str(tmp_path / "nope"), *common
    )
    assert code == 2 and "--filestore" in out  # bad input, not an infrastructure failure
    code, out = _invoke("backup", "list", "--format", "json", "--state-db", state)
    assert json.loads(out) == []  # nothing recorded for attempts that never started
    code, out = _invoke("backup", "run", *common)
    assert code == 2


def test_age_cli_decrypts_a_plantops_object(odoo_db: OdooDb, tmp_path: Path, age_key: Path) -> None:
    bid = _run_backup(odoo_db, tmp_path, "--archive-format", "odoo-zip", "--key", str(age_key))
    (enc,) = (tmp_path / "store").rglob("backup.zip.age")
    out = tmp_path / "plain.zip"
    subprocess.run(["age", "-d", "-i", str(age_key), "-o", str(out), str(enc)], check=True)
    import zipfile

    with zipfile.ZipFile(out) as zf:
        assert zf.namelist()[:2] == ["dump.sql", "manifest.json"]
        assert json.loads(zf.read("manifest.json"))["db_name"] == odoo_db.name
    assert bid


def test_prune_dry_run_and_apply(odoo_db: OdooDb, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    ids = [_run_backup(odoo_db, tmp_path, "--archive-format", "dump") for _ in range(3)]
    # Verify the oldest: it is then the newest *verified* backup and must survive.
    code, out = _invoke(
        "backup", "verify", ids[0], "--server", odoo_db.cluster.url(), "--state-db", state
    )
    assert code == 0, out
    code, out = _invoke("backup", "prune", "--dry-run", "--format", "json", "--state-db", state)
    assert code == 0, out
    plan = {d["id"]: d for d in json.loads(out)["decisions"]}
    assert plan[ids[2]]["keep"] and "newest backup" in plan[ids[2]]["reasons"]
    assert plan[ids[0]]["keep"] and "newest verified backup" in plan[ids[0]]["reasons"]
    assert not plan[ids[1]]["keep"]  # same day as the newest: no daily slot left
    assert all(b.is_dir() for b in (tmp_path / "store" / "lyon" / "prod").iterdir())
    code, out = _invoke("backup", "prune", "--state-db", state)
    assert code == 0, out
    code, out = _invoke("backup", "list", "--format", "json", "--state-db", state)
    status = {b["id"]: b["status"] for b in json.loads(out)}
    assert status == {ids[0]: "complete", ids[1]: "deleted", ids[2]: "complete"}
    remaining = sorted(p.name.split("-")[-1] for p in (tmp_path / "store/lyon/prod").iterdir())
    assert remaining == sorted([ids[0], ids[2]])


def test_verify_due_follows_tier_policy(odoo_db: OdooDb, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    a = _run_backup(odoo_db, tmp_path, "--archive-format", "dump")
    b = _run_backup(odoo_db, tmp_path, "--archive-format", "dump")
    code, out = _invoke(
        "backup",
        "verify",
        "--due",
        "--server",
        odoo_db.cluster.url(),
        "--state-db",
        state,
        "--format",
        "json",
    )
    assert code == 0, out
    assert sorted(r["backup_id"] for r in json.loads(out)) == sorted([a, b])  # critical: every
    code, out = _invoke(
        "backup", "verify", "--due", "--server", odoo_db.cluster.url(), "--state-db", state
    )
    assert code == 0 and "no backup is due" in out


def test_kill_9_mid_backup_leaves_nothing_complete(pg_cluster: object, tmp_path: Path) -> None:
    from odoo_helpers import make_odoo_db

    from plantops.backup.archive import reap_abandoned
    from plantops.backup.stores import open_store
    from plantops.store import open_catalog

    db = make_odoo_db(pg_cluster, tmp_path / "data", files=1)  # type: ignore[arg-type]
    for i in range(4000):  # a filestore big enough to kill the backup while it is zipped
        d = db.filestore / f"{i % 256:02x}"
        d.mkdir(exist_ok=True)
        (d / f"blob{i}").write_bytes(os.urandom(16384))
    state = f"sqlite:///{tmp_path}/s.db"
    store_dir = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [
            str(Path(os.sys.executable)),
            "-c",
            "from plantops.cli.main import main; main()",
            "backup",
            "run",
            "--db-url",
            db.url,
            "--filestore",
            str(db.filestore),
            "--store",
            str(store_dir),
            "--state-db",
            state,
            "--plant",
            "lyon",
            "--env",
            "prod",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time

    deadline = time.monotonic() + 60
    partial: list[Path] = []
    while time.monotonic() < deadline and not partial:
        partial = list(store_dir.rglob("*.partial")) if store_dir.exists() else []
        time.sleep(0.01)
    assert partial, "backup never started writing"
    proc.kill()
    proc.wait()
    assert not list(store_dir.rglob("COMPLETE.json"))
    assert not [p for p in store_dir.rglob("*") if p.is_file() and p.suffix != ".partial"]
    cat = open_catalog(state)
    try:
        (rec,) = cat.list_backups()
        assert rec.status == "running"
        assert reap_abandoned(cat, open_store) == [rec.id]
        assert cat.get(rec.id).status == "abandoned"
        assert not list(store_dir.rglob("*.partial"))
    finally:
        cat.close()
        pg_cluster.drop_database(db.name)  # type: ignore[attr-defined]


def test_fleet_mode_takes_tier_from_fleet_and_url_from_env(
    odoo_db: OdooDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from plantops.plan import build_plan
    from plantops.services import open_fleet
    from plantops.services.backup import deployment_db_env

    example = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
    plant = "lyon-meddev"
    fleet = open_fleet(example, today=dt.datetime.now(dt.UTC).date()).fleet
    (dep,) = [
        d for d in build_plan(fleet, [plant]).for_plant(plant) if d.environment.name == "prod"
    ]
    objectives = dep.tier_spec.backup
    state = f"sqlite:///{tmp_path}/s.db"
    common = ["--store", str(tmp_path / "store"), "--state-db", state, "--archive-format", "dump"]
    args = ["backup", "run", "--fleet", str(example), "--plant", plant, "--env", "prod"]
    code, out = _invoke(*args, *common)
    assert code == 2 and deployment_db_env(plant, "prod") in out
    monkeypatch.setenv(deployment_db_env(plant, "prod"), odoo_db.url)
    fs = ["--filestore", str(odoo_db.filestore)]
    code, out = _invoke(*args, *fs, *common, "--format", "json")
    assert code == 0, out
    rec = json.loads(out)
    assert (rec["plant"], rec["env"], rec["tier"]) == (plant, "prod", dep.tier)
    # The fleet's objectives travel with the backup: verify and prune judge by them.
    assert rec["policy"]["rpo_minutes"] == objectives.rpo_minutes
    assert rec["policy"]["rto_minutes"] == objectives.rto_minutes
    assert rec["policy"]["daily"] == objectives.retention.daily
    code, out = _invoke(
        "backup",
        "verify",
        rec["id"],
        "--server",
        odoo_db.cluster.url(),
        "--state-db",
        state,
        "--format",
        "json",
    )
    assert code == 0, out
    assert json.loads(out)[0]["rto_objective_seconds"] == objectives.rto_minutes * 60

    # --tier is an explicit override of the classification, checked against the fleet.
    code, out = _invoke(*args, *fs, *common, "--tier", "pilot", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["tier"] == "pilot"
    code, out = _invoke(*args, *fs, *common, "--tier", "platinum")
    assert code == 2 and "not defined in the fleet" in out
    code, out = _invoke("backup", "run", "--fleet", str(example), "--plant", plant, "--env", "qa")
    assert code == 2 and "does not run in 'qa'" in out


def test_fleet_targets_follow_the_plan() -> None:
    import datetime as dt

    from plantops.backup.fleet import target_for
    from plantops.plan import build_plan
    from plantops.services import open_fleet

    example = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
    fleet = open_fleet(example, today=dt.datetime.now(dt.UTC).date()).fleet
    plan = build_plan(fleet)
    for dep in plan.deployments:
        for tenant in dep.tenants:
            t = target_for(fleet, tenant.plant, dep.environment.name)
            assert (t.tier, t.database, t.deployment.namespace) == (
                dep.tier,
                tenant.database,
                dep.namespace,
            )
            assert t.policy.rpo_minutes == dep.tier_spec.backup.rpo_minutes
            assert t.tier_reason


def test_format_is_the_output_and_the_old_archive_spelling_still_works(
    odoo_db: OdooDb, tmp_path: Path
) -> None:
    """`--format` is text|json as everywhere in the CLI; `--format dump` (the archive
    format's old spelling) still works, with a deprecation warning naming the new one."""
    from plantops.store import open_catalog

    result = CliRunner().invoke(
        app,
        [
            "backup",
            "run",
            "--db-url",
            odoo_db.url,
            "--filestore",
            str(odoo_db.filestore),
            "--store",
            str(tmp_path / "store"),
            "--state-db",
            f"sqlite:///{tmp_path}/s.db",
            "--plant",
            "lyon",
            "--env",
            "prod",
            "--format",
            "dump",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "--format dump is deprecated" in result.output
    assert "--archive-format dump" in result.output
    cat = open_catalog(f"sqlite:///{tmp_path}/s.db")
    try:
        (rec,) = cat.list_backups()
        assert rec.format == "dump"
    finally:
        cat.close()
    bid = _run_backup(odoo_db, tmp_path, "--archive-format", "native")
    code, out = _invoke(
        "backup", "list", "--format", "json", "--state-db", f"sqlite:///{tmp_path}/s.db"
    )
    assert code == 0 and {b["format"] for b in json.loads(out)} == {"dump", "native"}, out
    assert bid in out


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "list"],
        ["backup", "prune", "--dry-run"],
        ["backup", "cleanup"],
    ],
    ids=lambda a: " ".join(a),
)
def test_the_old_output_spelling_of_format_still_works_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """`--format json` (or `-f json`) is the output format; scripts written against the
    old `--output json` keep working: the same JSON on stdout, a warning on stderr."""
    monkeypatch.setenv("PLANTOPS_SCRATCH_LEDGER", str(tmp_path / "ledger"))
    monkeypatch.delenv("PLANTOPS_RESTORE_DB_URL", raising=False)
    state = ["--state-db", f"sqlite:///{tmp_path}/s.db"]
    outputs = []
    for spelling in (["--format", "json"], ["-f", "json"], ["--output", "json"]):
        result = CliRunner().invoke(app, [*args, *state, *spelling])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
        warned = "--output json is deprecated here: use --format json" in result.stderr
        assert warned == (spelling[0] == "--output"), result.stderr
    assert outputs[0] == outputs[1] == outputs[2]
    helped = CliRunner().invoke(app, [*args, "--help"], terminal_width=200).output
    assert "--format" in helped and "--output" not in helped


def test_backup_run_old_output_spelling_prints_json(odoo_db: OdooDb, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "backup",
            "run",
            "--db-url",
            odoo_db.url,
            "--filestore",
            str(odoo_db.filestore),
            "--store",
            str(tmp_path / "store"),
            "--state-db",
            f"sqlite:///{tmp_path}/s.db",
            "--plant",
            "lyon",
            "--env",
            "prod",
            "--archive-format",
            "dump",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "dump"
    assert "use --format json" in result.stderr

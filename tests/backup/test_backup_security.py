"""Restoring a backup never hands its author the restore server (issue #11, critical).

A database owner who is not a superuser plants code that runs on restore — a plpgsql
function behind a materialized view, refreshed at the end of every restore — and
tries ``COPY … TO PROGRAM`` and ``ALTER ROLE … SUPERUSER``. Against a real
PostgreSQL, in every format, neither takes effect, and verify says what it found.
Also: child processes get a minimal environment and no credential reaches argv, the
catalog, the ledger or the logs; a killed run's scratch resources are reclaimed; a
check that cannot run is listed with its reason and the verdict follows from the list.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from odoo_helpers import ODOO_SCHEMA, OdooDb
from tests.fixtures.postgres import PgCluster

from plantops.backup import scratch
from plantops.backup.archive import BackupRequest, run_backup
from plantops.backup.pg import PgTarget, create_database, url_has_password
from plantops.backup.policy import DEFAULT_POLICIES
from plantops.backup.restore import BackupReader, reclaim_leftovers, restore_backup
from plantops.backup.stores import LocalStore
from plantops.backup.verify import verify_backup
from plantops.store import Catalog

pytestmark = pytest.mark.postgres

# Encryption is another test's subject: this one is about what a restore may run.
POLICY = dataclasses.replace(DEFAULT_POLICIES["critical"], encryption="optional")


def _evil_sql(marker: Path, swallow: bool) -> str:
    """Owner-defined code that tries to escalate when anyone but its author refreshes
    the view (pg_dump ends every restore with ``REFRESH MATERIALIZED VIEW trap``)."""
    attempts = [
        f"EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {marker}'' ';",
        # Whoever runs the restore, and the author: make them superusers.
        "EXECUTE 'ALTER ROLE ' || quote_ident(current_user) || ' SUPERUSER';",
        "EXECUTE 'ALTER ROLE mallory SUPERUSER';",
    ]
    if swallow:
        attempts = [f"BEGIN {a} EXCEPTION WHEN others THEN NULL; END;" for a in attempts]
    body = "\n    ".join(attempts)
    return f"""
CREATE FUNCTION evil() RETURNS int LANGUAGE plpgsql AS $fn$
BEGIN
  IF current_user <> 'mallory' THEN
    {body}
  END IF;
  RETURN 1;
END
$fn$;
CREATE MATERIALIZED VIEW trap AS SELECT evil() AS x;
"""


@pytest.fixture
def mallory_db(pg_cluster: PgCluster) -> Iterator[tuple[str, Path]]:
    """A database owned by the unprivileged role ``mallory``, holding the trap."""
    marker = Path(f"/tmp/plantops-pwned-{uuid.uuid4().hex[:8]}")
    with pg_cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mallory'").fetchone():
            conn.execute("CREATE ROLE mallory LOGIN")
        name = f"mallory_{uuid.uuid4().hex[:8]}"
        conn.execute(f'CREATE DATABASE "{name}" OWNER mallory')
    yield name, marker
    pg_cluster.drop_database(name)
    marker.unlink(missing_ok=True)


def _plant(cluster: PgCluster, name: str, marker: Path, swallow: bool) -> None:
    url = f"postgresql://mallory@127.0.0.1:{cluster.port}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ODOO_SCHEMA)  # an Odoo database, so every Odoo check can pass
        conn.execute(_evil_sql(marker, swallow))


def _supers(cluster: PgCluster) -> set[str]:
    with cluster.connect() as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper").fetchall()
    return {str(r[0]) for r in rows}


def _roles(cluster: PgCluster) -> set[str]:
    with cluster.connect() as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles").fetchall()
    return {str(r[0]) for r in rows}


@pytest.mark.parametrize("fmt", ["odoo-zip", "native", "dump"])
def test_restore_and_verify_run_dump_code_without_privilege(
    fmt: str,
    pg_cluster: PgCluster,
    mallory_db: tuple[str, Path],
    catalog: Catalog,
    store: LocalStore,
) -> None:
    name, marker = mallory_db
    _plant(pg_cluster, name, marker, swallow=True)
    server = PgTarget.from_url(pg_cluster.url())
    before_roles = _roles(pg_cluster)
    rec = run_backup(
        BackupRequest(
            db=server.with_db(name),
            filestore=None,
            plant="evil",
            env="prod",
            policy=POLICY,
            fmt=fmt,
        ),
        catalog,
        store,
    )
    assert rec.status == "complete"

    result = verify_backup(rec, store, server, POLICY, catalog)
    to_db = f"restored_{uuid.uuid4().hex[:8]}"
    restore_backup(BackupReader(rec, store, None), server, to_db, None)

    assert not marker.exists(), "COPY … TO PROGRAM ran during verify or restore"
    assert _supers(pg_cluster) == {"postgres"}
    with pg_cluster.connect() as conn:
        assert conn.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'postgres'"
        ).fetchone() == (True,)
    # The throwaway restore roles are gone, and so is the scratch database.
    assert _roles(pg_cluster) == before_roles
    assert not pg_cluster.database_exists(result.scratch_db)
    # Verify lists every check; the refresh ran as the restore role and did nothing.
    names = [c.name for c in result.checks]
    assert {"checksums", "restore", "row_counts", "pg_amcheck"} <= set(names)
    assert result.passed, [(c.name, c.status, c.detail) for c in result.checks]
    # The restored copy belongs to the admin (no SECURITY DEFINER code to hand over).
    with pg_cluster.connect(to_db) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'evil'"
        ).fetchone()
        assert owner == ("postgres",)
    pg_cluster.drop_database(to_db)


@pytest.mark.parametrize("fmt", ["native", "odoo-zip"])
def test_escalation_attempt_fails_verify_with_the_reason(
    fmt: str,
    pg_cluster: PgCluster,
    mallory_db: tuple[str, Path],
    catalog: Catalog,
    store: LocalStore,
) -> None:
    name, marker = mallory_db
    _plant(pg_cluster, name, marker, swallow=False)
    server = PgTarget.from_url(pg_cluster.url())
    rec = run_backup(
        BackupRequest(
            db=server.with_db(name),
            filestore=None,
            plant="evil",
            env="prod",
            policy=POLICY,
            fmt=fmt,
        ),
        catalog,
        store,
    )
    result = verify_backup(rec, store, server, POLICY, catalog)
    assert not result.passed
    failed = [c for c in result.checks if c.status == "failed"]
    assert [c.name for c in failed] == ["restore"]
    assert "pg_execute_server_program" in failed[0].detail or "superuser" in failed[0].detail
    assert not marker.exists()
    assert _supers(pg_cluster) == {"postgres"}


def test_security_definer_code_is_not_handed_to_a_superuser(
    pg_cluster: PgCluster, mallory_db: tuple[str, Path], catalog: Catalog, store: LocalStore
) -> None:
    name, _marker = mallory_db
    with psycopg.connect(
        f"postgresql://mallory@127.0.0.1:{pg_cluster.port}/{name}", autocommit=True
    ) as conn:
        conn.execute(ODOO_SCHEMA)  # an Odoo database: backups refuse anything else
        conn.execute(
            "CREATE FUNCTION boost() RETURNS void LANGUAGE sql SECURITY DEFINER"
            " AS $$ SELECT 1 $$"
        )
    server = PgTarget.from_url(pg_cluster.url())
    rec = run_backup(
        BackupRequest(
            db=server.with_db(name),
            filestore=None,
            plant="evil",
            env="prod",
            policy=POLICY,
            fmt="native",
        ),
        catalog,
        store,
    )
    to_db = f"restored_{uuid.uuid4().hex[:8]}"
    with pytest.raises(Exception, match="SECURITY DEFINER functions \\(boost\\(\\)\\)"):
        restore_backup(BackupReader(rec, store, None), server, to_db, None)
    assert not pg_cluster.database_exists(to_db)
    # With an unprivileged owner the same restore goes through.
    restore_backup(BackupReader(rec, store, None), server, to_db, None, owner="mallory")
    with pg_cluster.connect(to_db) as conn:
        row = conn.execute("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'boost'")
        assert row.fetchone() == ("mallory",)
    pg_cluster.drop_database(to_db)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    rec = _Recorder()
    real = subprocess.Popen

    class Popen(real):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *a: Any, **kw: Any) -> None:
            rec.calls.append(([str(x) for x in args], dict(kw.get("env") or {})))
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    return rec


def test_canary_credential_never_in_argv_files_logs_or_catalog(
    pg_cluster: PgCluster,
    odoo_db: OdooDb,
    catalog: Catalog,
    store: LocalStore,
    tmp_path: Path,
    recorded: _Recorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary + "aws")
    monkeypatch.setenv("PLANTOPS_BACKUP_KEY_CANARY", canary + "plantops")
    caplog.set_level(logging.DEBUG)
    # The cluster trusts local connections: the password is carried, never needed.
    src = PgTarget.from_url(
        f"postgresql://postgres:{canary}@127.0.0.1:{pg_cluster.port}/{odoo_db.name}"
    )
    server = src.with_db("postgres")
    for fmt in ("native", "odoo-zip"):
        rec = run_backup(
            BackupRequest(
                db=src,
                filestore=odoo_db.filestore,
                plant="mlh",
                env="prod",
                policy=POLICY,
                fmt=fmt,
            ),
            catalog,
            store,
        )
        assert verify_backup(rec, store, server, POLICY, catalog).passed
        restore_backup(
            BackupReader(rec, store, None),
            server,
            f"copy_{fmt.replace('-', '_')}",
            tmp_path / f"fs-{fmt}",
        )
    assert recorded.calls, "no client tool ran"
    for argv, env in recorded.calls:
        assert not any(canary in a for a in argv), argv
        assert not any(canary + "aws" == v or canary + "plantops" == v for v in env.values())
        assert not any(k.startswith(("AWS_", "PLANTOPS_")) for k in env), sorted(env)
    # pg_restore and psql connect as the throwaway role, with a password file.
    restorers = [
        env for argv, env in recorded.calls if Path(argv[0]).name in ("pg_restore", "psql")
    ]
    assert restorers and all(e["PGUSER"].startswith("plantops_restore_") for e in restorers)
    assert all("PGPASSWORD" not in e and "PGPASSFILE" in e for e in restorers)
    # Nothing written holds it: the catalog, the store, the ledger.
    roots = [store.root, scratch.ledger_dir()]
    for url in (catalog.engine.url.database,):
        if url:
            roots.append(Path(url).parent)
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
    assert canary not in caplog.text
    for fmt in ("native", "odoo_zip"):
        pg_cluster.drop_database(f"copy_{fmt}")


def test_backup_files_and_directories_are_private(
    odoo_db: OdooDb, catalog: Catalog, store: LocalStore
) -> None:
    rec = run_backup(
        BackupRequest(
            db=odoo_db.target,
            filestore=odoo_db.filestore,
            plant="mlh",
            env="prod",
            policy=POLICY,
            fmt="native",
        ),
        catalog,
        store,
    )
    base = store.root / rec.location
    paths = [base, *base.rglob("*")]
    assert len(paths) > 3
    for p in paths:
        mode = p.stat().st_mode & 0o777
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))


def test_url_password_is_detected() -> None:
    assert url_has_password("postgresql://u:pw@h/db")
    assert url_has_password("host=h password=pw dbname=x")
    assert not url_has_password("postgresql://u@h/db")
    assert not url_has_password("service=plant dbname=x")


def test_killed_runs_leave_nothing_the_next_run_does_not_reclaim(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    """A run killed after recording and creating its resources (simulated in a child
    process that exits without cleaning up): the next run reclaims every one."""
    server = PgTarget.from_url(pg_cluster.url())
    code = f"""
import os, sys
sys.path[:0] = {json.dumps([str(Path(__file__).resolve().parents[2] / "src")])}
from plantops.backup.pg import PgTarget
from plantops.backup.restore import ScratchDatabase
from plantops.backup import scratch
server = PgTarget.from_url({pg_cluster.url()!r})
db = ScratchDatabase(server, "plantops_verify_killed{uuid.uuid4().hex[:6]}")
scratch.make_dir("plantops-verify-fs-", {str(tmp_path)!r})
scratch.make_dir("plantops-dump-", {str(tmp_path)!r})
print(db.name, db.role, flush=True)
os._exit(9)  # as kill -9: no finally, no atexit
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr
    db_name, role = proc.stdout.split()
    assert pg_cluster.database_exists(db_name)
    assert role in _roles(pg_cluster)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 2
    # A live run's entries are untouched while it runs.
    live = scratch.record("database", "plantops_verify_alive")
    done = reclaim_leftovers(server)
    assert {(r.kind, r.done) for r in done} == {("dir", True), ("database", True), ("role", True)}
    assert not pg_cluster.database_exists(db_name)
    assert role not in _roles(pg_cluster)
    assert list(tmp_path.iterdir()) == []
    assert live.path is not None and live.path.exists()
    scratch.forget(live)
    assert reclaim_leftovers(server) == []


def test_a_check_that_cannot_run_is_listed_and_the_verdict_follows(
    pg_cluster: PgCluster, odoo_db: OdooDb, catalog: Catalog, store: LocalStore
) -> None:
    """As a non-superuser admin (CREATEDB CREATEROLE), pg_amcheck cannot run: it is listed
    with its reason, every other check is ok, and the verdict is PASSED, not FAILED."""
    with pg_cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'opsadmin'").fetchone():
            conn.execute("CREATE ROLE opsadmin LOGIN CREATEDB CREATEROLE")
    rec = run_backup(
        BackupRequest(
            db=odoo_db.target,
            filestore=odoo_db.filestore,
            plant="mlh",
            env="prod",
            policy=POLICY,
            fmt="native",
        ),
        catalog,
        store,
    )
    server = PgTarget.from_url(f"postgresql://opsadmin@127.0.0.1:{pg_cluster.port}/postgres")
    result = verify_backup(rec, store, server, POLICY, catalog)
    status = {c.name: c.status for c in result.checks}
    assert "pg_amcheck" in status, [(c.name, c.detail) for c in result.checks]
    assert status["pg_amcheck"] == "not run"
    amcheck = next(c for c in result.checks if c.name == "pg_amcheck")
    assert "superuser" in amcheck.detail
    assert all(s == "ok" for n, s in status.items() if n != "pg_amcheck"), status
    assert result.passed
    stored = catalog.get(rec.id).verifications[-1]
    assert stored.status == "passed"
    assert not pg_cluster.database_exists(result.scratch_db)


def test_create_database_owner_clause(pg_cluster: PgCluster) -> None:
    admin = PgTarget.from_url(pg_cluster.url())
    name = f"owned_{uuid.uuid4().hex[:8]}"
    with pg_cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mallory'").fetchone():
            conn.execute("CREATE ROLE mallory LOGIN")
    create_database(admin, name, owner="mallory")
    with pg_cluster.connect() as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    assert row == ("mallory",)
    pg_cluster.drop_database(name)

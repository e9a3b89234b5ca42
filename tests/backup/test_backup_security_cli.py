"""The security parts of ``plantops backup`` on the command line (issue #11 / #10)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from odoo_helpers import OdooDb
from tests.fixtures.postgres import PgCluster
from typer.testing import CliRunner

from plantops.backup.pg import PgTarget
from plantops.cli.main import app

pytestmark = pytest.mark.postgres


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_password_in_a_url_on_the_command_line_is_refused(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    code, out = _invoke(
        "backup", "run", "--db-url", "postgresql://u:hunter2@127.0.0.1:1/x", "--state-db", state
    )
    assert code == 2 and "--db-url carries a password" in out and "PGPASSFILE" in out
    assert "hunter2" not in out
    code, out = _invoke(
        "backup", "verify", "abc", "--server", "host=h password=hunter2", "--state-db", state
    )
    assert code == 2 and "--server carries a password" in out and "hunter2" not in out


def test_passfile_and_service_reach_the_client_tools(tmp_path: Path) -> None:
    t = PgTarget.from_url(f"postgresql://u@h/db?passfile={tmp_path}/pgpass")
    assert t.env()["PGPASSFILE"] == f"{tmp_path}/pgpass"
    assert "PGPASSWORD" not in t.env()
    assert PgTarget.from_url("service=plant dbname=x").env()["PGSERVICE"] == "plant"


def test_backup_cleanup_reclaims_a_killed_runs_database_and_role(
    pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    code = (
        f"import os, sys; sys.path[:0] = {[str(Path(__file__).resolve().parents[2] / 'src')]!r}\n"
        "from plantops.backup.pg import PgTarget\n"
        "from plantops.backup.restore import ScratchDatabase\n"
        f"db = ScratchDatabase(PgTarget.from_url({pg_cluster.url()!r}), 'x_restoring_dead01')\n"
        "print(db.role, flush=True); os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 9, proc.stderr
    role = proc.stdout.strip()
    assert pg_cluster.database_exists("x_restoring_dead01")
    # Without a server the database and role are reported, not forgotten.
    monkeypatch.delenv("PLANTOPS_RESTORE_DB_URL", raising=False)
    code_, out = _invoke("backup", "cleanup")
    assert code_ == 1 and "x_restoring_dead01: left: no server" in out
    # Its private directory (holding the role's password file) went at once.
    assert "/plantops-restore-" in out and ": removed" in out
    code_, out = _invoke("backup", "cleanup", "--server", pg_cluster.url(), "--format", "json")
    assert code_ == 0, out
    got = {(d["kind"], d["name"], d["reclaimed"]) for d in json.loads(out)}
    assert got == {("database", "x_restoring_dead01", True), ("role", role, True)}
    assert not pg_cluster.database_exists("x_restoring_dead01")
    code_, out = _invoke("backup", "cleanup", "--server", pg_cluster.url())
    assert code_ == 0 and "nothing to reclaim" in out


def test_verify_prints_the_checks_that_did_not_run(
    pg_cluster: PgCluster, odoo_db: OdooDb, tmp_path: Path
) -> None:
    with pg_cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'opsadmin'").fetchone():
            conn.execute("CREATE ROLE opsadmin LOGIN CREATEDB CREATEROLE")
    state = f"sqlite:///{tmp_path}/s.db"
    store = str(tmp_path / "store")
    code, out = _invoke(
        "backup",
        "run",
        "--db-url",
        odoo_db.url,
        "--filestore",
        str(odoo_db.filestore),
        "--store",
        store,
        "--state-db",
        state,
        "--format",
        "json",
    )
    assert code == 0, out
    bid = json.loads(out)["id"]
    server = f"postgresql://opsadmin@127.0.0.1:{pg_cluster.port}/postgres"
    code, out = _invoke("backup", "verify", bid, "--server", server, "--state-db", state)
    assert code == 0, out
    assert "PASSED (pg_amcheck not run)" in out
    assert "SKIP pg_amcheck: not run: installing the amcheck extension needs a superuser" in out

"""The tenant-group runbook's database steps, run as printed (psql, pg_dump | pg_restore)
on two real PostgreSQL clusters standing in for the live and the recovery CloudNativePG
clusters. Odoo cannot run here: its tables are reduced to what the steps touch
(``ir_cron.active``, the signaling sequences, a business table)."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.fixtures.postgres import PgCluster, pg_bindir, running_cluster

from plantops.render.recovery import (
    PAUSED_CRON_TABLE,
    DrPlan,
    restored_database,
    retired_database,
    tenant_create_sql,
    tenant_dump_argv,
    tenant_freeze_sql,
    tenant_prepare_sql,
    tenant_restore_argv,
    tenant_resume_cron_sql,
    tenant_swap_sql,
)
from plantops.services.backup import recovery_plan

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
WHEN = dt.datetime(2025, 3, 1, 14, 5, tzinfo=dt.UTC)


def _libpq(cluster: PgCluster) -> list[str]:
    return ["--host=127.0.0.1", f"--port={cluster.port}", "--username=postgres"]


def _psql(cluster: PgCluster, database: str, sql: str) -> str:
    """The runbook's ``psql -v ON_ERROR_STOP=1 -d DB <<'SQL'`` (here over TCP, not kubectl)."""
    proc = subprocess.run(
        [str(pg_bindir() / "psql"), *_libpq(cluster), "-v", "ON_ERROR_STOP=1", "-d", database],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _odoo_like(cluster: PgCluster, database: str, owner: str, moves: list[str]) -> None:
    with psycopg.connect(cluster.url(database), autocommit=True) as conn:
        conn.execute(f'SET ROLE "{owner}"')
        conn.execute("CREATE EXTENSION pg_trgm")
        conn.execute("CREATE TABLE ir_cron (id int PRIMARY KEY, active boolean)")
        conn.execute("INSERT INTO ir_cron VALUES (1, true), (2, false), (3, true)")
        conn.execute("CREATE TABLE stock_move (name text)")
        for m in moves:
            conn.execute("INSERT INTO stock_move VALUES (%s)", (m,))
        for seq in ("base_registry_signaling", "base_cache_signaling_default"):
            conn.execute(f"CREATE SEQUENCE {seq}")
            conn.execute(f"SELECT nextval('{seq}')")


def _tenant_cluster(cluster: PgCluster, plan: DrPlan, other: str) -> None:
    other_owner = other.replace("-", "_")
    with cluster.connect() as conn:
        for role in (plan.owner, other_owner):
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(
            f'CREATE ROLE "{plan.runtime_role}" LOGIN IN ROLE "{plan.owner}", "{other_owner}"'
        )
        conn.execute(f'CREATE DATABASE "{plan.database}" OWNER "{plan.owner}"')
        conn.execute(f'CREATE DATABASE "{other}" OWNER "{other_owner}"')
        conn.execute(
            f'ALTER ROLE "{plan.runtime_role}" IN DATABASE "{plan.database}"'
            f" SET role = '{plan.owner}'"
        )


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[PgCluster, PgCluster]]:
    """Live and recovery clusters, each with the tenant group's roles and databases."""
    plan = recovery_plan(EXAMPLE, "brno-components", "prod", WHEN)
    with running_cluster("plantops-live-") as live, running_cluster("plantops-rec-") as rec:
        for cluster in (live, rec):
            _tenant_cluster(cluster, plan, plan.shared_with[0])
        yield live, rec


def test_tenant_database_is_swapped_while_the_other_tenant_keeps_its_sessions(
    clusters: tuple[PgCluster, PgCluster],
) -> None:
    live, rec = clusters
    plan = recovery_plan(EXAMPLE, "brno-components", "prod", WHEN)
    (other,) = plan.shared_with
    _odoo_like(live, plan.database, plan.owner, ["before-target", "after-target"])
    _odoo_like(rec, plan.database, plan.owner, ["before-target"])  # recovered to the target

    # Odoo's sessions: one on the other tenant (must survive), one on this plant.
    other_session = psycopg.connect(
        f"postgresql://{plan.runtime_role}@127.0.0.1:{live.port}/{other}", autocommit=True
    )
    plant_session = psycopg.connect(
        f"postgresql://{plan.runtime_role}@127.0.0.1:{live.port}/{plan.database}",
        autocommit=True,
    )
    try:
        # 5. Copy beside the live database.
        _psql(live, "postgres", tenant_create_sql(plan))
        dump = subprocess.Popen(
            [str(pg_bindir() / "pg_dump"), *_libpq(rec), *tenant_dump_argv(plan)[1:]],
            stdout=subprocess.PIPE,
        )
        restore = subprocess.run(
            [str(pg_bindir() / "pg_restore"), *_libpq(live), *tenant_restore_argv(plan)[1:]],
            stdin=dump.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert dump.stdout is not None
        dump.stdout.close()
        assert dump.wait() == 0
        assert restore.returncode == 0, restore.stderr
        # 6. Prepare it; 8. close the damaged one; 9. swap.
        _psql(live, restored_database(plan), tenant_prepare_sql(plan))
        _psql(live, "postgres", tenant_freeze_sql(plan))
        with pytest.raises(psycopg.OperationalError):
            plant_session.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="not currently accepting"):
            psycopg.connect(live.url(plan.database)).close()
        _psql(live, "postgres", tenant_swap_sql(plan))

        # The other tenant never noticed.
        assert other_session.execute("SELECT current_database()").fetchone() == (other,)

        # Odoo reconnecting as the runtime role lands in the recovered data, as the plant.
        with psycopg.connect(
            f"postgresql://{plan.runtime_role}@127.0.0.1:{live.port}/{plan.database}"
        ) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (plan.owner,)
            names = [r[0] for r in conn.execute("SELECT name FROM stock_move").fetchall()]
            assert names == ["before-target"]
            owners = conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            assert owners == [(plan.owner,)]
            assert conn.execute("SELECT bool_or(active) FROM ir_cron").fetchone() == (False,)
            seqs = conn.execute(
                "SELECT min(last_value) FROM pg_sequences WHERE sequencename LIKE 'base_%'"
            ).fetchone()
            assert seqs is not None and seqs[0] > 1_000_000
        # The damaged database is kept, closed, under its new name.
        with live.connect() as conn:
            row = conn.execute(
                "SELECT datallowconn FROM pg_database WHERE datname = %s",
                (retired_database(plan),),
            ).fetchone()
            assert row == (False,)
            assert not live.database_exists(restored_database(plan))

        # Section 4: the plant's own cron jobs come back, exactly those that were active.
        _psql(live, plan.database, tenant_resume_cron_sql(plan))
        with psycopg.connect(live.url(plan.database)) as conn:
            active = conn.execute("SELECT id FROM ir_cron WHERE active ORDER BY id").fetchall()
            assert active == [(1,), (3,)]
            gone = conn.execute("SELECT to_regclass(%s)", (PAUSED_CRON_TABLE,)).fetchone()
            assert gone == (None,)
    finally:
        other_session.close()
        plant_session.close()


def test_a_second_swap_under_taken_names_changes_nothing(
    clusters: tuple[PgCluster, PgCluster],
) -> None:
    """The swap is one transaction: if the retired name is taken (a second recovery to
    the same target), neither database is renamed."""
    live, _rec = clusters
    plan = recovery_plan(EXAMPLE, "brno-components", "prod", WHEN)
    with live.connect() as conn:
        for db in (plan.database, retired_database(plan)):
            if not live.database_exists(db):
                conn.execute(f'CREATE DATABASE "{db}"')
        if live.database_exists(restored_database(plan)):
            conn.execute(f'DROP DATABASE "{restored_database(plan)}"')
    _psql(live, "postgres", tenant_create_sql(plan))
    proc = subprocess.run(
        [str(pg_bindir() / "psql"), *_libpq(live), "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=tenant_swap_sql(plan),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "already exists" in proc.stderr
    assert live.database_exists(plan.database)
    assert live.database_exists(restored_database(plan))

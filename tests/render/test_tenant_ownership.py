"""Shared multi-tenant: what Odoo creates in a plant's database is owned by that plant's role.

Odoo logs in as ``odoo``, a member of every plant role. The ``tenant-owner`` init
container sets ``odoo``'s per-database session role, so each Odoo session in a plant's
database runs as the plant's role. The real-PostgreSQL test builds the roles and
databases the rendered Cluster and Database objects describe and runs the rendered
init-container command itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from plantops.plan import Deployment
from tests.fixtures.postgres import PgCluster, running_cluster
from tests.render.conftest import Rendered

SHARED_UNIT = "shared-eu-subsidiaries"
INIT = "tenant-owner"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def _odoo_deployments(
    example: Rendered, dep: Deployment | None = None
) -> list[tuple[Deployment, dict[str, Any]]]:
    return [
        (d, o)
        for d, _p, o in example.objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] in {"web", "cron"}
        and (dep is None or d.id == dep.id)
    ]


def _tenant_init(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in _pod_spec(obj).get("initContainers", []) if c["name"] == INIT), None)


def _shared_prod(example: Rendered) -> Deployment:
    return next(
        d for d in example.deployments if d.unit == SHARED_UNIT and d.environment.name == "prod"
    )


def _objects_of(example: Rendered, dep: Deployment, kind: str) -> list[dict[str, Any]]:
    return [o for d, _p, o in example.objects if d.id == dep.id and o["kind"] == kind]


def test_every_shared_odoo_pod_sets_the_tenant_session_role(example: Rendered) -> None:
    shared = [d for d in example.deployments if d.pattern == "shared-multitenant"]
    multi = [d for d in shared if len(d.tenants) > 1]
    assert multi
    for dep in multi:
        deployments = _odoo_deployments(example, dep)
        assert {
            o["metadata"]["labels"]["app.kubernetes.io/component"] for _d, o in deployments
        } == {
            "web",
            "cron",
        }
        for _d, obj in deployments:
            init = _tenant_init(obj)
            assert init is not None, obj["metadata"]["name"]
            odoo = _pod_spec(obj)["containers"][0]
            # Same image, same hardening and the same credentials as Odoo itself.
            assert init["image"] == odoo["image"]
            assert init["securityContext"] == odoo["securityContext"]
            assert init["securityContext"]["readOnlyRootFilesystem"] is True
            assert init["resources"]["limits"]
            env = {e["name"]: e for e in init["env"]}
            odoo_env = {e["name"]: e for e in odoo["env"]}
            assert env["PGPASSFILE"] == odoo_env["PGPASSFILE"]
            assert "PGPASSWORD" not in env and "PGPASSWORD" not in odoo_env
            mounts = {m["name"]: m for m in init["volumeMounts"]}
            assert mounts["run"]["readOnly"] is True
            assert env["PGUSER"]["value"] == "odoo"
            assert init["command"][0] == "psql"
            text = " ".join(init["command"])
            for t in dep.tenants:
                owner = t.database.replace("-", "_")
                assert f"IN DATABASE \"{t.database}\" SET role = '{owner}'" in text


def test_dedicated_patterns_keep_logging_in_as_the_owner(example: Rendered) -> None:
    single = [d for d in example.deployments if len(d.tenants) == 1]
    assert any(d.pattern != "shared-multitenant" for d in single)
    for dep in single:
        for _d, obj in _odoo_deployments(example, dep):
            assert _tenant_init(obj) is None, obj["metadata"]["name"]


def _rendered_plan(
    example: Rendered,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    dep = _shared_prod(example)
    (cluster,) = _objects_of(example, dep, "Cluster")
    roles = cluster["spec"]["managed"]["roles"]
    databases = [o["spec"] for o in _objects_of(example, dep, "Database")]
    commands = [_tenant_init(o) for _d, o in _odoo_deployments(example, dep)]
    web, cron = (c["command"] for c in commands if c is not None)
    assert web == cron
    return roles, databases, web


def _create_as_cloudnativepg(
    pg: PgCluster, roles: list[dict[str, Any]], dbs: list[dict[str, Any]]
) -> None:
    """Roles and databases as the rendered ``managed.roles`` and ``Database`` specs say."""
    with pg.connect() as conn:
        for r in roles:
            flags = [
                "LOGIN" if r["login"] else "NOLOGIN",
                "INHERIT" if r["inherit"] else "NOINHERIT",
                "SUPERUSER" if r["superuser"] else "NOSUPERUSER",
                "CREATEDB" if r["createdb"] else "NOCREATEDB",
                "CREATEROLE" if r["createrole"] else "NOCREATEROLE",
                "REPLICATION" if r["replication"] else "NOREPLICATION",
                "BYPASSRLS" if r["bypassrls"] else "NOBYPASSRLS",
            ]
            conn.execute(
                sql.SQL("CREATE ROLE {} " + " ".join(flags) + " PASSWORD 'pw'").format(
                    sql.Identifier(r["name"])
                )
            )
        for r in roles:
            for parent in r.get("inRoles", []):
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(parent), sql.Identifier(r["name"])
                    )
                )
        for d in dbs:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(d["name"]), sql.Identifier(d["owner"])
                )
            )


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with running_cluster("plantops-tenancy-") as cluster:
        yield cluster


def _as(pg: PgCluster, role: str, db: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(f"postgresql://{role}:pw@127.0.0.1:{pg.port}/{db}", autocommit=True)


def _owner(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> str:
    row = conn.execute(
        "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = %s",
        (table,),
    ).fetchone()
    assert row is not None, table
    return str(row[0])


def _run_init(pg: PgCluster, command: list[str]) -> None:
    # The rendered argv as is; only where the server is differs (no TLS on this test server).
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": "odoo",
        "PGPASSWORD": "pw",
        "PGSSLMODE": "disable",
        "PGCONNECT_TIMEOUT": "10",
    }
    res = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "WARNING" not in res.stderr, res.stderr


def test_odoo_creates_tables_owned_by_the_plant_on_real_postgres(
    example: Rendered, pg: PgCluster
) -> None:
    roles, databases, command = _rendered_plan(example)
    owners = {d["name"]: d["owner"] for d in databases}
    assert len(owners) >= 2
    runtime = next(r for r in roles if r.get("inRoles"))
    assert runtime["name"] == "odoo"
    assert sorted(runtime["inRoles"]) == sorted(owners.values())
    _create_as_cloudnativepg(pg, roles, databases)
    (db_a, owner_a), (db_b, owner_b) = sorted(owners.items())[:2]

    # An installation from before the fix: Odoo created its tables as odoo.
    with _as(pg, "odoo", db_a) as conn:
        conn.execute("CREATE TABLE legacy_partner (id serial PRIMARY KEY)")
        assert _owner(conn, "legacy_partner") == "odoo"

    _run_init(pg, command)
    _run_init(pg, command)  # every pod start runs it again: idempotent

    for db, owner in owners.items():
        with _as(pg, "odoo", db) as conn:
            user, session = conn.execute("SELECT current_user, session_user").fetchone() or ()
            assert (user, session) == (owner, "odoo")
            conn.execute("CREATE TABLE res_partner (id serial PRIMARY KEY, name text)")
            conn.execute("INSERT INTO res_partner (name) VALUES (%s)", (db,))
            assert _owner(conn, "res_partner") == owner
            seq = conn.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'res_partner_id_seq'"
            ).fetchone()
            assert seq == (owner,)
            # PgBouncer (session mode) runs DISCARD ALL before handing the server
            # connection to the next client: the session role must survive it.
            conn.execute("DISCARD ALL")
            assert conn.execute("SELECT current_user").fetchone() == (owner,)

    with _as(pg, "odoo", db_a) as conn:
        assert _owner(conn, "legacy_partner") == owner_a  # migrated by REASSIGN OWNED
        assert conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> %s",
            (owner_a,),
        ).fetchone() == (0,)

    # Tenant A's role - what every Odoo session in A's database runs as - cannot read
    # tenant B's tables, nor change them.
    with _as(pg, "odoo", db_b) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner_a)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT name FROM res_partner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE res_partner")
    with (
        _as(pg, owner_a, db_b) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT name FROM res_partner")

    # The plant's own role can dump its database on its own: it owns everything in it.
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        res = subprocess.run(
            [pg_dump, "--schema-only", f"postgresql://{owner_b}:pw@127.0.0.1:{pg.port}/{db_b}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        assert f"OWNER TO {owner_b}" in res.stdout
        assert "OWNER TO odoo" not in res.stdout

"""The PostgreSQL edge: connections, client tools, snapshots and scratch databases.

Passwords travel in ``PGPASSWORD`` for the client tools, never on a command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from plantops.backup.errors import DatabaseError
from plantops.errors import UserError

_ENV_MAP = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


@dataclass(frozen=True)
class PgTarget:
    """One database reachable by libpq parameters (from a URL or conninfo string)."""

    params: tuple[tuple[str, str], ...]

    @classmethod
    def from_url(cls, url: str, default_db: str | None = None) -> PgTarget:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise UserError(f"database URL is not valid: {exc}") from exc
        if "dbname" not in params and default_db:
            params["dbname"] = default_db
        if "dbname" not in params:
            raise UserError("database URL names no database (postgresql://HOST/DBNAME)")
        return cls(tuple(sorted((k, str(v)) for k, v in params.items() if v is not None)))

    @property
    def dbname(self) -> str:
        return dict(self.params)["dbname"]

    def with_db(self, dbname: str) -> PgTarget:
        p = dict(self.params)
        p["dbname"] = dbname
        return PgTarget(tuple(sorted(p.items())))

    def conninfo(self) -> str:
        p = dict(self.params)
        p.setdefault("connect_timeout", "10")
        return make_conninfo(**p)

    def display(self) -> str:
        p = dict(self.params)
        host = p.get("host", "localhost")
        port = p.get("port", "5432")
        user = p.get("user", "")
        return f"postgresql://{user + '@' if user else ''}{host}:{port}/{p['dbname']}"

    def env(self) -> dict[str, str]:
        """Environment for libpq client tools (pg_dump, psql...)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        for key, value in self.params:
            if key in _ENV_MAP:
                env[_ENV_MAP[key]] = value
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        return env

    @contextlib.contextmanager
    def connect(self, autocommit: bool = True) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        try:
            conn = psycopg.connect(self.conninfo(), autocommit=autocommit)
        except psycopg.OperationalError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise DatabaseError(f"cannot connect to {self.display()}: {msg}") from exc
        try:
            yield conn
        except psycopg.Error as exc:
            raise DatabaseError(f"{self.display()}: {str(exc).strip()}") from exc
        finally:
            conn.close()


def server_major(target: PgTarget) -> int:
    with target.connect() as conn:
        return int(conn.info.server_version) // 10000


def find_pg_tool(name: str, major: int | None = None) -> str:
    """Path of a PostgreSQL client tool, preferring the server's major version."""
    candidates: list[str] = []
    if major is not None:
        candidates.append(f"/usr/lib/postgresql/{major}/bin/{name}")
    candidates.extend(
        sorted((str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), reverse=True)
    )
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return found
    raise DatabaseError(f"PostgreSQL tool {name} not found (apt install postgresql-client)")


def run_tool(
    cmd: Sequence[str], target: PgTarget, *, what: str, stdin: IO[bytes] | None = None
) -> str:
    """Run a client tool to completion; raise with its stderr on failure."""
    try:
        proc = subprocess.run(
            list(cmd),
            env=target.env(),
            stdin=stdin or subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise DatabaseError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise DatabaseError(f"{what} failed: {tool_error(proc.stderr)}")
    return proc.stdout.decode(errors="replace")


def tool_error(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return "; ".join(lines[-5:]) if lines else "no message"


def database_exists(admin: PgTarget, name: str) -> bool:
    with admin.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def create_database(admin: PgTarget, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'unicode' TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )


def drop_database(admin: PgTarget, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def rename_database(admin: PgTarget, old: str, new: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(old), sql.Identifier(new)
            )
        )


def admin_target(target: PgTarget) -> PgTarget:
    """The maintenance database on the same server."""
    return target.with_db("postgres")


USER_TABLES = """
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
 ORDER BY 1, 2
"""


def count_rows(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, int]:
    """Exact row count of every user table (``schema.table`` → count)."""
    counts: dict[str, int] = {}
    for schema, table in conn.execute(USER_TABLES).fetchall():
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def table_exists(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def odoo_manifest(conn: psycopg.Connection[tuple[Any, ...]], db_name: str) -> dict[str, Any]:
    """Odoo's database-manager manifest, with the keys and shapes Odoo writes.

    Odoo derives ``version`` from its own release; without Odoo at hand we derive it
    from the ``base`` module's version (``17.0.1.3`` → ``17.0``).
    """
    server_version = int(conn.info.server_version)
    # Odoo computes "%d.%d" % divmod(server_version / 100, 100): 150004 → "15.0".
    major, minor = divmod(server_version / 100, 100)
    pg_version = f"{int(major)}.{int(minor)}"
    modules: dict[str, str | None] = {}
    if table_exists(conn, "ir_module_module"):
        rows = conn.execute(
            "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
        ).fetchall()
        modules = {str(n): (None if v is None else str(v)) for n, v in rows}
    base = modules.get("base") or ""
    parts = base.split(".")
    version = ".".join(parts[:2]) if len(parts) >= 2 else ""
    version_info: list[Any] = []
    if version:
        maj, _, mino = version.partition(".")
        try:
            version_info = [int(maj), int(mino), 0, "final", 0, ""]
        except ValueError:
            version_info = [maj, mino, 0, "final", 0, ""]
    return {
        "odoo_dump": "1",
        "db_name": db_name,
        "version": version,
        "version_info": version_info,
        "major_version": version,
        "pg_version": pg_version,
        "modules": modules,
    }


@dataclass
class Snapshot:
    """A REPEATABLE READ transaction kept open while pg_dump reads its snapshot."""

    snapshot_id: str
    row_counts: dict[str, int]
    manifest: dict[str, Any]
    server_major: int


@contextlib.contextmanager
def exported_snapshot(target: PgTarget) -> Iterator[Snapshot]:
    """Export a snapshot; row counts and manifest are read inside that same snapshot."""
    with target.connect(autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snap = Snapshot(
            snapshot_id=str(row[0]),
            row_counts=count_rows(conn),
            manifest=odoo_manifest(conn, target.dbname),
            server_major=int(conn.info.server_version) // 10000,
        )
        try:
            yield snap
        finally:
            conn.rollback()


def copy_file_to(path: Path, dst: Any) -> None:
    with path.open("rb") as fh:
        shutil.copyfileobj(fh, dst, 1024 * 1024)

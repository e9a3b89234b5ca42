"""The PostgreSQL edge: connections, client tools, snapshots and scratch databases.

Passwords travel in ``PGPASSWORD`` or a password file for the client tools, never on a
command line. Child processes get a minimal environment: the few variables a client tool
needs, libpq's own ``PG*`` settings and the connection's parameters; nothing else of ours
(``PLANTOPS_*``, cloud credentials) reaches them.

Code in a dump runs with the privileges of the role that restores it (PostgreSQL's
pg_dump documentation says so). Restores therefore run as a throwaway, unprivileged
role that owns only the database being built (``create_restore_role``); the admin
connection only creates and drops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "sslcrl": "PGSSLCRL",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}

# What a client tool needs from our environment besides libpq's PG* variables.
_CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR")


def child_env(params: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The minimal environment of a PostgreSQL client tool."""
    env = {k: v for k, v in os.environ.items() if k in _CHILD_ENV or k.startswith("PG")}
    for key, value in params:
        if key in _ENV_MAP:
            env[_ENV_MAP[key]] = value
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def url_has_password(url: str) -> bool:
    """Whether a libpq URL or conninfo string carries a password (visible in ``ps``)."""
    try:
        return bool(conninfo_to_dict(url).get("password"))
    except psycopg.ProgrammingError:
        return False


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
        return child_env(self.params)

    def as_user(self, user: str, passfile: Path) -> PgTarget:
        """The same server and database as ``user``, its password read from ``passfile``."""
        p = {k: v for k, v in self.params if k not in ("password", "service", "user")}
        if "host" not in p:
            # A service file may be what names the host: keep it, minus its user.
            p.update({k: v for k, v in self.params if k == "service"})
        p["user"] = user
        p["passfile"] = str(passfile)
        return PgTarget(tuple(sorted(p.items())))

    def param(self, key: str) -> str | None:
        return dict(self.params).get(key)

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
    """The first ERROR line (the cause) and the last lines (where it stopped)."""
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return "no message"
    first_error = next((ln for ln in lines if "ERROR:" in ln), None)
    tail = lines[-4:]
    if first_error is not None and first_error not in tail:
        tail = [first_error, *tail]
    return "; ".join(tail)


def database_exists(admin: PgTarget, name: str) -> bool:
    with admin.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def database_oid(admin: PgTarget, name: str) -> int | None:
    """The database's oid: it stays when the database is renamed, so it tells a copy
    this run made from any other database that takes the name."""
    with admin.connect() as conn:
        row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return None if row is None else int(row[0])


def create_database(admin: PgTarget, name: str, owner: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {} ENCODING 'unicode' TEMPLATE template0").format(
        sql.Identifier(name)
    )
    if owner is not None:
        query = query + sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    with admin.connect() as conn:
        conn.execute(query)


def create_restore_role(admin: PgTarget, name: str, password: str) -> None:
    """A login role with no privilege but its own database: code in a dump runs as it."""
    with admin.connect() as conn:
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                " NOBYPASSRLS CONNECTION LIMIT 16 PASSWORD {}"
                " VALID UNTIL {}"
            ).format(
                sql.Identifier(name),
                sql.Literal(password),
                # A role left by a crash that nothing reclaims stops working within a day.
                sql.Literal(_valid_until()),
            )
        )
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (row and row[0]):
            # A CREATEROLE admin must be a member to create a database owned by the role
            # (commands/dbcommands.c createdb: check_can_set_role) and to REASSIGN OWNED.
            # Membership goes this way only: the restore role gains nothing.
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(name)))


def _valid_until() -> str:
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return until.strftime("%Y-%m-%d %H:%M:%S+00")


def drop_role(admin: PgTarget, name: str) -> None:
    """Drop a restore role, first removing what it still owns or was granted anywhere."""
    with admin.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists is None:
            return
        # pg_shdepend: the databases holding objects or grants of the role.
        dbs = conn.execute(
            "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)"
            " AND d.datallowconn",
            (name,),
        ).fetchall()
    for (db,) in dbs:
        with admin.with_db(str(db)).connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
    with admin.connect() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def hand_over(db: PgTarget, role: str, to: str) -> None:
    """Give everything ``role`` owns in ``db`` (and ``db`` itself) to ``to``, as admin."""
    with db.connect() as conn:
        conn.execute(
            sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(role), sql.Identifier(to))
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))


def current_user(target: PgTarget) -> tuple[str, bool]:
    """The admin's role name and whether it is a superuser."""
    with target.connect() as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


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


def move_database(admin: PgTarget, old: str, new: str, attempts: int = 5) -> None:
    """Rename a database that may be in use: its sessions are ended first (as ``DROP
    DATABASE … WITH (FORCE)`` would), retried while new ones keep arriving."""
    for attempt in range(attempts):
        with admin.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (old,),
            )
            try:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(old), sql.Identifier(new)
                    )
                )
                return
            except psycopg.errors.ObjectInUse:
                if attempt == attempts - 1:
                    raise


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

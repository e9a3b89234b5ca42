"""Opening the state database (running migrations) and the backup catalog repository.

The repository hands out frozen records, never live ORM objects, so callers cannot
mutate the database by accident and sessions never leak out of this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from plantops.errors import InfrastructureError, UserError
from plantops.store.events import event_order_lock, event_row
from plantops.store.models import Backup, BackupObject, Verification

DEFAULT_DB_URL = "sqlite:///.plantops/state.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# backup statuses that end a backup without one (a ``backup.failed`` event on entry)
FAILED_STATUSES = frozenset({"failed", "abandoned"})
# pg_advisory_xact_lock key held while migrating ("plantops" as an int64).
MIGRATION_LOCK = 0x706C616E746F7073


def default_db_url() -> str:
    """``PLANTOPS_DB`` or the embedded SQLite file in the working directory."""
    return os.environ.get("PLANTOPS_DB") or DEFAULT_DB_URL


def _utc(value: datetime | None) -> datetime | None:
    # SQLite drops the zone on the way back; every timestamp plantops writes is UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ObjectRecord:
    name: str
    size_bytes: int
    sha256: str
    encrypted: bool = False


@dataclass(frozen=True)
class VerificationRecord:
    id: int
    backup_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rto_seconds: float | None
    rto_objective_seconds: float | None
    rpo_seconds: float | None
    rpo_objective_seconds: float | None
    checks: dict[str, Any]
    error: str


@dataclass(frozen=True)
class BackupRecord:
    id: str
    plant: str
    env: str
    tier: str
    format: str
    status: str
    store_url: str
    location: str
    db_name: str
    pg_version: str
    odoo_version: str
    key_id: str | None
    size_bytes: int
    started_at: datetime
    finished_at: datetime | None
    host: str
    pid: int
    error: str
    manifest: dict[str, Any]
    row_counts: dict[str, Any]
    objects: tuple[ObjectRecord, ...] = ()
    verifications: tuple[VerificationRecord, ...] = field(default=())
    policy: dict[str, Any] = field(default_factory=dict)
    source: str = "run"
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def last_verification(self) -> VerificationRecord | None:
        return self.verifications[-1] if self.verifications else None

    @property
    def verified(self) -> bool:
        """True when at least one verification passed."""
        return any(v.status == "passed" for v in self.verifications)


def _verification_record(v: Verification) -> VerificationRecord:
    return VerificationRecord(
        id=v.id,
        backup_id=v.backup_id,
        status=v.status,
        started_at=_utc(v.started_at) or v.started_at,
        finished_at=_utc(v.finished_at),
        rto_seconds=v.rto_seconds,
        rto_objective_seconds=v.rto_objective_seconds,
        rpo_seconds=v.rpo_seconds,
        rpo_objective_seconds=v.rpo_objective_seconds,
        checks=dict(v.checks or {}),
        error=v.error,
    )


def _record(b: Backup) -> BackupRecord:
    return BackupRecord(
        id=b.id,
        plant=b.plant,
        env=b.env,
        tier=b.tier,
        format=b.format,
        status=b.status,
        store_url=b.store_url,
        location=b.location,
        db_name=b.db_name,
        pg_version=b.pg_version,
        odoo_version=b.odoo_version,
        key_id=b.key_id,
        size_bytes=b.size_bytes,
        started_at=_utc(b.started_at) or b.started_at,
        finished_at=_utc(b.finished_at),
        host=b.host,
        pid=b.pid,
        error=b.error,
        manifest=dict(b.manifest or {}),
        row_counts=dict(b.row_counts or {}),
        objects=tuple(ObjectRecord(o.name, o.size_bytes, o.sha256, o.encrypted) for o in b.objects),
        verifications=tuple(_verification_record(v) for v in b.verifications),
        policy=dict(b.policy or {}),
        source=b.source or "run",
        origin=dict(b.origin or {}),
    )


class SessionRepository:
    """A repository over one engine: ``_session()`` is one transaction, and a database
    error leaves it as an :class:`InfrastructureError` naming the database (password
    hidden). The backup catalog and the server's store share it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise InfrastructureError(f"state database {self._where()}: {db_reason(exc)}") from exc

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled Core connection for a read that needs no ORM session (the per-request
        token check); closed (its implicit transaction rolled back) on the way out."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise InfrastructureError(f"state database {self._where()}: {db_reason(exc)}") from exc

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


class Catalog(SessionRepository):
    """Repository over the backup tables of the state database."""

    # --- backups ------------------------------------------------------------------
    def create_backup(
        self,
        *,
        backup_id: str,
        plant: str,
        env: str,
        tier: str,
        fmt: str,
        store_url: str,
        location: str,
        started_at: datetime,
        host: str,
        pid: int,
        key_id: str | None,
        db_name: str,
        policy: dict[str, Any] | None = None,
        source: str = "run",
        origin: dict[str, Any] | None = None,
    ) -> None:
        with self._session() as s:
            s.add(
                Backup(
                    id=backup_id,
                    plant=plant,
                    env=env,
                    tier=tier,
                    format=fmt,
                    status="running",
                    store_url=store_url,
                    location=location,
                    db_name=db_name,
                    pg_version="",
                    odoo_version="",
                    key_id=key_id,
                    size_bytes=0,
                    started_at=started_at,
                    host=host,
                    pid=pid,
                    error="",
                    manifest={},
                    row_counts={},
                    policy=dict(policy or {}),
                    source=source,
                    origin=dict(origin or {}),
                )
            )

    def complete_backup(
        self,
        backup_id: str,
        *,
        objects: Sequence[ObjectRecord],
        manifest: dict[str, Any],
        row_counts: dict[str, int],
        pg_version: str,
        odoo_version: str,
        finished_at: datetime,
        origin: dict[str, Any] | None = None,
    ) -> None:
        """Record the objects and mark the backup complete, in one transaction.

        ``origin`` is merged into the recorded origin (e.g. the filestore entries skipped)."""
        with self._session() as s:
            b = s.get_one(Backup, backup_id)
            for o in objects:
                b.objects.append(
                    BackupObject(
                        name=o.name, size_bytes=o.size_bytes, sha256=o.sha256, encrypted=o.encrypted
                    )
                )
            b.size_bytes = sum(o.size_bytes for o in objects)
            b.manifest = manifest
            b.row_counts = dict(row_counts)
            b.pg_version = pg_version
            b.odoo_version = odoo_version
            b.finished_at = finished_at
            if origin:
                b.origin = {**(b.origin or {}), **origin}
            b.status = "complete"
            event_order_lock(s)
            s.add(
                event_row(
                    "backup.taken",
                    b.plant,
                    backup_id,
                    "",
                    finished_at,
                    {"env": b.env, "size_bytes": b.size_bytes, "format": b.format},
                )
            )

    def set_status(
        self, backup_id: str, status: str, *, error: str = "", finished_at: datetime | None = None
    ) -> None:
        with self._session() as s:
            b = s.get_one(Backup, backup_id)
            failed_now = status in FAILED_STATUSES and b.status not in FAILED_STATUSES
            b.status = status
            if error:
                b.error = error
            if finished_at is not None:
                b.finished_at = finished_at
            if failed_now:
                event_order_lock(s)
                s.add(
                    event_row(
                        "backup.failed",
                        b.plant,
                        backup_id,
                        "",
                        finished_at or datetime.now(UTC),
                        {"env": b.env, "status": status, "error": (error or b.error or "")[:500]},
                    )
                )

    def discard_backup(self, backup_id: str) -> None:
        """Delete a backup that never completed (its row, objects and verifications).

        For imports, which leave no trace when they fail; a complete backup is never
        discarded (``prune`` marks those ``deleted``).
        """
        with self._session() as s:
            b = s.get(Backup, backup_id)
            if b is not None and b.status != "complete":
                s.delete(b)

    def get(self, backup_id: str) -> BackupRecord:
        with self._session() as s:
            b = s.get(Backup, backup_id)
            if b is None:
                matches = list(s.scalars(select(Backup).where(Backup.id.startswith(backup_id))))
                if len(matches) != 1:
                    raise UserError(
                        f"no backup with id {backup_id!r} in the catalog ({self._where()});"
                        " see `plantops backup list`"
                    )
                b = matches[0]
            return _record(b)

    def list_backups(
        self,
        *,
        plant: str | None = None,
        env: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[BackupRecord]:
        """Backups newest first, optionally filtered."""
        with self._session() as s:
            q = select(Backup)
            if plant:
                q = q.where(Backup.plant == plant)
            if env:
                q = q.where(Backup.env == env)
            if statuses:
                q = q.where(Backup.status.in_(list(statuses)))
            q = q.order_by(Backup.started_at.desc(), Backup.id.desc())
            return [_record(b) for b in s.scalars(q)]

    def newest_verified_at(self, plants: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """When the newest complete backup with a passed verification finished, per
        (plant, env) of these plants: one query, however many backups there are."""
        with self._session() as s:
            q = (
                select(Backup.plant, Backup.env, func.max(Backup.finished_at))
                .join(Verification, Verification.backup_id == Backup.id)
                .where(
                    Backup.status == "complete",
                    Verification.status == "passed",
                    Backup.plant.in_(list(plants)),
                )
                .group_by(Backup.plant, Backup.env)
            )
            found: dict[tuple[str, str], datetime] = {}
            for plant, env, at in s.execute(q):
                when = _utc(at)
                if when is not None:
                    found[(plant, env)] = when
            return found

    # --- verifications ------------------------------------------------------------
    def add_verification(
        self,
        backup_id: str,
        *,
        status: str,
        started_at: datetime,
        finished_at: datetime,
        rto_seconds: float | None,
        rto_objective_seconds: float | None,
        rpo_seconds: float | None,
        rpo_objective_seconds: float | None,
        checks: dict[str, Any],
        error: str = "",
    ) -> int:
        with self._session() as s:
            v = Verification(
                backup_id=backup_id,
                status=status,
                started_at=started_at,
                finished_at=finished_at,
                rto_seconds=rto_seconds,
                rto_objective_seconds=rto_objective_seconds,
                rpo_seconds=rpo_seconds,
                rpo_objective_seconds=rpo_objective_seconds,
                checks=checks,
                error=error,
            )
            s.add(v)
            b = s.get(Backup, backup_id)
            if b is not None:
                event_order_lock(s)
                s.add(
                    event_row(
                        "backup.verified" if status == "passed" else "backup.verify-failed",
                        b.plant,
                        backup_id,
                        "",
                        finished_at,
                        {
                            "env": b.env,
                            "status": status,
                            "rto_seconds": rto_seconds,
                            "rpo_seconds": rpo_seconds,
                        },
                    )
                )
            s.flush()
            return int(v.id)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def db_reason(exc: SQLAlchemyError) -> str:
    """The driver's own words (libpq's ``connection refused … Is the server running``),
    without SQLAlchemy's wrapper and its link to sqlalche.me."""
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig if orig is not None else exc).split())


def make_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` means psycopg 3; SQLite dirs are created."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise UserError(
            f"state database URL {url!r} is not valid ({exc}); expected sqlite:///PATH"
            " or postgresql://USER@HOST[:PORT]/DBNAME"
        ) from exc
    backend = parsed.drivername.partition("+")[0]
    if backend not in ("sqlite", "postgresql", "postgres"):
        # SQLAlchemy would look for a dialect plug-in and fail with NoSuchModuleError.
        raise UserError(
            f"state database URL scheme {parsed.drivername!r} is not supported: use"
            " sqlite:///PATH (the default) or postgresql://USER@HOST/DBNAME"
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            db_file = Path(parsed.database)
            try:
                db_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # The catalog names every backup and its checks: private to its owner.
                # SQLite creates its -wal/-shm files with the main file's mode.
                os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            except OSError as exc:
                raise UserError(
                    f"state database {db_file} cannot be created: {exc.strerror}"
                ) from exc
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two servers starting against one PostgreSQL must not both create the
                # tables: the second waits here, then finds the schema at head.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise InfrastructureError(f"cannot open state database {where}: {db_reason(exc)}") from exc


def open_catalog(url: str | None = None) -> Catalog:
    """Open (and migrate) the state database at ``url`` or the default."""
    engine = make_engine(url or default_db_url())
    migrate(engine)
    return Catalog(engine)

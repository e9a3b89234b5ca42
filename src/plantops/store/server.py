"""State the control-plane server keeps: API tokens and the platform event log.

Tokens are stored as the SHA-256 of a 32-byte random secret (the secret has 256 bits
of entropy, so a fast hash is enough; nothing derived from a password is stored).
The plaintext token is returned once by :meth:`ServerStore.create_token` and never
kept. Events are appended in the same transaction as whatever they report when the
writer owns that transaction, and read back by id (a cursor), so two server
processes against one PostgreSQL see one ordered log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, bindparam, case, func, select
from sqlalchemy.orm import Mapped, mapped_column

from plantops.errors import NotFound, UserError
from plantops.store.catalog import SessionRepository, make_engine, migrate
from plantops.store.events import Event, event_order_lock, event_row
from plantops.store.models import Base

TOKEN_PREFIX = "pot_"
ROLES = ("platform-engineer", "release-manager", "plant-it", "auditor", "viewer")
EVENT_TYPES = (
    "plan.written",
    "backup.taken",
    "backup.verified",
    "backup.verify-failed",
    "backup.failed",
    "probe.checked",
    "probe.changed",
    "policy.checked",
    "release.created",
    "release.promoted",
    "release.approved",
    "release.rolled-back",
    "release.break-glass",
    "token.created",
    "token.revoked",
    "webhook.created",
    "webhook.removed",
    "webhook.secret-rotated",
)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    plants: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str
    plants: tuple[str, ...]
    subject: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: str
    plant: str
    subject: str
    actor: str
    time: datetime
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "plant": self.plant,
            "subject": self.subject,
            "actor": self.actor,
            "time": self.time.isoformat(),
            "data": self.data,
        }


def _token_record(t: ApiToken) -> TokenRecord:
    return TokenRecord(
        id=t.id,
        role=t.role,
        plants=tuple(t.plants or ()),
        subject=t.subject,
        created_at=_utc(t.created_at) or t.created_at,
        expires_at=_utc(t.expires_at),
        revoked_at=_utc(t.revoked_at),
    )


# One statement object for every request: SQLAlchemy's compiled cache is keyed on it, so
# it is compiled once per engine and dialect.
_TOKEN_BY_ID = select(
    ApiToken.secret_sha256,
    ApiToken.role,
    ApiToken.plants,
    ApiToken.subject,
    ApiToken.created_at,
    ApiToken.expires_at,
    ApiToken.revoked_at,
).where(ApiToken.id == bindparam("id"))


def event_record(e: Event) -> EventRecord:
    return EventRecord(
        e.id, e.type, e.plant, e.subject, e.actor, _utc(e.time) or e.time, dict(e.data or {})
    )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ServerStore(SessionRepository):
    """Repository over ``api_tokens`` and ``events``; hands out frozen records."""

    # --- tokens -------------------------------------------------------------------
    def create_token(
        self,
        *,
        role: str,
        plants: Sequence[str] = (),
        expires_at: datetime | None = None,
        subject: str = "",
        now: datetime,
    ) -> tuple[str, TokenRecord]:
        """A new token: (the plaintext, shown once; its record)."""
        if role not in ROLES:
            raise UserError(f"--role {role!r}: not a role; use one of {', '.join(ROLES)}")
        if role == "plant-it" and not plants:
            raise UserError("--role plant-it needs at least one --plant CODE (its scope)")
        if role != "plant-it" and plants:
            raise UserError(f"--plant scopes only plant-it tokens; {role} sees every plant")
        if expires_at is not None and expires_at <= now:
            raise UserError(f"--expires {expires_at.date()} is not in the future")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = ApiToken(
            id=token_id,
            secret_sha256=hash_secret(secret),
            role=role,
            plants=sorted(set(plants)),
            subject=subject or f"token:{token_id}",
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        with self._session() as s:
            s.add(row)
            event_order_lock(s)
            s.add(event_row("token.created", "", token_id, subject, now, {"role": role}))
        return f"{TOKEN_PREFIX}{token_id}_{secret}", _token_record(row)

    def revoke_token(self, token_id: str, *, now: datetime, actor: str = "") -> TokenRecord:
        with self._session() as s:
            t = s.get(ApiToken, token_id)
            if t is None:
                raise NotFound(f"no token with id {token_id!r}; see `plantops token list`")
            if t.revoked_at is None:
                t.revoked_at = now
                event_order_lock(s)
                s.add(event_row("token.revoked", "", token_id, actor, now, {}))
            return _token_record(t)

    def list_tokens(self) -> list[TokenRecord]:
        with self._session() as s:
            rows = s.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id))
            return [_token_record(t) for t in rows]

    def authenticate(self, token: str, *, now: datetime) -> TokenRecord | None:
        """The active token ``token`` names, or None (unknown, malformed, expired, revoked).

        Asked of the database on every request (a revocation by another process counts at
        once), as one Core statement on a pooled connection: no ORM session, unit of work
        or identity map per request (~0.04 ms against ~0.2 ms for ``Session.get`` on
        SQLite; BENCHMARKS.md)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
        if not sep or len(token_id) > 16:
            return None
        with self._connection() as c:
            row = c.execute(_TOKEN_BY_ID, {"id": token_id}).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, hash_secret(secret)):
            return None
        record = TokenRecord(
            id=token_id,
            role=row.role,
            plants=tuple(row.plants or ()),
            subject=row.subject,
            created_at=_utc(row.created_at) or row.created_at,
            expires_at=_utc(row.expires_at),
            revoked_at=_utc(row.revoked_at),
        )
        return record if record.state(now) == "active" else None

    # --- events -------------------------------------------------------------------
    def append_event(
        self,
        type_: str,
        *,
        plant: str = "",
        subject: str = "",
        actor: str = "",
        data: dict[str, Any] | None = None,
        now: datetime,
    ) -> int:
        with self._session() as s:
            event_order_lock(s)
            row = event_row(type_, plant, subject, actor, now, data or {})
            s.add(row)
            s.flush()
            return int(row.id)

    def events_after(
        self, after: int = 0, *, limit: int = 100, plant: str | None = None
    ) -> list[EventRecord]:
        with self._session() as s:
            q = select(Event).where(Event.id > after)
            if plant:
                q = q.where(Event.plant == plant)
            q = q.order_by(Event.id).limit(limit)
            return [event_record(e) for e in s.scalars(q)]

    def newest_event(self, type_: str, *, subjects: Sequence[str]) -> EventRecord | None:
        """The newest event of ``type_`` about one of ``subjects``, if any."""
        with self._session() as s:
            q = (
                select(Event)
                .where(Event.type == type_, Event.subject.in_(list(subjects)))
                .order_by(Event.id.desc())
                .limit(1)
            )
            found = s.scalars(q).first()
            return event_record(found) if found is not None else None

    def latest_events(
        self, type_: str, *, plants: Sequence[str]
    ) -> dict[tuple[str, str], EventRecord]:
        """The newest event of ``type_`` per (plant, subject), for these plants."""
        with self._session() as s:
            newest = (
                select(func.max(Event.id))
                .where(Event.type == type_, Event.plant.in_(list(plants)))
                .group_by(Event.plant, Event.subject)
            )
            rows = s.scalars(select(Event).where(Event.id.in_(newest)))
            return {(e.plant, e.subject): event_record(e) for e in rows}

    def outcome_counts(
        self,
        type_: str,
        *,
        plants: Sequence[str],
        edges: Sequence[datetime],
        until: datetime,
    ) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Per (plant, subject) of these plants: for each of ``edges``, (events, events
        whose ``data.ok`` is not true) of ``type_`` with ``edge < time <= until``. One
        grouped query whatever the number of plants (``probe.checked`` → SLO burn)."""
        if not plants or not edges:
            return {}
        utc = [e.astimezone(UTC) for e in edges]
        end = until.astimezone(UTC)
        bad = Event.data["ok"].as_boolean().is_not(True)
        columns = []
        for edge in utc:
            columns.append(func.sum(case((Event.time > edge, 1), else_=0)))
            columns.append(func.sum(case(((Event.time > edge) & bad, 1), else_=0)))
        q = (
            select(Event.plant, Event.subject, *columns)
            .where(
                Event.type == type_,
                Event.plant.in_(list(plants)),
                Event.time > min(utc),
                Event.time <= end,
            )
            .group_by(Event.plant, Event.subject)
        )
        out: dict[tuple[str, str], list[tuple[int, int]]] = {}
        with self._session() as s:
            for row in s.execute(q):
                counts = [int(v or 0) for v in row[2:]]
                out[(row[0], row[1])] = [
                    (counts[2 * i], counts[2 * i + 1]) for i in range(len(utc))
                ]
        return out


def open_server_store(url: str) -> ServerStore:
    """Open (and migrate) the state database for the server's tables."""
    engine = make_engine(url)
    migrate(engine)
    return ServerStore(engine)

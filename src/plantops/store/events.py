"""The platform event log's table, shared by every writer in the store.

Writers add an event in the same transaction as the change it reports (a backup
completed, a verification recorded, a token revoked), so the log never claims what
did not commit and never misses what did. The same transaction writes the event's
webhook deliveries (:func:`fan_out`, the transactional outbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Integer,
    String,
    Text,
    column,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.event import listens_for
from sqlalchemy.orm import Mapped, Session, mapped_column

from plantops.store.models import Base


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    plant: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


# Readers page by id: on PostgreSQL a transaction holding a lower id could commit after
# one holding a higher id, and a reader between the two would skip it for good. Event
# writers therefore take this transaction lock first, so ids commit in order.
EVENT_ORDER_LOCK = 0x706C6F6576656E74
# `plantops probe run --state-db`: the newest probe result of a plant's environment
# (plant, subject = the environment), what the server's fleet page shows as health.
PROBE_CHECKED = "probe.checked"
PROBE_CHANGED = "probe.changed"  # a probed deployment went from pass to fail or back


def event_order_lock(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENT_ORDER_LOCK})


def event_row(
    type_: str, plant: str, subject: str, actor: str, now: datetime, data: dict[str, Any]
) -> Event:
    return Event(type=type_, plant=plant, subject=subject, actor=actor, time=now, data=data)


# --- the webhook outbox -----------------------------------------------------------------
# Every event row fans out, in its own transaction, into one ``webhook_deliveries`` row per
# registered (enabled) webhook that wants its type: the transactional outbox the delivery
# worker drains (plantops.store.webhooks). Core constructs, so writers that use the ORM
# (the ``after_insert`` hook below) and writers on a bare Connection (the ledger) share it.
_webhooks = table(
    "webhooks",
    column("id", String),
    column("types", JSON),
    column("disabled_at", DateTime(timezone=True)),
)
_deliveries = table(
    "webhook_deliveries",
    column("webhook_id", String),
    column("event_id", Integer),
    column("plant", String),
    column("status", String),
    column("attempts", Integer),
    column("next_attempt_at", DateTime(timezone=True)),
    column("last_error", Text),
)


def type_matches(pattern: str, event_type: str) -> bool:
    """``backup.taken`` matches itself; ``backup.*`` every ``backup.`` type."""
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def wants(types: Sequence[str], event_type: str) -> bool:
    """Whether a webhook with the type filter ``types`` (none: all) receives the type."""
    return not types or any(type_matches(p, event_type) for p in types)


def fan_out(conn: Connection, events: Sequence[tuple[int, str, str, datetime]]) -> int:
    """One pending delivery per (event, webhook that wants it) for ``events`` as
    (id, type, plant, time), on ``conn`` (inside the events' transaction)."""
    hooks: list[tuple[str, list[str] | None]] = [
        (str(r[0]), r[1])
        for r in conn.execute(
            select(_webhooks.c.id, _webhooks.c.types).where(_webhooks.c.disabled_at.is_(None))
        )
    ]
    rows = [
        {
            "webhook_id": hook_id,
            "event_id": event_id,
            "plant": plant,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": when,
            "last_error": "",
        }
        for event_id, type_, plant, when in events
        for hook_id, types in hooks
        if wants(types or (), type_)
    ]
    if rows:
        conn.execute(insert(_deliveries), rows)
    return len(rows)


@listens_for(Event, "after_insert")
def _outbox(_mapper: Any, conn: Connection, target: Event) -> None:
    fan_out(conn, [(target.id, target.type, target.plant or "", target.time)])


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Append events on a bare ``conn`` (writers outside the ORM, e.g. the ledger) with
    their outbox rows, under the event order lock; their ids."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENT_ORDER_LOCK})
    ids = []
    for row in rows:
        result = conn.execute(insert(Event).values(**row))
        pk = result.inserted_primary_key
        assert pk is not None
        ids.append(int(pk[0]))
    fan_out(
        conn,
        [(i, r["type"], r.get("plant", ""), r["time"]) for i, r in zip(ids, rows, strict=True)],
    )
    return ids

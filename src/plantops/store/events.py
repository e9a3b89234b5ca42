"""The platform event log's table, shared by every writer in the store.

Writers add an event in the same transaction as the change it reports (a backup
completed, a verification recorded, a token revoked), so the log never claims what
did not commit and never misses what did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, text
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


def event_order_lock(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENT_ORDER_LOCK})


def event_row(
    type_: str, plant: str, subject: str, actor: str, now: datetime, data: dict[str, Any]
) -> Event:
    return Event(type=type_, plant=plant, subject=subject, actor=actor, time=now, data=data)

"""ORM tables of the state database.

Designed for the whole control plane: a deployment is ``(plant, env)`` everywhere;
backups, their objects and their verifications live here now, the release ledger
and server sessions will add their own tables through new migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

BACKUP_STATUSES = ("running", "complete", "failed", "abandoned", "deleted")


class Base(DeclarativeBase):
    """Declarative base of every plantops table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Backup(Base):
    """One backup of one deployment. Only ``complete`` backups may be restored."""

    __tablename__ = "backups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plant: Mapped[str] = mapped_column(String(64))
    env: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(32), default="")
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="running")
    store_url: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text)
    db_name: Mapped[str] = mapped_column(String(128), default="")
    pg_version: Mapped[str] = mapped_column(String(32), default="")
    odoo_version: Mapped[str] = mapped_column(String(32), default="")
    key_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    row_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The objectives (tier policy) the backup was taken under; {} for older rows.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # How the backup came in: "run" (taken by plantops) or "imported" (a zip made by
    # Odoo's database manager); origin holds the imported file's name, sha256, sizes.
    source: Mapped[str] = mapped_column(String(16), default="run", server_default="run")
    origin: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")

    objects: Mapped[list[BackupObject]] = relationship(
        back_populates="backup", cascade="all, delete-orphan", order_by="BackupObject.name"
    )
    verifications: Mapped[list[Verification]] = relationship(
        back_populates="backup", cascade="all, delete-orphan", order_by="Verification.started_at"
    )

    __table_args__ = (
        Index("ix_backups_deployment", "plant", "env", "started_at"),
        Index("ix_backups_status", "status"),
    )


class BackupObject(Base):
    """One stored object of a backup, with the checksum checked on every read."""

    __tablename__ = "backup_objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backup_id: Mapped[str] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    encrypted: Mapped[bool] = mapped_column(default=False)

    backup: Mapped[Backup] = relationship(back_populates="objects")

    __table_args__ = (Index("ix_backup_objects_backup", "backup_id", "name", unique=True),)


class Verification(Base):
    """One restore test of a backup, with measured RTO/RPO against the objectives."""

    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backup_id: Mapped[str] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    rto_seconds: Mapped[float | None] = mapped_column(nullable=True)
    rto_objective_seconds: Mapped[float | None] = mapped_column(nullable=True)
    rpo_seconds: Mapped[float | None] = mapped_column(nullable=True)
    rpo_objective_seconds: Mapped[float | None] = mapped_column(nullable=True)
    checks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")

    backup: Mapped[Backup] = relationship(back_populates="verifications")

    __table_args__ = (Index("ix_verifications_backup", "backup_id", "started_at"),)


class LedgerEntry(Base):
    """One append-only entry of the release ledger (hash-chained per ``chain``).

    ``hash`` is SHA-256 over ``prev_hash`` and the canonical JSON of the other fields
    (``plantops.store.ledger.entry_hash``); ``(chain, seq)`` is unique, so two writers
    can never both append entry *n*.
    """

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    release_id: Mapped[str] = mapped_column(String(80), default="")
    stage: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    # ISO 8601 UTC text, not DateTime: the hash covers exactly these characters.
    recorded_at: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_ledger_chain_seq"),
        Index("ix_ledger_release", "release_id", "stage", "kind"),
    )


class LedgerHead(Base):
    """The newest entry of each chain: the row a writer locks (``SELECT … FOR UPDATE``)."""

    __tablename__ = "ledger_heads"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class PromotionClaim(Base):
    """One (release, stage, plant) promotion: the primary key makes exactly one win."""

    __tablename__ = "promotion_claims"

    release_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64), primary_key=True)
    plant: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)

"""Backup catalog: backups, backup_objects, verifications.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("plant", sa.String(64), nullable=False),
        sa.Column("env", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("store_url", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("db_name", sa.String(128), nullable=False),
        sa.Column("pg_version", sa.String(32), nullable=False),
        sa.Column("odoo_version", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("row_counts", sa.JSON, nullable=False),
    )
    op.create_index("ix_backups_deployment", "backups", ["plant", "env", "started_at"])
    op.create_index("ix_backups_status", "backups", ["status"])
    op.create_table(
        "backup_objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "backup_id",
            sa.String(32),
            sa.ForeignKey("backups.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("encrypted", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_backup_objects_backup", "backup_objects", ["backup_id", "name"], unique=True
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "backup_id",
            sa.String(32),
            sa.ForeignKey("backups.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rto_seconds", sa.Float, nullable=True),
        sa.Column("rto_objective_seconds", sa.Float, nullable=True),
        sa.Column("rpo_seconds", sa.Float, nullable=True),
        sa.Column("rpo_objective_seconds", sa.Float, nullable=True),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index("ix_verifications_backup", "verifications", ["backup_id", "started_at"])


def downgrade() -> None:
    op.drop_table("verifications")
    op.drop_table("backup_objects")
    op.drop_table("backups")

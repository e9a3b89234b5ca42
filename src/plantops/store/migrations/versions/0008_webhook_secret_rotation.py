"""Signing-secret rotation for webhooks: the secret a rotation replaced stays sealed next
to the new one (``previous_secret``, ``previous_key_id``) and keeps signing deliveries
until ``previous_until``. Nullable: a webhook registered before, or never rotated, has
one secret.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN of a nullable column without a default: plain ALTER TABLE on both SQLite
    # and PostgreSQL, no table copy, the existing rows untouched
    op.add_column("webhooks", sa.Column("previous_secret", sa.Text, nullable=True))
    op.add_column("webhooks", sa.Column("previous_key_id", sa.String(16), nullable=True))
    op.add_column(
        "webhooks", sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), not batch mode: batch rebuilds the
    # table on SQLite, and dropping the old ``webhooks`` with foreign keys on would
    # cascade-delete every outbox row
    for column in ("previous_until", "previous_key_id", "previous_secret"):
        op.drop_column("webhooks", column)

"""Backups remember the objectives they were taken under (tier policy as JSON).

Verification and retention then judge a backup by the objectives of its fleet at backup
time, not by built-in defaults for its tier name.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.add_column(
            sa.Column("policy", sa.JSON, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.drop_column("policy")

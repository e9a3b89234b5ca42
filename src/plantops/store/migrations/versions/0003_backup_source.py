"""Backups record where they came from: taken by plantops ("run") or imported.

``source`` is "run" for every existing row; ``origin`` holds what an import knows
of the file it took in (name, sha256, sizes, the dump's own timestamp and versions).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default=sa.text("'run'"))
        )
        batch.add_column(
            sa.Column("origin", sa.JSON, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.drop_column("origin")
        batch.drop_column("source")

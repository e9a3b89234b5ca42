"""The release ledger: hash-chained entries, chain heads and promotion claims.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("release_id", sa.String(80), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_ledger_chain_seq"),
    )
    op.create_index("ix_ledger_release", "ledger_entries", ["release_id", "stage", "kind"])
    op.create_table(
        "ledger_heads",
        sa.Column("chain", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "promotion_claims",
        sa.Column("release_id", sa.String(80), primary_key=True),
        sa.Column("stage", sa.String(64), primary_key=True),
        sa.Column("plant", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("promotion_claims")
    op.drop_table("ledger_heads")
    op.drop_index("ix_ledger_release", table_name="ledger_entries")
    op.drop_table("ledger_entries")

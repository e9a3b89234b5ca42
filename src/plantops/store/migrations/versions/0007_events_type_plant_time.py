"""An index for the fleet page's SLO burn: ``probe.checked`` events of a page's plants
within the report window (``ServerStore.outcome_counts``) are an index range, not a scan
of every event of those plants.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_type_plant_time", "events", ["type", "plant", "time"])


def downgrade() -> None:
    op.drop_index("ix_events_type_plant_time", table_name="events")

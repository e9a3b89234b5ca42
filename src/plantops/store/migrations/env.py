"""Alembic environment, driven programmatically by ``plantops.store.catalog``.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``;
there is no alembic.ini for users to keep.
"""

from __future__ import annotations

from alembic import context

from plantops.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

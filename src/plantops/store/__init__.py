"""plantops' state database: the catalog the whole control plane shares.

SQLAlchemy 2 ORM models plus Alembic migrations shipped inside the package and run
programmatically when the database is opened. SQLite by default
(``sqlite:///.plantops/state.db``, override with ``PLANTOPS_DB``), PostgreSQL by URL.
This package never imports ``plantops.backup`` (or any outer layer).
"""

from __future__ import annotations

from plantops.store.catalog import (
    BackupRecord,
    Catalog,
    ObjectRecord,
    VerificationRecord,
    default_db_url,
    open_catalog,
)
from plantops.store.models import (
    BACKUP_STATUSES,
    Backup,
    BackupObject,
    Base,
    Verification,
)

__all__ = [
    "BACKUP_STATUSES",
    "Backup",
    "BackupObject",
    "BackupRecord",
    "Base",
    "Catalog",
    "ObjectRecord",
    "Verification",
    "VerificationRecord",
    "default_db_url",
    "open_catalog",
]

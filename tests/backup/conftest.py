"""Fixtures for the backup tests: a real PostgreSQL, an Odoo-like database, stores."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ has no __init__.py: make ``tests.fixtures`` importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from odoo_helpers import OdooDb, make_odoo_db
from tests.fixtures.postgres import PgCluster, pg_cluster, pg_db

from plantops.backup.stores import LocalStore
from plantops.store import Catalog, open_catalog

__all__ = ["pg_cluster", "pg_db"]


@pytest.fixture
def odoo_db(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[OdooDb]:
    db = make_odoo_db(pg_cluster, tmp_path / "data")
    yield db
    pg_cluster.drop_database(db.name)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'state.db'}")
    yield cat
    cat.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "backups")


@pytest.fixture
def age_key(tmp_path: Path) -> Path:
    from plantops.backup.crypto import generate_identity

    secret, public = generate_identity()
    path = tmp_path / f"key-{uuid.uuid4().hex[:6]}.txt"
    path.write_text(f"# public key: {public}\n{secret}\n")
    path.chmod(0o600)
    return path

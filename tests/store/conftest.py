"""Fixtures for the state-database tests: a real PostgreSQL from tests/fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/ has no __init__.py: make ``tests.fixtures`` importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.postgres import pg_cluster, pg_db

__all__ = ["pg_cluster", "pg_db"]

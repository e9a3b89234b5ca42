"""Fixtures for the release tests: a real PostgreSQL from tests/fixtures."""

from __future__ import annotations

from tests.fixtures.postgres import pg_cluster, pg_db

__all__ = ["pg_cluster", "pg_db"]

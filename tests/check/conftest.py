"""Fixtures for the schema checker tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantops.check.schema import SchemaValidator

REPO = Path(__file__).resolve().parents[2]
SHARED_CRDS = REPO.parent / "shared" / "schemas" / "crds"


@pytest.fixture(scope="session")
def validator() -> SchemaValidator:
    return SchemaValidator("1.30")


@pytest.fixture(scope="session")
def shared_crds() -> Path:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"shared CRD catalog not present at {SHARED_CRDS}")
    return SHARED_CRDS

"""Fixtures for the schema checker tests."""

from __future__ import annotations

import sys
import types
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


def ensure_cli_importable() -> None:
    """Let ``plantops.cli.main`` import while sibling command modules are still being
    written: a missing ``plantops.cli.fleet`` is replaced by a stand-in that adds one
    hidden command (so the app keeps its multi-command shape)."""
    try:
        import plantops.cli.fleet  # noqa: F401
    except ModuleNotFoundError:
        stub = types.ModuleType("plantops.cli.fleet")

        def register(app: object) -> None:
            @app.command("stub-fleet", hidden=True)  # type: ignore[attr-defined,misc]
            def _stub() -> None:
                return None

        stub.register = register  # type: ignore[attr-defined]
        sys.modules["plantops.cli.fleet"] = stub

"""Where the shared real-world inputs are: ``../shared/realworld`` beside the checkout (CI),
or ``$PLANTOPS_SHARED/realworld`` (a worktree elsewhere). Tests skip when neither exists;
the product never needs them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SHARED


def realworld(*parts: str) -> Path:
    for base in (
        Path(os.environ["PLANTOPS_SHARED"]) if os.environ.get("PLANTOPS_SHARED") else None,
        SHARED,
    ):
        if base is not None and (base / "realworld" / Path(*parts)).exists():
            return base / "realworld" / Path(*parts)
    pytest.skip(
        f"real-world inputs not present: {SHARED / 'realworld' / Path(*parts)} (set PLANTOPS_SHARED)"
    )

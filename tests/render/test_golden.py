"""Golden trees: one small fleet per deployment pattern and one VM plant."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantops import services
from tests.conftest import TODAY, compare_or_update_tree

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name for p in GOLDEN.glob("render-*") if (p / "fleet").is_dir())


def test_every_pattern_has_a_case() -> None:
    assert CASES == [
        "render-dedicated-cluster",
        "render-dedicated-environment",
        "render-dedicated-namespace",
        "render-shared-multitenant",
        "render-vm",
    ]


@pytest.mark.parametrize("case", CASES)
def test_render_matches_golden(case: str, tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / "out"
    services.plan_fleet(GOLDEN / case / "fleet", out, today=TODAY)
    compare_or_update_tree(out, GOLDEN / case / "expected", update_golden)

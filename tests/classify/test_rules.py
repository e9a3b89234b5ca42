"""Classification rules fire as documented and carry their reasons and locations."""

from __future__ import annotations

import shutil
from pathlib import Path

from plantops.classify import classify_fleet
from plantops.model import build_fleet
from plantops.spec import load_fleet
from tests.conftest import EXAMPLE, TODAY


def classified(root: Path = EXAMPLE) -> dict[str, tuple[str, str, list[str]]]:
    fleet = build_fleet(load_fleet(root, today=TODAY), today=TODAY)
    return {
        c.plant: (c.tier, c.pattern, [r.rule for r in c.reasons]) for c in classify_fleet(fleet)
    }


def test_example_classification() -> None:
    assert classified() == {
        "brno-components": ("standard", "shared-multitenant", ["T7-standard", "P8-shared"]),
        "detroit-stamping": (
            "critical",
            "dedicated-cluster",
            ["T1-regulated-production", "P3-critical"],
        ),
        "leipzig-vm": ("standard", "dedicated-environment", ["T7-standard", "P1-single-vm"]),
        "lyon-meddev": (
            "critical",
            "dedicated-environment",
            ["T1-regulated-production", "P2-isolated-critical"],
        ),
        "monterrey-assembly": (
            "high",
            "dedicated-namespace",
            ["T3-production-critical", "P5-high"],
        ),
        "porto-plastics": ("standard", "dedicated-namespace", ["T7-standard", "P0-override"]),
        "pune-pilot": ("pilot", "shared-multitenant", ["T6-pilot", "P8-shared"]),
        "rotterdam-dc": ("standard", "shared-multitenant", ["T7-standard", "P8-shared"]),
    }


def test_reasons_point_at_the_inputs() -> None:
    fleet = build_fleet(load_fleet(EXAMPLE, today=TODAY), today=TODAY)
    lyon = next(c for c in classify_fleet(fleet) if c.plant == "lyon-meddev")
    tier_reason = lyon.reasons[0]
    assert "fda-21-cfr-part-11" in tier_reason.message
    assert {loc.path for loc in tier_reason.locations} == {
        "profile.production_critical",
        "profile.regulatory",
    }
    porto = next(c for c in classify_fleet(fleet) if c.plant == "porto-plastics")
    assert "it-ops@acme.example" in porto.reasons[1].message
    assert "OPS-1432" in porto.reasons[1].message


def test_thresholds_live_in_fleet_yaml(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "fleet.yaml"
    f.write_text(
        f.read_text().replace("high_volume_orders_per_day: 2000", "high_volume_orders_per_day: 700")
    )
    # rotterdam-dc ships 800 orders/day: above the lowered threshold it becomes high
    assert classified(root)["rotterdam-dc"][:2] == ("high", "dedicated-namespace")


def test_heavy_customization_leaves_the_shared_platform(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "plants" / "brno-components.yaml"
    f.write_text(f.read_text().replace("customization: light", "customization: heavy"))
    assert classified(root)["brno-components"][1:] == (
        "dedicated-namespace",
        ["T7-standard", "P7-heavy-customization"],
    )

"""The example fleet's classification: factors, decisions, overrides, thresholds."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from plantops.classify import Classification, classify_fleet
from plantops.errors import SpecError
from plantops.model import build_fleet
from plantops.spec import load_fleet
from tests.conftest import EXAMPLE, TODAY


def classify(root: Path = EXAMPLE, today: dt.date = TODAY) -> dict[str, Classification]:
    loaded = load_fleet(root, today=today, allow_expired_overrides=today != TODAY)
    return {c.plant: c for c in classify_fleet(build_fleet(loaded, today=today))}


def summary(root: Path = EXAMPLE) -> dict[str, tuple[str, str, list[str]]]:
    return {k: (c.tier, c.pattern, [r.rule for r in c.reasons]) for k, c in classify(root).items()}


def test_example_classification() -> None:
    assert summary() == {
        "brno-components": ("standard", "shared-multitenant", ["T4-standard", "P10-shared"]),
        "detroit-stamping": (
            "critical",
            "dedicated-cluster",
            [
                "F1-production-critical",
                "F3-regulation",
                "F4-integrations",
                "F5-volume",
                "F6-users",
                "F8-coverage",
                "T1-critical",
                "P3-critical",
                "S1-release-gate",
            ],
        ),
        "gdansk-packaging": ("standard", "shared-multitenant", ["T4-standard", "P10-shared"]),
        "leipzig-vm": ("standard", "dedicated-environment", ["T4-standard", "P1-single-vm"]),
        "lyon-meddev": (
            "critical",
            "dedicated-environment",
            [
                "F1-production-critical",
                "F3-regulation",
                "F4-integrations",
                "F7-latency",
                "F8-coverage",
                "T1-critical",
                "P2-isolated-critical",
                "S1-release-gate",
            ],
        ),
        "monterrey-assembly": (
            "high",
            "dedicated-namespace",
            ["F1-production-critical", "F4-integrations", "F8-coverage", "T2-high", "P5-high"],
        ),
        "porto-plastics": ("standard", "dedicated-namespace", ["T4-standard", "P0-override"]),
        "pune-pilot": ("pilot", "shared-multitenant", ["F8-coverage", "T3-pilot", "P10-shared"]),
        # two shifts six days a week: an outage stops shipping, no longer business hours
        "rotterdam-dc": (
            "high",
            "dedicated-namespace",
            ["F2-warehouse", "F4-integrations", "F8-coverage", "T2-high", "P5-high"],
        ),
    }


def test_factor_reasons_carry_points_and_the_spec_lines() -> None:
    rotterdam = classify()["rotterdam-dc"]
    scores = {r.rule: r.score for r in rotterdam.reasons}
    assert scores == {
        "F2-warehouse": 2,
        "F4-integrations": 0.375,
        "F8-coverage": 4,
        "T2-high": None,
        "P5-high": None,
    }
    by_rule = {r.rule: r for r in rotterdam.reasons}
    assert "96 h/week" in by_rule["F8-coverage"].message
    assert [str(loc) for loc in by_rule["F8-coverage"].locations] == [
        "plants/rotterdam-dc.yaml:18:5",
        "plants/rotterdam-dc.yaml:19:5",
    ]
    assert str(by_rule["F2-warehouse"].locations[0]) == "plants/rotterdam-dc.yaml:12:3"
    assert "carrier-api API medium outbound 1x0.5x0.75=0.375" in by_rule["F4-integrations"].message
    # the decision names the score, the threshold and where the threshold is written
    assert by_rule["T2-high"].message == "high: score 6.375 >= high_score 6"
    assert [loc.path for loc in by_rule["T2-high"].locations] == ["classification.high_score"]
    assert str(by_rule["T2-high"].locations[0]).startswith("fleet.yaml:")


def test_every_reason_has_a_location_and_regulation_points_at_its_item() -> None:
    result = classify()
    assert all(r.locations for c in result.values() for r in c.reasons)
    lyon = {r.rule: r for r in result["lyon-meddev"].reasons}
    assert "fda-21-cfr-part-11" in lyon["F3-regulation"].message
    assert [loc.path for loc in lyon["F3-regulation"].locations] == ["profile.regulatory[0]"]
    assert lyon["S1-release-gate"].decides == "sync"


def test_change_controlled_plants_sync_production_manually() -> None:
    syncs = {k: c.production_sync for k, c in classify().items()}
    assert {k for k, v in syncs.items() if v == "manual"} == {"detroit-stamping", "lyon-meddev"}
    assert classify()["lyon-meddev"].as_dict()["production_sync"] == "manual"


def test_override_pins_and_shows_justification_and_scored_result(tmp_path: Path) -> None:
    porto = classify()["porto-plastics"].reasons[-1]
    assert porto.rule == "P0-override"
    assert "it-ops@acme.example" in porto.message and "OPS-1432" in porto.message
    assert "until 2028-06-30" in porto.message
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "plants" / "brno-components.yaml"
    f.write_text(
        f.read_text()
        + "overrides:\n"
        + "  - {target: tier, value: high, owner: ops@acme.example,"
        + " reason: Peak season contract with penalty clauses, expires: 2027-01-31}\n"
    )
    brno = classify(root)["brno-components"]
    assert (brno.tier, brno.pattern) == ("high", "dedicated-namespace")
    tier_reason = next(r for r in brno.reasons if r.rule == "T0-override")
    assert tier_reason.message.startswith("high: scored standard (score 0);")
    assert [loc.path for loc in tier_reason.locations] == ["overrides[0]"]


def test_expired_override_no_longer_applies() -> None:
    after = dt.date(2028, 7, 1)
    porto = classify(today=after)["porto-plastics"]
    assert (porto.tier, porto.pattern) == ("standard", "shared-multitenant")
    assert porto.reasons[-1].rule == "P10-shared"


def test_thresholds_live_in_fleet_yaml(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "fleet.yaml"
    text = f.read_text()
    assert "high_score: 6\n" in text
    f.write_text(text.replace("high_score: 6\n", "high_score: 7\n"))
    # rotterdam-dc scores 6.375: below a raised high threshold it is standard again
    rotterdam = classify(root)["rotterdam-dc"]
    assert rotterdam.tier == "standard"
    assert rotterdam.reasons[-2].message == (
        "standard: score 6.375 > pilot_max_score 1 and < high_score 7"
    )


def test_thresholds_default_when_fleet_yaml_sets_none(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "fleet.yaml"
    text = f.read_text()
    start, end = text.index("classification:\n"), text.index("pricing:\n")
    # an older fleet file: the thresholds it had, including the ignored critical_integrations
    f.write_text(
        text[:start]
        + "classification:\n  high_volume_orders_per_day: 2000\n  critical_integrations: 1\n"
        + text[end:]
    )
    assert summary(root) == summary()


def test_heavy_customization_leaves_the_shared_platform(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "plants" / "brno-components.yaml"
    f.write_text(f.read_text().replace("customization: light", "customization: heavy"))
    assert summary(root)["brno-components"][1:] == (
        "dedicated-namespace",
        ["T4-standard", "P9-heavy-customization"],
    )


def test_inconsistent_thresholds_are_a_located_error(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    f = root / "fleet.yaml"
    f.write_text(f.read_text().replace("high_score: 6\n", "high_score: 13\n"))
    with pytest.raises(SpecError) as exc:
        load_fleet(root, today=TODAY)
    (problem,) = exc.value.problems
    assert problem.file == "fleet.yaml" and problem.path == "classification"
    assert "high_score (13.0) must be below critical_score (12.0)" in problem.message

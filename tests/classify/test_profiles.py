"""Plant profiles → tier and pattern, table-driven; the table in docs/classification.md.

Each profile is a plant file of its own in one fleet (the example's fleet.yaml), so
reasons point at real lines. The first rows are held out: profiles the example fleet
does not contain, each from the operating model's list (regulated, integration-heavy,
long-shift warehouse). The docs table must list exactly these rows with these results.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest
import yaml

from plantops.classify import Classification, classify_fleet
from plantops.model import build_fleet
from plantops.spec import load_fleet
from tests.conftest import EXAMPLE, ROOT, TODAY

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
SIX_DAYS = [*WEEKDAYS, "sat"]


def shift(name: str, start: str, end: str, days: list[str]) -> dict[str, Any]:
    return {"name": name, "start": start, "end": end, "days": days}


def integ(name: str, kind: str, crit: str, direction: str = "bidirectional") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": kind, "direction": direction, "criticality": crit}
    if direction != "inbound":
        out["endpoint"] = f"{name}.example:443"
    return out


OFFICE = [shift("day", "08:00", "17:00", WEEKDAYS)]  # 45 h/week
TWO_SHIFTS = [shift("early", "06:00", "14:00", WEEKDAYS), shift("late", "14:00", "22:00", WEEKDAYS)]
THREE_SHIFTS = [*TWO_SHIFTS, shift("night", "22:00", "06:00", WEEKDAYS)]

# name: (users named/peak, profile, shifts, expected tier, pattern, score, production sync)
PROFILES: dict[str, tuple[tuple[int, int], dict[str, Any], list[Any], str, str, float, str]] = {
    "regulated-warehouse": (
        (80, 30),
        {
            "warehouse_only": True,
            "regulatory": ["gxp"],
            "integrations": [integ("wms", "WMS", "high")],
        },
        OFFICE,
        "high",
        "dedicated-namespace",
        11,
        "manual",
    ),
    "integration-heavy": (
        (120, 45),
        {
            "integrations": [
                integ("mes", "MES", "high"),
                integ("edi", "EDI", "high"),
                integ("wms", "WMS", "high"),
                integ("iot", "IoT", "high", "inbound"),
            ],
            "volume": {"orders_per_day": 900, "stock_moves_per_day": 8000},
        },
        OFFICE,
        "high",
        "dedicated-namespace",
        9.5,
        "automated",
    ),
    "long-shift-warehouse": (
        (70, 28),
        {"warehouse_only": True, "integrations": [integ("carrier", "API", "medium", "outbound")]},
        THREE_SHIFTS,
        "high",
        "dedicated-namespace",
        7.375,
        "automated",
    ),
    "two-shift-six-day-dc": (
        (60, 25),
        {"warehouse_only": True},
        [shift("early", "05:00", "13:00", SIX_DAYS), shift("late", "13:00", "21:00", SIX_DAYS)],
        "high",
        "dedicated-namespace",
        6,
        "automated",
    ),
    "regulation-alone": (
        (40, 15),
        {"regulatory": ["iso-13485"]},
        OFFICE,
        "high",
        "dedicated-namespace",
        6,
        "manual",
    ),
    "regulated-line": (
        (150, 60),
        {"production_critical": True, "regulatory": ["gxp", "iso-9001"]},
        OFFICE,
        "critical",
        "dedicated-cluster",
        12,
        "manual",
    ),
    "regulated-line-eu-data": (
        (150, 60),
        {"production_critical": True, "regulatory": ["gxp"], "data_residency": "EU"},
        OFFICE,
        "critical",
        "dedicated-environment",
        12,
        "manual",
    ),
    "two-shift-line-critical-mes": (
        (200, 80),
        {"production_critical": True, "integrations": [integ("mes", "MES", "high")]},
        TWO_SHIFTS,
        "critical",
        "dedicated-cluster",
        13,
        "automated",
    ),
    "single-shift-line": (
        (200, 80),
        {"production_critical": True, "integrations": [integ("wms", "WMS", "medium")]},
        OFFICE,
        "high",
        "dedicated-namespace",
        7.5,
        "automated",
    ),
    "office-hours-warehouse": (
        (50, 20),
        {"warehouse_only": True},
        OFFICE,
        "standard",
        "shared-multitenant",
        2,
        "automated",
    ),
    "sox-subsidiary": (
        (90, 30),
        {"regulatory": ["sox"]},
        OFFICE,
        "standard",
        "dedicated-namespace",
        3,
        "manual",
    ),
    "iso-9001-subsidiary": (
        (60, 20),
        {"regulatory": ["iso-9001"]},
        OFFICE,
        "standard",
        "shared-multitenant",
        1,
        "automated",
    ),
    "high-volume-office": (
        (100, 40),
        {"volume": {"orders_per_day": 2500, "stock_moves_per_day": 9000}},
        OFFICE,
        "standard",
        "dedicated-namespace",
        3,
        "automated",
    ),
    "large-plant": (
        (1200, 450),
        {},
        OFFICE,
        "high",
        "dedicated-cluster",
        6,
        "automated",
    ),
    "small-site-critical-mes": (
        (20, 8),
        {"integrations": [integ("mes", "MES", "high")]},
        OFFICE,
        "standard",
        "shared-multitenant",
        3,
        "automated",
    ),
    "pilot-line": (
        (18, 8),
        {"integrations": [integ("api", "API", "low", "outbound")]},
        OFFICE,
        "pilot",
        "shared-multitenant",
        0.1875,
        "automated",
    ),
}


def _plant(code: str, users: tuple[int, int], profile: dict[str, Any], shifts: list[Any]) -> str:
    doc = {
        "apiVersion": "plantops.io/v1",
        "kind": "Plant",
        "code": code,
        "name": code.replace("-", " ").title(),
        "region": "eu-central",
        "timezone": "Europe/Berlin",
        "users": {"named": users[0], "peak_concurrent": users[1]},
        "profile": profile,
        "shifts": shifts,
    }
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def classified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Classification]:
    root = tmp_path_factory.mktemp("profiles")
    shutil.copy(EXAMPLE / "fleet.yaml", root / "fleet.yaml")
    (root / "plants").mkdir()
    # fleet.yaml reserves node pools for lyon-meddev, so that plant comes along
    shutil.copy(EXAMPLE / "plants" / "lyon-meddev.yaml", root / "plants")
    for code, (users, profile, shifts, *_) in PROFILES.items():
        (root / "plants" / f"{code}.yaml").write_text(_plant(code, users, profile, shifts))
    fleet = build_fleet(load_fleet(root, today=TODAY), today=TODAY)
    return {c.plant: c for c in classify_fleet(fleet)}


def _score(c: Classification) -> float:
    return sum(r.score for r in c.reasons if r.score is not None)


@pytest.mark.parametrize("code", list(PROFILES))
def test_profile_gets_its_tier_and_pattern(
    code: str, classified: dict[str, Classification]
) -> None:
    *_, tier, pattern, score, sync = PROFILES[code]
    c = classified[code]
    assert (c.tier, c.pattern, _score(c), c.production_sync) == (tier, pattern, score, sync), [
        r.short() for r in c.reasons
    ]
    # factors first, each with its points and a location; then the decisions
    kinds = [r.score is not None for r in c.reasons]
    assert kinds == sorted(kinds, reverse=True)
    assert all(r.locations for r in c.reasons)


DOC_ROW = re.compile(
    r"^\| `(?P<code>[a-z0-9-]+)` \|[^|]*\| (?P<score>[0-9.]+) \| (?P<tier>[a-z]+) \| "
    r"(?P<pattern>[a-z-]+) \| (?P<sync>automated|manual) \|"
)


def test_docs_table_lists_these_profiles_with_these_results(
    classified: dict[str, Classification],
) -> None:
    text = (ROOT / "docs" / "classification.md").read_text()
    rows = {m["code"]: m for line in text.splitlines() if (m := DOC_ROW.match(line))}
    assert list(rows) == list(PROFILES)
    for code, m in rows.items():
        c = classified[code]
        assert (float(m["score"]), m["tier"], m["pattern"], m["sync"]) == (
            _score(c),
            c.tier,
            c.pattern,
            c.production_sync,
        ), code

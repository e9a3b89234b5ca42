"""Shift coverage: hours of the week at least one shift runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from plantops.classify import coverage_hours_per_week
from plantops.cli.main import app
from plantops.spec.models import PlantSpec
from tests.conftest import EXAMPLE


def _spec(shifts: list[dict[str, Any]]) -> PlantSpec:
    return PlantSpec.model_validate(
        {
            "apiVersion": "plantops.io/v1",
            "kind": "Plant",
            "code": "p",
            "name": "P",
            "region": "eu-central",
            "timezone": "Europe/Berlin",
            "users": {"named": 10, "peak_concurrent": 5},
            "shifts": [{"name": f"s{i}", **s} for i, s in enumerate(shifts)],
        }
    )


WEEK = ["mon", "tue", "wed", "thu", "fri"]


@pytest.mark.parametrize(
    ("shifts", "hours"),
    [
        ([], 0),
        ([{"start": "08:00", "end": "17:00", "days": WEEK}], 45),
        # a night shift runs past midnight; Sunday's runs past the end of the week
        ([{"start": "22:00", "end": "06:00", "days": ["sun"]}], 8),
        ([{"start": "22:00", "end": "06:00", "days": WEEK}], 40),
        ([{"start": "06:00", "end": "14:00"}, {"start": "14:00", "end": "22:00"}], 112),
        # overlapping shifts count once (the loader rejects them; the model stays total)
        (
            [
                {"start": "06:00", "end": "14:00", "days": WEEK},
                {"start": "10:00", "end": "18:00", "days": WEEK},
            ],
            60,
        ),
        ([{"start": "00:00", "end": "23:30"}, {"start": "23:30", "end": "00:00"}], 168),
    ],
)
def test_coverage_hours_per_week(shifts: list[dict[str, Any]], hours: float) -> None:
    assert coverage_hours_per_week(_spec(shifts)) == hours


def test_classify_json_carries_points_and_production_sync() -> None:
    r = CliRunner().invoke(
        app, ["classify", str(EXAMPLE), "--format", "json", "--today", "2026-11-22"]
    )
    assert r.exit_code == 0, r.output
    data = {d["plant"]: d for d in json.loads(r.output)}
    rotterdam = data["rotterdam-dc"]
    assert (rotterdam["tier"], rotterdam["production_sync"]) == ("high", "automated")
    assert [(x["rule"], x["score"]) for x in rotterdam["reasons"]] == [
        ("F2-warehouse", 2),
        ("F4-integrations", 0.375),
        ("F8-coverage", 4),
        ("T2-high", None),
        ("P5-high", None),
    ]
    assert data["lyon-meddev"]["production_sync"] == "manual"
    assert all(x["locations"] for d in data.values() for x in d["reasons"])

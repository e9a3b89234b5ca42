"""Properties over generated plant profiles: classification is total and deterministic,
every reason carries a location that names a real field, and more at stake never
lowers the tier."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.classify import PATTERNS, TIERS, Classification, classify_plant
from plantops.model import Fleet, build_fleet
from plantops.spec import load_fleet
from plantops.spec.loader import LoadedFleet, Location
from plantops.spec.models import PlantSpec, Thresholds
from tests.conftest import EXAMPLE, TODAY

CODE = "brno-components"  # generated profiles borrow this plant's source map
RANK = {t: i for i, t in enumerate(TIERS)}  # 0 is the most demanding


@cache
def _loaded() -> LoadedFleet:
    return load_fleet(EXAMPLE, today=TODAY)


HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))
DAYS = st.lists(
    st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
    min_size=1,
    max_size=7,
    unique=True,
)
SHIFTS = st.lists(
    st.fixed_dictionaries({"start": HHMM, "end": HHMM, "days": DAYS}).filter(
        lambda s: s["start"] != s["end"]
    ),
    max_size=4,
)
INTEGRATION = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["MES", "WMS", "EDI", "IoT", "API", "PLM"]),
        "direction": st.sampled_from(["inbound", "outbound", "bidirectional"]),
        "criticality": st.sampled_from(["low", "medium", "high"]),
    }
)
PROFILE = st.fixed_dictionaries(
    {
        "production_critical": st.booleans(),
        "warehouse_only": st.booleans(),
        "regulatory": st.lists(
            st.sampled_from(
                [
                    "fda-21-cfr-part-11",
                    "iso-13485",
                    "iatf-16949",
                    "gxp",
                    "iso-9001",
                    "iso-27001",
                    "sox",
                ]
            ),
            unique=True,
            max_size=3,
        ),
        "integrations": st.lists(INTEGRATION, max_size=6),
        "volume": st.fixed_dictionaries(
            {
                "orders_per_day": st.integers(0, 10_000),
                "stock_moves_per_day": st.integers(0, 100_000),
            }
        ),
        "latency_sensitivity": st.sampled_from(["low", "medium", "high"]),
        "customization": st.sampled_from(["none", "light", "moderate", "heavy"]),
        "data_residency": st.sampled_from([None, "EU", "US"]),
    }
)
OVERRIDES = st.lists(
    st.one_of(
        st.tuples(st.just("tier"), st.sampled_from(TIERS)),
        st.tuples(st.just("pattern"), st.sampled_from(PATTERNS)),
    ),
    max_size=2,
    unique_by=lambda o: o[0],
)


@st.composite
def plants(draw: st.DrawFn) -> dict[str, Any]:
    named = draw(st.integers(1, 2000))
    profile = draw(PROFILE)
    for i, integ in enumerate(profile["integrations"]):
        integ["name"] = f"link-{i}"
    return {
        "apiVersion": "plantops.io/v1",
        "kind": "Plant",
        "code": CODE,
        "name": "Generated",
        "region": "eu-central",
        "timezone": "Europe/Berlin",
        "runtime": draw(st.sampled_from(["kubernetes", "vm"])),
        "placement": {
            "preference": draw(st.sampled_from(["auto", "shared", "dedicated"])),
            "tenant_group": draw(st.sampled_from([None, "eu-subsidiaries"])),
        },
        "users": {"named": named, "peak_concurrent": draw(st.integers(1, named))},
        "profile": profile,
        "shifts": [{"name": f"s{i}", **s} for i, s in enumerate(draw(SHIFTS))],
        "overrides": [
            {
                "target": target,
                "value": value,
                "owner": "ops@acme.example",
                "reason": "generated exception for the property test",
                "expires": dt.date(2030, 1, 1),
            }
            for target, value in draw(OVERRIDES)
        ],
    }


THRESHOLDS = st.builds(
    lambda high, step, pilot, ext, multi, cont: Thresholds(
        high_score=high,
        critical_score=high + step,
        pilot_max_score=min(pilot, high / 2),
        extended_hours_per_week=ext,
        multi_shift_hours_per_week=ext + multi,
        continuous_hours_per_week=ext + multi + cont,
    ),
    st.sampled_from([3.0, 6.0, 9.0]),
    st.sampled_from([1.0, 6.0, 10.0]),
    st.sampled_from([0.0, 1.0, 2.0]),
    st.sampled_from([40.0, 50.0]),
    st.sampled_from([10.0, 30.0]),
    st.sampled_from([10.0, 40.0]),
)


def _fleet(plant: dict[str, Any], thresholds: Thresholds | None = None) -> Fleet:
    loaded = _loaded()
    spec = PlantSpec.model_validate(plant)
    fleet_spec = loaded.fleet
    if thresholds is not None:
        fleet_spec = fleet_spec.model_copy(update={"classification": thresholds})
    replaced = dataclasses.replace(loaded, fleet=fleet_spec, plants=(spec,))
    return build_fleet(replaced, today=TODAY)


def _classify(plant: dict[str, Any], thresholds: Thresholds | None = None) -> Classification:
    fleet = _fleet(plant, thresholds)
    return classify_plant(fleet.plants[0], fleet)


def _names_a_field(loc: Location, fleet: Fleet) -> bool:
    """The location's path leads to a field of the validated spec (defaults included)."""
    loaded = fleet.source
    doc: Any = (
        loaded.fleet if loc.file == loaded.fleet_source.file else fleet.plants[0].spec
    ).model_dump()
    for part in loc.key:
        if isinstance(part, int):
            if not isinstance(doc, list) or part >= len(doc):
                return False
        elif not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


@settings(max_examples=300, deadline=None)
@given(plants(), st.one_of(st.none(), THRESHOLDS))
def test_total_deterministic_and_located(plant: dict[str, Any], t: Thresholds | None) -> None:
    fleet = _fleet(plant, t)
    first = classify_plant(fleet.plants[0], fleet)
    assert first.tier in TIERS and first.pattern in PATTERNS
    assert first.production_sync in ("automated", "manual")
    assert first.as_dict() == classify_plant(fleet.plants[0], fleet).as_dict()
    assert [r.decides for r in first.reasons].count("pattern") == 1
    for r in first.reasons:
        assert r.locations, r.short()
        for loc in r.locations:
            assert _names_a_field(loc, fleet), (r.rule, loc.path)
    # factors and the tier decision agree with the thresholds used
    th = fleet.spec.classification
    score = sum(r.score for r in first.reasons if r.score is not None)
    if not any(r.rule == "T0-override" for r in first.reasons):
        expected = (
            "critical" if score >= th.critical_score else "high" if score >= th.high_score else None
        )
        if expected is not None:
            assert first.tier == expected
        else:
            assert first.tier in ("standard", "pilot")


@settings(max_examples=200, deadline=None)
@given(
    plants(),
    st.sampled_from(
        [
            ("production_critical", True),
            ("warehouse_only", True),
            ("regulatory", ["gxp"]),
            ("latency_sensitivity", "high"),
        ]
    ),
)
def test_more_at_stake_never_lowers_the_tier(
    plant: dict[str, Any], change: tuple[str, Any]
) -> None:
    plant["overrides"] = []
    before = _classify(plant)
    key, value = change
    if key == "regulatory":
        value = sorted(set(plant["profile"]["regulatory"]) | set(value))
    plant["profile"][key] = value
    after = _classify(plant)
    assert RANK[after.tier] <= RANK[before.tier], (before.tier, after.tier)

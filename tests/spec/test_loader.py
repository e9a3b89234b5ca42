"""Loader behaviour on good input, and the property that bad input only ever raises SpecError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantops.errors import SpecError
from plantops.spec import load_fleet, spec_json_schema
from plantops.spec.loader import shift_intervals
from tests.conftest import EXAMPLE, TODAY

BASE = Path(__file__).parent / "base"


def test_example_fleet_loads_with_positions() -> None:
    loaded = load_fleet(EXAMPLE, today=TODAY)
    assert len(loaded.plants) >= 6
    loc = loaded.locate_plant("lyon-meddev", "profile", "regulatory")
    assert loc.file == "plants/lyon-meddev.yaml"
    text = (EXAMPLE / loc.file).read_text().splitlines()
    assert text[loc.line - 1].strip().startswith("regulatory:")


def test_fleet_yaml_path_is_accepted_too() -> None:
    assert load_fleet(BASE / "fleet.yaml", today=TODAY).fleet.organization.slug == "example"


def test_missing_fleet_yaml_is_a_spec_error(tmp_path: Path) -> None:
    try:
        load_fleet(tmp_path, today=TODAY)
    except SpecError as exc:
        assert "no fleet.yaml" in str(exc)
        assert "plantops init" in str(exc)
    else:
        raise AssertionError("expected SpecError")


def test_shift_past_midnight_wraps_into_next_day() -> None:
    assert list(shift_intervals("22:00", "06:00", ["sun"])) == [(9960, 10080), (0, 360)]


def test_json_schema_describes_both_file_kinds() -> None:
    schema = spec_json_schema()
    assert {"FleetSpec", "PlantSpec"} <= set(schema["$defs"])
    plant = schema["$defs"]["PlantSpec"]
    assert {"code", "timezone"} <= set(plant["required"])
    assert plant["additionalProperties"] is False


def test_example_carries_the_current_schema() -> None:
    on_disk = json.loads((EXAMPLE / "plantops-spec.schema.json").read_text())
    assert on_disk == spec_json_schema(), "regenerate with `plantops schema -o ...`"
    for f in [EXAMPLE / "fleet.yaml", *sorted((EXAMPLE / "plants").glob("*.yaml"))]:
        assert f.read_text().startswith("# yaml-language-server: $schema="), f


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["plantops.io/v1", "Plant", "Fleet", "eu-central", "Europe/Berlin", "17.0"]),
)
keys = st.one_of(
    st.text(min_size=1, max_size=10),
    st.sampled_from(
        ["code", "name", "users", "profile", "shifts", "tiers", "clusters", "environments", "odoo"]
    ),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=documents, target=st.sampled_from(["fleet.yaml", "plants/alpha.yaml"]))
def test_loader_raises_only_spec_error_on_arbitrary_yaml(
    tmp_path: Path, doc: object, target: str
) -> None:
    root = tmp_path / "f"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(BASE, root)
    (root / target).write_text(yaml.safe_dump(doc))
    try:
        load_fleet(root, today=TODAY)
    except SpecError as exc:
        assert exc.problems
        assert all(p.line >= 1 for p in exc.problems)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_loader_raises_only_spec_error_on_arbitrary_text(tmp_path: Path, text: str) -> None:
    root = tmp_path / "f"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(BASE, root)
    (root / "plants" / "alpha.yaml").write_text(text)
    try:
        load_fleet(root, today=TODAY)
    except SpecError as exc:
        assert exc.problems

"""Loader behaviour on good input, and the property that bad input only ever raises SpecError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
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


# --- the parse cache -------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    return root


def test_parse_cache_skips_parsing_unchanged_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plantops.spec import ParseCache
    from plantops.spec import loader as loader_module

    root = _copy(tmp_path)
    cache_file = tmp_path / "cache.pickle"
    first = load_fleet(root, today=TODAY, cache=ParseCache(cache_file))
    assert cache_file.is_file()

    parsed: list[str] = []
    real = loader_module._DataLoader

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, text: str) -> None:
            parsed.append(text.split("code: ", 1)[-1].split("\n", 1)[0])
            super().__init__(text)

    monkeypatch.setattr(loader_module, "_DataLoader", Counting)
    second = load_fleet(root, today=TODAY, cache=ParseCache(cache_file))
    assert parsed == [], "nothing parsed again"
    assert second.plants == first.plants and second.fleet == first.fleet

    plant = root / "plants" / "pune-pilot.yaml"
    plant.write_text(plant.read_text().replace("peak_concurrent: 8", "peak_concurrent: 3"))
    third = load_fleet(root, today=TODAY, cache=ParseCache(cache_file))
    assert parsed == ["pune-pilot"], "only the edited file is parsed"
    assert next(p for p in third.plants if p.code == "pune-pilot").users.peak_concurrent == 3


def test_errors_in_cached_files_keep_their_positions(tmp_path: Path) -> None:
    """A file that parses (so is cached) but fails validation is still located exactly."""
    from plantops.spec import ParseCache

    root = _copy(tmp_path)
    plant = root / "plants" / "pune-pilot.yaml"
    plant.write_text(plant.read_text().replace("timezone: Asia/Kolkata", "timezone: Mars/Base"))
    cache_file = tmp_path / "cache.pickle"
    messages = []
    for _ in range(2):
        with pytest.raises(SpecError) as caught:
            load_fleet(root, today=TODAY, cache=ParseCache(cache_file))
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "plants/pune-pilot.yaml:" in messages[0] and "timezone" in messages[0]


def test_damaged_parse_cache_is_ignored(tmp_path: Path) -> None:
    from plantops.spec import ParseCache

    root = _copy(tmp_path)
    cache_file = tmp_path / "cache.pickle"
    cache_file.write_bytes(b"not a pickle")
    loaded = load_fleet(root, today=TODAY, cache=ParseCache(cache_file))
    assert len(loaded.plants) == 9
    assert ParseCache(cache_file).get(loaded.plant_sources["pune-pilot"].digest) is not None

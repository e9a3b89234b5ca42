"""``region``: one rule for every region in the spec (a plant's, a cluster's, an object
store's), a located error when it is broken, and a plant region that no cluster is in
named (an error for a Kubernetes plant, a warning for a VM plant, which may stand alone).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantops.errors import SpecError
from plantops.spec import load_fleet
from plantops.spec.models import DNS_LABEL
from tests.conftest import TODAY

BASE = Path(__file__).parent / "base"


def _fleet(tmp: Path, plant_region: str, *, cluster_region: str = "eu-central") -> Path:
    root = tmp / "fleet"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(BASE, root)
    beta = root / "plants" / "beta.yaml"
    beta.write_text(beta.read_text().replace("region: eu-central", f"region: {plant_region}"))
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace("region: eu-central", f"region: {cluster_region}", 1)
    )
    return root


def _problems(root: Path) -> list[str]:
    try:
        loaded = load_fleet(root, today=TODAY)
    except SpecError as exc:
        return [p.render() for p in exc.problems]
    return [p.render() for p in loaded.warnings]


# Region-like text: mostly lower-case words and '-', with the characters people type by
# mistake (capitals, spaces, '_', '.', '/', unicode) mixed in.
_REGION_TEXT = st.text(
    alphabet=st.sampled_from("abcdez019-_ ./AZé"), min_size=1, max_size=70
).filter(lambda s: s.strip() == s and not s.startswith(("-", "#", "&", "*", "!", "|", ">")))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(region=_REGION_TEXT)
def test_a_plant_region_is_a_dns_label_of_a_cluster_region(tmp_path: Path, region: str) -> None:
    root = _fleet(tmp_path, f'"{region}"')
    problems = _problems(root)
    valid = re.fullmatch(DNS_LABEL, region) is not None
    if region == "eu-central":
        assert problems == []
        return
    # Exactly one problem, located at the plant's region value (line 5, column 9).
    assert len(problems) == 1, problems
    assert problems[0].startswith("plants/beta.yaml:5:9: error [region]: "), problems
    if valid:
        assert f"unknown region {region!r}" in problems[0]
        assert "one of: eu-central" in problems[0]
    else:
        assert "unknown region" not in problems[0]


@pytest.mark.parametrize(
    "region", ["EU Central", "eu_central", "-eu", "eu-", "eu.central", "a" * 64, "ëu"]
)
def test_a_cluster_region_follows_the_same_rule(tmp_path: Path, region: str) -> None:
    root = _fleet(tmp_path, "eu-central", cluster_region=f'"{region}"')
    problems = _problems(root)
    assert any(
        p.startswith("fleet.yaml:20:13: error [clusters[0].region]") for p in problems
    ), problems


def test_an_object_store_region_follows_the_same_rule(tmp_path: Path) -> None:
    root = _fleet(tmp_path, "eu-central")
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text()
        + "platform:\n  backup_store: {destination: s3://bucket/p, region: EU West 1}\n"
    )
    problems = _problems(root)
    assert len(problems) == 1 and "[platform.backup_store.region]" in problems[0], problems
    assert "'EU West 1' is not valid here" in problems[0]


def test_a_vm_plant_alone_in_its_region_is_named_not_refused(tmp_path: Path) -> None:
    root = _fleet(tmp_path, "sa-east")
    beta = root / "plants" / "beta.yaml"
    beta.write_text(beta.read_text().replace("timezone:", "runtime: vm\ntimezone:"))
    loaded = load_fleet(root, today=TODAY)  # no error
    [warning] = [p.render() for p in loaded.warnings]
    assert warning.startswith("plants/beta.yaml:5:9: warning [region]: unknown region 'sa-east'")
    assert "a VM plant may be alone in its region" in warning


def test_a_huge_value_is_quoted_short(tmp_path: Path) -> None:
    [problem] = _problems(_fleet(tmp_path, "x" * 5000))
    assert problem.startswith("plants/beta.yaml:5:9: error [region]: 'xxx"), problem
    assert "(5000 characters)" in problem and len(problem) < 300, problem

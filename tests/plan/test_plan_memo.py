"""Classification and sizing cached by input hash: the same plan, and a changed input is
computed again (plan.PlanMemo, services.plancache)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plantops.plan import Plan, PlanMemo, build_plan
from plantops.services import open_fleet, plan_fleet, renderer_fingerprint
from plantops.services.plancache import memo_file, memo_scope, open_plan_memo, store_plan_memo
from tests.conftest import TODAY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
SCOPE = memo_scope(renderer_fingerprint(), TODAY)


def _same(a: Plan, b: Plan) -> None:
    assert [d.as_dict() for d in a.deployments] == [d.as_dict() for d in b.deployments]
    assert [d.services for d in a.deployments] == [d.services for d in b.deployments]
    assert [d.input_hash for d in a.deployments] == [d.input_hash for d in b.deployments]
    assert a.classifications == b.classifications
    assert a.warnings == b.warnings


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "fleet"))


def _plan(root: Path, memo: PlanMemo | None) -> Plan:
    return build_plan(open_fleet(root, today=TODAY).fleet, (), memo)


def test_memo_gives_the_same_plan_and_a_second_run_computes_nothing(fleet_dir: Path) -> None:
    fresh = _plan(fleet_dir, None)
    memo = PlanMemo(SCOPE)
    first = _plan(fleet_dir, memo)
    assert memo.added == len(fresh.classifications) + len(fresh.deployments)
    memo.new.clear()
    second = _plan(fleet_dir, memo)
    assert memo.added == 0
    _same(fresh, first)
    _same(fresh, second)


def test_a_changed_plant_is_classified_and_sized_again(fleet_dir: Path) -> None:
    memo = PlanMemo(SCOPE)
    before = _plan(fleet_dir, memo)
    plant = fleet_dir / "plants" / "brno-components.yaml"
    plant.write_text(plant.read_text().replace("peak_concurrent: 30", "peak_concurrent: 70"))
    memo.new.clear()
    after = _plan(fleet_dir, memo)
    _same(_plan(fleet_dir, None), after)  # nothing stale came out of the memo
    touched = [d for d in after.deployments if "brno-components" in (t.plant for t in d.tenants)]
    assert memo.added == 1 + len(touched)  # its classification and its deployments only
    old = {d.id: d for d in before.deployments}
    assert any(old[d.id].sizing != d.sizing for d in touched)  # the change reached sizing
    untouched = [d for d in after.deployments if d not in touched]
    assert all(old[d.id].sizing is d.sizing for d in untouched)  # taken from the memo


def test_a_changed_fleet_file_recomputes_everything(fleet_dir: Path) -> None:
    memo = PlanMemo(SCOPE)
    _plan(fleet_dir, memo)
    fleet = fleet_dir / "fleet.yaml"
    fleet.write_text(fleet.read_text() + "\n# a comment changes the digest\n")
    memo.new.clear()
    after = _plan(fleet_dir, memo)
    assert memo.added == len(after.classifications) + len(after.deployments)


def test_stored_memo_is_reused_only_in_its_scope_and_when_private(
    fleet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTOPS_PLAN_CACHE", str(tmp_path / "plans"))
    out = tmp_path / "out"
    plan_fleet(fleet_dir, out, today=TODAY)
    stored = memo_file(fleet_dir)
    assert stored is not None and stored.is_file()
    memo, _ = open_plan_memo(fleet_dir, SCOPE)
    assert memo.classifications and memo.sizings
    # Another day or another plantops: an empty memo.
    assert not open_plan_memo(fleet_dir, memo_scope(renderer_fingerprint(), TODAY.replace(day=23)))[
        0
    ].sizings
    assert not open_plan_memo(fleet_dir, memo_scope("other-code", TODAY))[0].sizings
    # Writable by others: never read.
    stored.chmod(0o666)
    assert not open_plan_memo(fleet_dir, SCOPE)[0].sizings
    stored.chmod(0o600)
    # Damaged: ignored, and the next run stores a good one again.
    stored.write_bytes(b"not a pickle")
    assert not open_plan_memo(fleet_dir, SCOPE)[0].sizings
    res = plan_fleet(fleet_dir, out, today=TODAY)
    memo, at = open_plan_memo(fleet_dir, SCOPE)
    assert len(memo.sizings) == len(res.plan.deployments)
    # Disabled by an empty variable: nothing to open, nothing stored.
    monkeypatch.setenv("PLANTOPS_PLAN_CACHE", "")
    memo, at = open_plan_memo(fleet_dir, SCOPE)
    assert at.path is None and not memo.sizings
    store_plan_memo(memo, at)


def test_a_small_change_goes_to_the_delta_and_is_read_back(
    fleet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTOPS_PLAN_CACHE", str(tmp_path / "plans"))
    out = tmp_path / "out"
    plan_fleet(fleet_dir, out, today=TODAY)
    stored = memo_file(fleet_dir)
    assert stored is not None
    base = stored.read_bytes()
    plant = fleet_dir / "plants" / "brno-components.yaml"
    plant.write_text(plant.read_text().replace("peak_concurrent: 30", "peak_concurrent: 70"))
    plan_fleet(fleet_dir, out, today=TODAY)
    assert stored.read_bytes() == base  # the memo itself was not rewritten
    assert stored.with_suffix(".delta").is_file()
    memo, _ = open_plan_memo(fleet_dir, SCOPE)
    memo.new.clear()
    _same(_plan(fleet_dir, None), _plan(fleet_dir, memo))
    assert memo.added == 0  # the changed plant's entries came from the delta

"""The pure gates: each passes and fails for its own reason."""

from __future__ import annotations

import datetime as dt

from plantops.release.gates import (
    Approval,
    Evidence,
    PlantTarget,
    SmokeTarget,
    default_wave,
    evaluate_plant,
    gate_approvals,
    gate_order,
    gate_rehearsal,
    gate_smoke,
    gate_soak,
    gate_windows,
)
from plantops.release.windows import evaluate_windows
from plantops.spec.models import (
    ApprovalRule,
    FreezeKind,
    FreezeWindow,
    ReleaseWindow,
    Shift,
    StageRelease,
)

LOCK = "sha256:" + "1" * 64
UTC = dt.UTC
EV = Evidence(lock_id=LOCK, series="17.0")
BERLIN = PlantTarget("leipzig", "high", 3, "Europe/Berlin")


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def test_the_author_cannot_approve_and_roles_are_required() -> None:
    rule = ApprovalRule(count=2, roles=["plant-manager", "release-manager"])
    ev = Evidence(
        lock_id=LOCK,
        series="17.0",
        author="alice",
        approvals=(Approval("alice", "release-manager", 3), Approval("bob", "plant-manager", 4)),
    )
    r = gate_approvals(ev, rule)
    assert not r.ok
    assert "alice is the release author and cannot approve it" in r.reasons
    assert "1 of 2 approval(s)" in r.reasons and "no approval by role release-manager" in r.reasons
    ok = Evidence(
        lock_id=LOCK,
        series="17.0",
        author="alice",
        approvals=(Approval("carol", "release-manager", 5), Approval("bob", "plant-manager", 4)),
    )
    assert gate_approvals(ok, rule).ok


def rehearsal(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schema": "plantops.io/rehearsal/v1",
        "release": LOCK,
        "plant": "leipzig",
        "environment": "prod",
        "backup_id": "b-2",
        "neutralized": True,
        "modules": ["acme_mrp", "acme_qc"],
        "exit_code": 0,
        "duration_seconds": 312.5,
        "log_sha256": "ab" * 32,
    }
    doc.update(over)
    return doc


def ev_rehearsal(doc: dict[str, object]) -> Evidence:
    return Evidence(
        lock_id=LOCK,
        series="17.0",
        rehearsals={"leipzig": (doc, "sha256:doc")},
        latest_verified_backup={"leipzig": "b-2"},
        changed_modules={"leipzig": ("acme_qc",)},
    )


def test_rehearsal_must_be_for_this_release_backup_and_modules_and_exit_0() -> None:
    assert gate_rehearsal(ev_rehearsal(rehearsal()), BERLIN, "prod").ok
    cases = {
        "release": ("sha256:" + "2" * 64, "rehearsal is for release"),
        "backup_id": ("b-1", "the newest verified one is b-2"),
        "environment": ("staging", "not prod's"),
        "modules": (["acme_mrp"], "modules not updated in the rehearsal: acme_qc"),
        "exit_code": (1, "odoo -u exited 1"),
        "neutralized": (False, "not neutralized"),
    }
    for key, (value, why) in cases.items():
        r = gate_rehearsal(ev_rehearsal(rehearsal(**{key: value})), BERLIN, "prod")
        assert not r.ok and any(why in x for x in r.reasons), (key, r.reasons)
    none = Evidence(lock_id=LOCK, series="17.0")
    assert "no migration rehearsal result" in gate_rehearsal(none, BERLIN, "prod").reasons[0]


def test_smoke_needs_a_passing_probe_on_the_release_series() -> None:
    def ev(s: SmokeTarget) -> Evidence:
        return Evidence(lock_id=LOCK, series="17.0", previous_stage="staging", smoke={"leipzig": s})

    assert gate_smoke(ev(SmokeTarget(True, "17.0", "17.0", (), "d")), BERLIN).ok
    wrong = gate_smoke(ev(SmokeTarget(True, "16.0", "16.0", (), "d")), BERLIN)
    assert not wrong.ok and "the release is 17.0" in wrong.reasons[0]
    failed = gate_smoke(ev(SmokeTarget(False, "17.0", "17.0", ("login: 500",), "d")), BERLIN)
    assert not failed.ok and failed.reasons == ("failed check: login: 500",)
    missing = Evidence(lock_id=LOCK, series="17.0", previous_stage="staging")
    assert not gate_smoke(missing, BERLIN).ok


def test_soak_counts_from_the_previous_stage_and_the_previous_wave() -> None:
    cfg = StageRelease(gates=["soak"], soak_hours=48, wave_soak_hours=4)
    ev = Evidence(
        lock_id=LOCK,
        series="17.0",
        previous_stage="staging",
        previous_promoted={"leipzig": at("2026-12-01T10:00:00+00:00")},
        promoted_here={"pune": at("2026-12-03T09:00:00+00:00")},
        wave_plants={1: ("pune",), 3: ("leipzig",)},
    )
    early = gate_soak(ev, BERLIN, cfg, at("2026-12-03T08:00:00+00:00"))
    # Both soaks are short: eligible when the later one ends.
    assert not early.ok and len(early.reasons) == 2
    assert early.next_allowed == at("2026-12-03T13:00:00+00:00")
    wave = gate_soak(ev, BERLIN, cfg, at("2026-12-03T11:00:00+00:00"))
    assert not wave.ok and wave.next_allowed == at("2026-12-03T13:00:00+00:00")
    assert gate_soak(ev, BERLIN, cfg, at("2026-12-03T13:00:00+00:00")).ok


def test_order_needs_the_previous_stage_and_earlier_waves() -> None:
    ev = Evidence(
        lock_id=LOCK,
        series="17.0",
        previous_stage="staging",
        previous_promoted={},
        wave_plants={1: ("pune",), 3: ("leipzig",)},
    )
    r = gate_order(ev, BERLIN)
    assert not r.ok
    assert r.reasons == (
        "leipzig has not received this release in staging",
        "wave 1 is not complete: pune",
    )


MRP = FreezeWindow(
    name="mrp", kind=FreezeKind.mrp_run, rrule="FREQ=DAILY", at="02:00", duration_hours=2
)
SHIFTS = (
    Shift(name="early", start="06:00", end="14:00", days=["mon", "tue", "wed", "thu", "fri"]),
)


def test_a_daily_mrp_run_blocks_in_plant_time_across_dst() -> None:
    # 02:30 Berlin is 01:30 UTC in winter and 00:30 UTC in summer: the freeze follows the wall clock.
    winter = evaluate_windows("Europe/Berlin", (), (MRP,), (), 0, at("2026-12-08T01:30:00+00:00"))
    summer = evaluate_windows("Europe/Berlin", (), (MRP,), (), 0, at("2026-07-08T00:30:00+00:00"))
    assert not winter.ok and not summer.ok
    assert winter.next_allowed == at("2026-12-08T03:00:00+00:00")
    assert summer.next_allowed == at("2026-07-08T02:00:00+00:00")
    assert evaluate_windows("Europe/Berlin", (), (MRP,), (), 0, at("2026-12-08T03:00:00+00:00")).ok


def test_shift_change_margin_and_next_allowed_time() -> None:
    # Mon 2026-12-07 05:50 Berlin: 10 min before the 06:00 shift start, margin 30 min.
    v = evaluate_windows("Europe/Berlin", SHIFTS, (), (), 30, at("2026-12-07T04:50:00+00:00"))
    assert not v.ok and "shift early starts at Mon 06:00" in v.reasons[0]
    assert v.next_allowed == at("2026-12-07T05:30:00+00:00")
    # Saturday has no shift.
    assert evaluate_windows("Europe/Berlin", SHIFTS, (), (), 30, at("2026-12-05T04:50:00+00:00")).ok


def test_allowed_windows_and_one_off_freezes() -> None:
    weekend = ReleaseWindow(
        name="weekend", rrule="FREQ=WEEKLY;BYDAY=SA,SU", at="00:00", duration_hours=24
    )
    cfg = StageRelease(gates=["windows"], windows=[weekend])
    wed = gate_windows(BERLIN, cfg, 30, at("2026-12-09T12:00:00+00:00"))
    assert not wed.ok and "outside every allowed window (weekend)" in wed.reasons
    assert wed.next_allowed == at("2026-12-11T23:00:00+00:00")  # Sat 00:00 Berlin
    shutdown = FreezeWindow(
        name="xmas",
        kind=FreezeKind.shutdown,
        start=dt.datetime(2026, 12, 23),
        end=dt.datetime(2027, 1, 2),
    )
    frozen = PlantTarget("leipzig", "high", 3, "Europe/Berlin", freezes=(shutdown,))
    sat = gate_windows(frozen, cfg, 30, at("2026-12-26T12:00:00+00:00"))
    assert not sat.ok and sat.reasons == ("freeze xmas",)
    # The freeze ends at 2027-01-02 00:00 Berlin, a Saturday: open from then.
    assert sat.next_allowed == at("2027-01-01T23:00:00+00:00")


def test_default_waves_put_the_least_demanding_tier_first() -> None:
    assert [default_wave(r, 4, None) for r in (4, 3, 2, 1)] == [1, 2, 3, 4]
    assert default_wave(1, 4, 0) == 0  # a canary plant goes first whatever its tier


def test_evaluate_plant_runs_the_configured_gates_in_order() -> None:
    cfg = StageRelease(gates=["approvals", "windows"], approvals=ApprovalRule(count=1))
    v = evaluate_plant("prod", BERLIN, cfg, EV, production=True, margin_minutes=30,
                       now=at("2026-12-09T12:00:00+00:00"))  # fmt: skip
    assert [g.gate for g in v.gates] == ["order", "approvals", "windows"]
    assert [g.gate for g in v.failed] == ["approvals"] and v.next_allowed is None

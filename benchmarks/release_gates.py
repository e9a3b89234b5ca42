"""Gate evaluation for N plants × the 4 stages (every gate on, real calendars), and the
ledger: append rate and ``verify`` time at 100,000 entries (SQLite; PostgreSQL with --pg).

    .venv/bin/python benchmarks/release_gates.py --plants 1000 --entries 100000
    .venv/bin/python benchmarks/release_gates.py --entries 100000 --pg postgresql://…/db

Gates are pure: this times ``evaluate_plant`` over evidence prepared as the promote use
case prepares it (approvals, smoke, rehearsal, soak and wave data, shifts, an RRULE MRP
freeze, a one-off shutdown and an allowed weekend window in each plant's timezone). The
ledger is appended in transactions of --batch entries (what a promotion of a wave does)
plus a sample of single-entry transactions (one fsync each).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from plantops.release.gates import (
    Approval,
    Evidence,
    PlantTarget,
    PolicySummary,
    SmokeTarget,
    VulnSummary,
    evaluate_plant,
)
from plantops.spec.models import (
    ApprovalRule,
    FreezeKind,
    FreezeWindow,
    ReleaseWindow,
    Shift,
    StageRelease,
)

LOCK = "sha256:" + "1" * 64
ZONES = ["Europe/Berlin", "America/Detroit", "Asia/Kolkata", "America/Monterrey", "Europe/Lisbon"]
STAGES = ("dev", "test", "staging", "prod")
TIERS = ("pilot", "standard", "high", "critical")
ALL_GATES = ["addons", "vulnerabilities", "policy", "rehearsal", "smoke", "approvals", "soak", "windows"]  # fmt: skip


def plants(n: int, seed: int = 7) -> list[PlantTarget]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        start = rnd.choice(["05:00", "06:00", "07:00"])
        shifts = (
            Shift(name="early", start=start, end="14:00", days=["mon", "tue", "wed", "thu", "fri"]),
            Shift(
                name="late", start="14:00", end="22:00", days=["mon", "tue", "wed", "thu", "fri"]
            ),
        )
        freezes = (
            FreezeWindow(name="mrp", kind=FreezeKind.mrp_run, rrule="FREQ=DAILY", at="02:00",
                         duration_hours=2),
            FreezeWindow(name="close", kind=FreezeKind.month_end_close,
                         rrule="FREQ=MONTHLY;BYMONTHDAY=-1", at="18:00", duration_hours=30),
            FreezeWindow(name="xmas", kind=FreezeKind.shutdown, start=dt.datetime(2026, 12, 23),
                         end=dt.datetime(2027, 1, 2)),
        )  # fmt: skip
        tier = rnd.choice(["pilot", "standard", "high", "critical"])
        out.append(PlantTarget(f"plant-{i:04d}", tier, 1 + i % 4, ZONES[i % len(ZONES)],
                               shifts, freezes))  # fmt: skip
    return out


def bench_gates(n: int, rounds: int, now: dt.datetime) -> None:
    targets = plants(n)
    weekend = ReleaseWindow(name="weekend", rrule="FREQ=WEEKLY;BYDAY=SA,SU", at="00:00",
                            duration_hours=24)  # fmt: skip
    cfg = StageRelease(
        gates=ALL_GATES,  # type: ignore[arg-type]
        approvals=ApprovalRule(count=2, roles=["plant-manager", "release-manager"]),
        soak_hours=24,
        wave_soak_hours=4,
        windows=[weekend],
    )
    t0 = now - dt.timedelta(days=3)
    reh = {
        p.plant: ({"release": LOCK, "environment": "prod", "backup_id": "b", "neutralized": True,
                   "modules": ["m"], "exit_code": 0, "duration_seconds": 1.0}, "sha256:x")
        for p in targets
    }  # fmt: skip
    ev = Evidence(
        lock_id=LOCK,
        series="17.0",
        rehearsals=reh,
        vulns={(t, s): VulnSummary(True, (), "d") for t in TIERS for s in STAGES},
        policy={s: PolicySummary(True, (), "d") for s in STAGES},
        latest_verified_backup={p.plant: "b" for p in targets},
        changed_modules={p.plant: ("m",) for p in targets},
        smoke={p.plant: SmokeTarget(True, "17.0", "17.0", (), "d") for p in targets},
        approvals=(Approval("rita", "release-manager", 1), Approval("paul", "plant-manager", 2)),
        author="alice",
        previous_stage="staging",
        previous_promoted={p.plant: t0 for p in targets},
        previous_first=t0,
        promoted_here={p.plant: t0 for p in targets if p.wave < 4},
        wave_plants={w: tuple(p.plant for p in targets if p.wave == w) for w in (1, 2, 3, 4)},
    )
    # The rehearsal restores the target stage's backup: one set of results per stage.
    per_stage = {
        stage: dataclasses.replace(
            ev, rehearsals={p: ({**d, "environment": stage}, h) for p, (d, h) in reh.items()}
        )
        for stage in STAGES
    }
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verdicts = [
            evaluate_plant(
                stage,
                t,
                cfg,
                per_stage[stage],
                production=stage == "prod",
                margin_minutes=30,
                now=now + dt.timedelta(minutes=i),
            )  # fmt: skip
            for i, stage in enumerate(STAGES)
            for t in targets
        ]
        times.append(time.perf_counter() - start)
    blocked = sum(not v.ok for v in verdicts)
    print(
        f"gates: {n} plants × {len(STAGES)} stages = {len(verdicts)} evaluations, "
        f"{len(cfg.gates) + 1} gates each: best {min(times):.3f} s, median "
        f"{sorted(times)[len(times) // 2]:.3f} s at {now:%a %H:%M} UTC ({blocked} blocked)"
    )


def bench_ledger(url: str, entries: int, batch: int, singles: int) -> None:
    from plantops.store.ledger import NewEntry, open_ledger

    led = open_ledger(url)
    now = dt.datetime(2026, 12, 9, tzinfo=dt.UTC)
    payload = {"wave": 2, "plants": ["plant-0001", "plant-0002"], "gates": {"ok": True}}
    start = time.perf_counter()
    for s in range(singles):
        led.append([NewEntry("approval", LOCK, "prod", "u", {"i": s})], now=now)
    single = time.perf_counter() - start
    start = time.perf_counter()
    done = singles
    while done < entries:
        k = min(batch, entries - done)
        led.append([NewEntry("gate", LOCK, "prod", "ci", {**payload, "i": done + j})
                    for j in range(k)], now=now)  # fmt: skip
        done += k
    bulk = time.perf_counter() - start
    start = time.perf_counter()
    v = led.verify()
    verify = time.perf_counter() - start
    assert v.ok and v.entries == entries, v
    led.close()
    where = url.split(":", 1)[0]
    print(
        f"ledger ({where}): {singles} single-entry appends {singles / single:.0f}/s; "
        f"{entries - singles} in batches of {batch} {(entries - singles) / bulk:.0f}/s; "
        f"verify {entries} entries {verify:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plants", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=500)
    ap.add_argument("--pg", help="also a PostgreSQL URL (an empty database)")
    args = ap.parse_args()
    if args.plants:
        # Wednesday noon: outside the weekend window, every plant searches its next window.
        bench_gates(args.plants, args.rounds, dt.datetime(2026, 12, 9, 12, tzinfo=dt.UTC))
        # Saturday noon: inside it, blocked only by shift changes near noon (where there are).
        bench_gates(args.plants, args.rounds, dt.datetime(2026, 12, 12, 12, tzinfo=dt.UTC))
    if args.entries:
        with tempfile.TemporaryDirectory() as tmp:
            bench_ledger(
                f"sqlite:///{Path(tmp) / 'state.db'}", args.entries, args.batch, args.singles
            )
        if args.pg:
            bench_ledger(args.pg, args.entries, args.batch, args.singles)


if __name__ == "__main__":
    main()

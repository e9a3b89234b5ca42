"""The use case behind ``plantops vulns check``: scanner reports judged by the policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from plantops.errors import UserError
from plantops.services import classify, open_fleet
from plantops.vulns import (
    DEFAULT_POLICY,
    GateResult,
    evaluate_gate,
    load_policy,
    read_report,
    read_vex,
)


def vulns_check(
    reports: list[Path],
    policy_file: Path | None,
    tier: str | None,
    env: str | None,
    vex_files: list[Path],
    today: dt.date,
    fleet: Path | None = None,
    plant: str | None = None,
) -> GateResult:
    """Read the scanner reports and VEX documents and judge them against the policy
    (for ``tier``/``env``, or the tier of ``plant``'s classification in ``fleet``)."""
    policy = load_policy(policy_file) if policy_file else DEFAULT_POLICY
    require = True
    if fleet is not None:
        tier, require = _fleet_tier(fleet, plant, env, tier, today), False
    vex = [s for f in vex_files for s in read_vex(f)]
    read = [read_report(p) for p in reports]
    rows = [v for r in read for v in r.vulnerabilities]
    return evaluate_gate(
        rows,
        policy,
        tier=tier,
        env=env,
        today=today,
        vex=vex,
        reports=[f"{r.file} ({r.format}, {len(r.vulnerabilities)})" for r in read],
        require=require,
    )


def _fleet_tier(
    fleet: Path, plant: str | None, env: str | None, tier: str | None, today: dt.date
) -> str:
    """The plant's classified tier; the environment must be one of the fleet's."""
    if plant is None or tier is not None:
        raise UserError(
            "--fleet needs --plant CODE (the tier comes from its classification), not --tier"
        )
    res = open_fleet(fleet, today=today)
    envs = [e.name for e in res.fleet.environments]
    if env is not None and env not in envs:
        raise UserError(f"--env {env}: not an environment of the fleet ({', '.join(envs)})")
    (classification,) = classify(fleet, today=today, only=[plant])
    return classification.tier


__all__ = ["vulns_check"]

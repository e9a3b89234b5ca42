"""Thin adapter from the fleet model to the backup core's ``BackupPolicy``.

The tier of a deployment is, in order: an explicit ``tier`` (CLI), the plant's
active ``tier`` override, or — until classification lands — the fleet's most
demanding tier (over-protecting a plant is the safe mistake).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from plantops.backup.policy import BackupPolicy
from plantops.errors import UserError
from plantops.model import Fleet, Plant, build_fleet
from plantops.spec.loader import load_fleet
from plantops.spec.models import TierSpec


@dataclass(frozen=True)
class Deployment:
    fleet: Fleet
    plant: Plant
    env: str
    tier: str
    tier_reason: str
    policy: BackupPolicy


def policy_from_tier(name: str, tier: TierSpec) -> BackupPolicy:
    b = tier.backup
    return BackupPolicy(
        tier=name,
        rpo_minutes=b.rpo_minutes,
        rto_minutes=b.rto_minutes,
        daily=b.retention.daily,
        weekly=b.retention.weekly,
        monthly=b.retention.monthly,
        verify=b.verify,
        heapallindexed=tier.rank == 1,
        pitr=b.pitr,
    )


def resolve_deployment(
    root: Path, plant_code: str, env: str, tier: str | None = None, today: dt.date | None = None
) -> Deployment:
    fleet = build_fleet(
        load_fleet(root, today=today or dt.date.today()), today=today or dt.date.today()
    )
    try:
        plant = fleet.plant(plant_code)
    except KeyError:
        known = ", ".join(sorted(p.code for p in fleet.plants))
        raise UserError(f"no plant {plant_code!r} in fleet {root} (plants: {known})") from None
    envs = [e.name for e in plant.environments]
    if env not in envs:
        raise UserError(
            f"plant {plant_code} does not run in {env!r} (environments: {', '.join(envs)})"
        )
    tiers = fleet.spec.tiers
    if tier is not None:
        reason = "given on the command line"
    elif (ov := plant.override("tier")) is not None:
        tier, reason = str(ov.value), ov.justification()
    else:
        tier = min(tiers, key=lambda n: tiers[n].rank)
        reason = "no classification yet: the fleet's most demanding tier"
    if tier not in tiers:
        raise UserError(
            f"tier {tier!r} is not defined in the fleet (tiers: {', '.join(sorted(tiers))})"
        )
    return Deployment(fleet, plant, env, tier, reason, policy_from_tier(tier, tiers[tier]))


def deployment_policy(root: Path, plant: str, env: str, tier: str | None = None) -> BackupPolicy:
    return resolve_deployment(root, plant, env, tier).policy

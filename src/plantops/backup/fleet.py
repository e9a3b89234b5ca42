"""Adapter from the planned fleet to what the backup core needs: one deployment's tier,
objectives and names.

The tier is the one ``plantops plan`` deploys the plant with: the classification of the
plant, or — for plants sharing a deployment (shared-multitenant) — the most demanding
tier of that deployment, because its database cluster and its backups are shared. An
explicit ``tier`` (command line) overrides it and says so in the reason.

Pure: it takes the fleet as built (the use cases load it once, through
``services.open_fleet``, with its parse cache and the UTC date); must never import
``services`` (a layer above).
"""

from __future__ import annotations

from dataclasses import dataclass

from plantops.backup.policy import ENCRYPTED_BY_DEFAULT, BackupPolicy, Encryption
from plantops.errors import UserError
from plantops.model import Fleet
from plantops.plan import Deployment, build_plan
from plantops.spec.models import TierSpec


@dataclass(frozen=True)
class BackupTarget:
    """One plant × environment as planned: where its data lives and what protects it."""

    fleet: Fleet
    deployment: Deployment
    plant: str
    env: str
    database: str
    tier: str
    tier_reason: str
    policy: BackupPolicy

    @property
    def runtime(self) -> str:
        return self.deployment.runtime

    @property
    def tier_spec(self) -> TierSpec:
        return self.fleet.tier(self.tier)


def tier_encryption(name: str, tier: TierSpec) -> Encryption:
    """``tiers.<name>.backup.encryption``, defaulting to required for the most demanding
    tiers (named critical/high, or ranked 1-2), optional for the rest."""
    if tier.backup.encryption is not None:
        return tier.backup.encryption
    return "required" if name in ENCRYPTED_BY_DEFAULT or tier.rank <= 2 else "optional"


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
        encryption=tier_encryption(name, tier),
    )


def find_deployment(fleet: Fleet, plant_code: str, env: str) -> Deployment:
    """The planned deployment serving ``plant_code`` in ``env`` (UserError if none)."""
    codes = sorted(p.code for p in fleet.plants)
    if plant_code not in codes:
        raise UserError(f"no plant {plant_code!r} in the fleet (plants: {', '.join(codes)})")
    deployments = build_plan(fleet, [plant_code]).for_plant(plant_code)
    for dep in deployments:
        if dep.environment.name == env:
            return dep
    envs = ", ".join(d.environment.name for d in deployments)
    raise UserError(f"plant {plant_code} does not run in {env!r} (environments: {envs})")


def target_for(fleet: Fleet, plant_code: str, env: str, tier: str | None = None) -> BackupTarget:
    dep = find_deployment(fleet, plant_code, env)
    database = next(t.database for t in dep.tenants if t.plant == plant_code)
    if tier is not None:
        if tier not in fleet.spec.tiers:
            known = ", ".join(sorted(fleet.spec.tiers))
            raise UserError(f"tier {tier!r} is not defined in the fleet (tiers: {known})")
        reason = f"--tier {tier} given on the command line (planned tier: {dep.tier})"
    else:
        tier = dep.tier
        own = next(c for c in dep.classifications if c.plant == plant_code)
        why = "; ".join(r.short() for r in own.reasons if r.decides == "tier")
        if own.tier == dep.tier:
            reason = f"classified {why}"
        else:
            others = ", ".join(t.plant for t in dep.tenants if t.plant != plant_code)
            reason = (
                f"deployment {dep.namespace} shared with {others} runs at tier {dep.tier}"
                f" (this plant alone: {why})"
            )
    return BackupTarget(
        fleet=fleet,
        deployment=dep,
        plant=plant_code,
        env=env,
        database=database,
        tier=tier,
        tier_reason=reason,
        policy=policy_from_tier(tier, fleet.tier(tier)),
    )

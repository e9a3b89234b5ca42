"""Backup objectives of a tier, as the backup core needs them (frozen, no I/O).

The fleet model carries these per tier (``tiers.<name>.backup``); ``DEFAULT_POLICIES``
serve ad-hoc backups made with ``--db-url`` and no fleet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from plantops.errors import UserError
from plantops.spec.models import ENCRYPTED_TIERS

VerifyPolicy = Literal["every", "weekly"]
Encryption = Literal["required", "optional"]
# Tiers whose backups are encrypted unless fleet.yaml says otherwise.
ENCRYPTED_BY_DEFAULT = frozenset(ENCRYPTED_TIERS)


@dataclass(frozen=True)
class BackupPolicy:
    tier: str
    rpo_minutes: int
    rto_minutes: int
    daily: int
    weekly: int
    monthly: int
    verify: VerifyPolicy = "weekly"
    heapallindexed: bool = False
    pitr: bool = False
    encryption: Encryption = "optional"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupPolicy:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


DEFAULT_POLICIES: dict[str, BackupPolicy] = {
    "critical": BackupPolicy("critical", 15, 60, 14, 8, 12, "every", True, True, "required"),
    "high": BackupPolicy("high", 60, 240, 7, 4, 6, "every", False, True, "required"),
    "standard": BackupPolicy("standard", 1440, 480, 7, 4, 3, "weekly"),
    "pilot": BackupPolicy("pilot", 1440, 1440, 7, 4, 3, "weekly"),
}
# Odoo.sh keeps 7 daily, 4 weekly and 3 monthly backups: the default for ad-hoc use.
ADHOC_POLICY = BackupPolicy("adhoc", 1440, 1440, 7, 4, 3, "weekly")


def policy_for_tier(tier: str) -> BackupPolicy:
    """The built-in objectives of ``tier`` (ad-hoc backups without a fleet)."""
    if tier == ADHOC_POLICY.tier:
        return ADHOC_POLICY
    if tier not in DEFAULT_POLICIES:
        known = ", ".join([*DEFAULT_POLICIES, ADHOC_POLICY.tier])
        raise UserError(
            f"--tier {tier!r} is not a known tier (built-in tiers: {known}; with --fleet,"
            " the tiers of fleet.yaml)"
        )
    return DEFAULT_POLICIES[tier]


def stored_policy_for_tier(tier: str) -> BackupPolicy:
    """Built-in objectives for an old record's tier (ad hoc for a tier no longer known)."""
    return DEFAULT_POLICIES.get(tier, ADHOC_POLICY)


def recorded_policy(tier: str, recorded: dict[str, Any]) -> BackupPolicy:
    """The objectives a backup was taken under; built-in defaults for older records."""
    if recorded:
        try:
            return BackupPolicy.from_dict(recorded)
        except TypeError:
            pass
    return stored_policy_for_tier(tier)

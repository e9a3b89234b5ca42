"""Backup objectives of a tier, as the backup core needs them (frozen, no I/O).

The fleet model carries these per tier (``tiers.<name>.backup``); ``DEFAULT_POLICIES``
serve ad-hoc backups made with ``--db-url`` and no fleet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

VerifyPolicy = Literal["every", "weekly"]


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupPolicy:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


DEFAULT_POLICIES: dict[str, BackupPolicy] = {
    "critical": BackupPolicy("critical", 15, 60, 14, 8, 12, "every", True, True),
    "high": BackupPolicy("high", 60, 240, 7, 4, 6, "every", False, True),
    "standard": BackupPolicy("standard", 1440, 480, 7, 4, 3, "weekly"),
    "pilot": BackupPolicy("pilot", 1440, 1440, 7, 4, 3, "weekly"),
}
# Odoo.sh keeps 7 daily, 4 weekly and 3 monthly backups: the default for ad-hoc use.
ADHOC_POLICY = BackupPolicy("adhoc", 1440, 1440, 7, 4, 3, "weekly")


def policy_for_tier(tier: str) -> BackupPolicy:
    return DEFAULT_POLICIES.get(tier, ADHOC_POLICY)


def recorded_policy(tier: str, recorded: dict[str, Any]) -> BackupPolicy:
    """The objectives a backup was taken under; built-in defaults for older records."""
    if recorded:
        try:
            return BackupPolicy.from_dict(recorded)
        except TypeError:
            pass
    return policy_for_tier(tier)

"""Backup objectives of a tier, as the backup core needs them (frozen, no I/O).

The fleet model carries these per tier (``tiers.<name>.backup``); ``DEFAULT_POLICIES``
serve ad-hoc backups made with ``--db-url`` and no fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

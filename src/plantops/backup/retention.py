"""Grandfather-father-son retention: which complete backups to keep, and why (pure).

Per deployment, newest first: the newest backup of each of the last ``daily`` days,
of the last ``weekly`` ISO weeks and of the last ``monthly`` months is kept. The
newest complete backup and the newest *verified* backup are always kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from plantops.backup.policy import BackupPolicy
from plantops.store import BackupRecord


@dataclass(frozen=True)
class RetentionDecision:
    backup_id: str
    plant: str
    env: str
    started_at: datetime
    keep: bool
    reasons: tuple[str, ...]


def _bucket_keep(
    ordered: Sequence[BackupRecord],
    count: int,
    key: Callable[[datetime], str],
    label: str,
    reasons: dict[str, list[str]],
) -> None:
    seen: list[str] = []
    for b in ordered:
        bucket = key(b.started_at)
        if bucket in seen:
            continue
        if len(seen) >= count:
            break
        seen.append(bucket)
        reasons[b.id].append(f"{label} {bucket}")


def plan_retention(
    backups: Sequence[BackupRecord], policy_of: Callable[[BackupRecord], BackupPolicy]
) -> list[RetentionDecision]:
    """Decide keep/delete for every complete backup; other statuses are not considered."""
    groups: dict[tuple[str, str], list[BackupRecord]] = defaultdict(list)
    for b in backups:
        if b.status == "complete":
            groups[(b.plant, b.env)].append(b)
    decisions: list[RetentionDecision] = []
    for (plant, env), items in sorted(groups.items()):
        ordered = sorted(items, key=lambda b: (b.started_at, b.id), reverse=True)
        policy = policy_of(ordered[0])
        reasons: dict[str, list[str]] = {b.id: [] for b in ordered}
        reasons[ordered[0].id].append("newest backup")
        verified = [b for b in ordered if b.verified]
        if verified:
            reasons[verified[0].id].append("newest verified backup")
        _bucket_keep(ordered, policy.daily, lambda t: t.strftime("%Y-%m-%d"), "daily", reasons)
        _bucket_keep(
            ordered,
            policy.weekly,
            lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2]),
            "weekly",
            reasons,
        )
        _bucket_keep(ordered, policy.monthly, lambda t: t.strftime("%Y-%m"), "monthly", reasons)
        for b in ordered:
            why = reasons[b.id]
            if not why:
                why = [
                    f"beyond retention of tier {policy.tier!r}"
                    f" ({policy.daily} daily, {policy.weekly} weekly, {policy.monthly} monthly)"
                ]
                decisions.append(
                    RetentionDecision(b.id, plant, env, b.started_at, False, tuple(why))
                )
            else:
                decisions.append(
                    RetentionDecision(b.id, plant, env, b.started_at, True, tuple(why))
                )
    return decisions

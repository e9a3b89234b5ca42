"""Backup facts per deployment from the backup catalog, for the exporter (pure).

Per plant and stage: the newest complete backup and the newest backup whose restore
verification passed, their ages at ``now``, the last verification's result and the
RPO/RTO it measured, against the tier's objectives. The restore-verification objective
is derived from the tier (docs/observability.md, "Restore-verification freshness"):

* a base backup is taken every ``backup_interval_minutes`` (the RPO, or daily where WAL
  archiving covers it: render/kubernetes/cloudnativepg.py);
* ``verify: every`` restores each one, which takes at most the RTO: the newest verified
  restore is at most interval + RTO old;
* ``verify: weekly`` restores one a week (backup/verify.py ``due_for_verification``):
  at most 7 days + interval + RTO.

Never opens the catalog itself: the caller passes the records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plantops.render.kubernetes.cloudnativepg import backup_interval_minutes

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.store import BackupRecord

WEEK_S = 7 * 86400


def verify_objective_seconds(dep: Deployment) -> int:
    """Oldest the newest verified restore of ``dep`` may be, in seconds."""
    b = dep.tier_spec.backup
    base = (backup_interval_minutes(dep) + b.rto_minutes) * 60
    return base if b.verify == "every" else base + WEEK_S


@dataclass(frozen=True)
class BackupFacts:
    plant: str
    environment: str
    tier: str
    namespace: str
    rpo_objective_s: int
    rto_objective_s: int
    verify_objective_s: int
    newest_age_s: float | None  # None: no complete backup
    newest_verified_age_s: float | None  # None: no backup ever verified
    last_verify_passed: bool | None  # None: never verified
    last_verify_rpo_s: float | None
    last_verify_rto_s: float | None


def _age(now: dt.datetime, when: dt.datetime | None) -> float | None:
    return None if when is None else max(0.0, (now - when).total_seconds())


def backup_facts(
    deployments: Sequence[Deployment], records: Iterable[BackupRecord], now: dt.datetime
) -> tuple[BackupFacts, ...]:
    """One row per plant and stage of the plan (also those without any backup: their age
    is unknown, which the recording rules count as stale)."""
    by_key: dict[tuple[str, str], list[BackupRecord]] = {}
    for r in records:
        if r.status == "complete":
            by_key.setdefault((r.plant, r.env), []).append(r)
    rows: list[BackupFacts] = []
    for dep in deployments:
        b = dep.tier_spec.backup
        for t in dep.tenants:
            items = sorted(
                by_key.get((t.plant, dep.environment.name), []),
                key=lambda r: (r.started_at, r.id),
                reverse=True,
            )
            newest = items[0] if items else None
            verified = next((r for r in items if r.verified), None)
            checks = sorted(
                (v for r in items for v in r.verifications), key=lambda v: (v.started_at, v.id)
            )
            last = checks[-1] if checks else None
            rows.append(
                BackupFacts(
                    plant=t.plant,
                    environment=dep.environment.name,
                    tier=dep.tier,
                    namespace=dep.namespace,
                    rpo_objective_s=b.rpo_minutes * 60,
                    rto_objective_s=b.rto_minutes * 60,
                    verify_objective_s=verify_objective_seconds(dep),
                    newest_age_s=_age(now, newest.started_at) if newest else None,
                    # the age of the data a restore would bring back: when that backup began
                    newest_verified_age_s=_age(now, verified.started_at) if verified else None,
                    last_verify_passed=None if last is None else last.status == "passed",
                    last_verify_rpo_s=None if last is None else last.rpo_seconds,
                    last_verify_rto_s=None if last is None else last.rto_seconds,
                )
            )
    return tuple(sorted(rows, key=lambda f: (f.plant, f.environment)))


__all__ = ["BackupFacts", "backup_facts", "verify_objective_seconds"]

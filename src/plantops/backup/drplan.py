"""Disaster-recovery plans at the edge: resolve the plant from the fleet, check the
target time against what the tier's backups keep, write the runbook and manifests.

The plan itself (runbook, recovery Cluster, NetworkPolicies) is pure and lives in
``plantops.render.recovery``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from plantops.backup.fleet import BackupTarget
from plantops.errors import UserError
from plantops.outputs import write_text_atomically
from plantops.render.context import RenderContext
from plantops.render.recovery import (
    CLUSTER_FILE,
    POLICIES_FILE,
    DrPlan,
    plan_recovery,
    render_runbook,
)


def plan_for_target(
    target: BackupTarget, target_time: dt.datetime | None, ctx: RenderContext | None = None
) -> DrPlan:
    return plan_recovery(
        target.deployment,
        plant=target.plant,
        env=target.env,
        tier=target.tier,
        tier_reason=target.tier_reason,
        database=target.database,
        rpo_minutes=target.policy.rpo_minutes,
        rto_minutes=target.policy.rto_minutes,
        target_time=target_time,
        ctx=ctx or RenderContext.from_fleet(target.fleet.spec),
    )


def recovery_window(target: BackupTarget) -> dt.timedelta | None:
    """How far back CloudNativePG can recover this deployment: its Cluster's
    ``backup.retentionPolicy`` (render.kubernetes.cloudnativepg ``_retention``: daily,
    else weekly, else monthly retention), within which the operator keeps the base
    backups and WAL for any point in time (cloudnative-pg docs, "Retention policies").
    None for VM plants, whose pgBackRest keeps a number of backups, not a period."""
    if target.deployment.cluster is None:
        return None
    r = target.tier_spec.backup.retention
    if r.daily:
        return dt.timedelta(days=r.daily)
    if r.weekly:
        return dt.timedelta(weeks=r.weekly)
    return dt.timedelta(days=30 * max(1, r.monthly))


def check_target_time(target: BackupTarget, when: dt.datetime, now: dt.datetime) -> None:
    """Refuse a recovery target that no backup can reach: in the future, or older than
    the oldest base backup the tier's retention keeps."""
    if when > now:
        raise UserError(
            f"--target-time {when.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ});"
            " omit --target-time to recover to the latest archived point"
        )
    window = recovery_window(target)
    if window is not None and when < now - window:
        oldest = (now - window).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise UserError(
            f"--target-time {when.isoformat()} is before the oldest backup tier"
            f" {target.tier} keeps (retention {window.days} days: nothing older than"
            f" {oldest} can be recovered)"
        )


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_plan(plan: DrPlan, out_dir: Path) -> list[Path]:
    """Write the runbook (and manifests) into ``out_dir``, each file whole or not at all;
    a bad ``out_dir`` is a :class:`~plantops.errors.UserError` (exit 2), not ``[Errno …]``."""
    try:
        out_dir.mkdir(exist_ok=True)
    except FileExistsError:
        raise UserError(f"--out {out_dir} exists and is not a directory") from None
    except FileNotFoundError:
        raise UserError(
            f"--out {out_dir}: folder {out_dir.absolute().parent} does not exist"
        ) from None
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create it: {exc.strerror}") from exc
    files = [(out_dir / "RUNBOOK.md", render_runbook(plan))]
    if plan.manifests:
        files.append((out_dir / CLUSTER_FILE, _json(plan.recovery_manifest)))
        policies = {"apiVersion": "v1", "kind": "List", "items": list(plan.network_policies)}
        files.append((out_dir / POLICIES_FILE, _json(policies)))
    for path, text in files:
        write_text_atomically(path, text)
    return [path for path, _ in files]

"""Disaster-recovery plans for Kubernetes plants: a runbook and a CloudNativePG
recovery ``Cluster`` (bootstrap.recovery from the Barman Cloud plugin, to a target time).

Pure rendering plus one writer; deterministic output (sorted keys, no timestamps
other than the requested target time).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.backup.fleet import resolve_deployment

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"


@dataclass(frozen=True)
class DrPlan:
    plant: str
    env: str
    tier: str
    tier_reason: str
    namespace: str
    source_cluster: str
    recovery_cluster: str
    object_store: str
    target_time: dt.datetime | None
    rpo_minutes: int
    rto_minutes: int
    runtime: str
    instances: int


def _names(plant: str, env: str) -> tuple[str, str, str]:
    # Must match the rendering conventions: <plant>-<env> namespace, <plant>-pg cluster.
    namespace = f"{plant}-{env}"
    source = f"{plant}-pg"
    return namespace, source, f"{source}-backup-store"


def plan_for_fleet(
    root: Path, plant: str, env: str, target_time: dt.datetime | None, tier: str | None = None
) -> DrPlan:
    d = resolve_deployment(root, plant, env, tier)
    namespace, source, store = _names(plant, env)
    suffix = target_time.astimezone(dt.UTC).strftime("%Y%m%d%H%M") if target_time else "latest"
    return DrPlan(
        plant=plant,
        env=env,
        tier=d.tier,
        tier_reason=d.tier_reason,
        namespace=namespace,
        source_cluster=source,
        recovery_cluster=f"{source}-recovery-{suffix}",
        object_store=store,
        target_time=target_time,
        rpo_minutes=d.policy.rpo_minutes,
        rto_minutes=d.policy.rto_minutes,
        runtime=d.plant.spec.runtime,
        instances=d.fleet.spec.tiers[d.tier].postgres_instances,
    )


def render_recovery_cluster(plan: DrPlan) -> dict[str, Any]:
    """A new CloudNativePG Cluster bootstrapped from the Barman Cloud plugin's backups."""
    recovery: dict[str, Any] = {"source": plan.source_cluster, "database": "odoo", "owner": "odoo"}
    if plan.target_time is not None:
        recovery["recoveryTarget"] = {
            "targetTime": plan.target_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        }
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {
            "name": plan.recovery_cluster,
            "namespace": plan.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "plantops",
                "plantops.io/plant": plan.plant,
                "plantops.io/env": plan.env,
                "plantops.io/purpose": "disaster-recovery",
            },
        },
        "spec": {
            "instances": plan.instances,
            "bootstrap": {"recovery": recovery},
            "externalClusters": [
                {
                    "name": plan.source_cluster,
                    "plugin": {
                        "name": BARMAN_PLUGIN,
                        "parameters": {
                            "barmanObjectName": plan.object_store,
                            "serverName": plan.source_cluster,
                        },
                    },
                }
            ],
            "storage": {"size": "50Gi"},
        },
    }


def render_runbook(plan: DrPlan) -> str:
    when = (
        plan.target_time.astimezone(dt.UTC).isoformat()
        if plan.target_time
        else "latest (end of WAL)"
    )
    cluster_file = "recovery-cluster.json"
    steps = [
        f"# Recovery runbook — {plan.plant}/{plan.env}",
        "",
        f"- Tier: **{plan.tier}** ({plan.tier_reason}); objectives RPO {plan.rpo_minutes} min,"
        f" RTO {plan.rto_minutes} min.",
        f"- Recovery target: **{when}**.",
        f"- Namespace `{plan.namespace}`; source cluster `{plan.source_cluster}`;"
        f" ObjectStore `{plan.object_store}`.",
        "",
        "Start a timer now: the RTO is measured from here to the last smoke check.",
        "",
        "## 1. Database",
        "1. Freeze the plant: scale Odoo web and cron to 0"
        f" (`kubectl -n {plan.namespace} scale deploy -l plantops.io/plant={plan.plant}"
        " --replicas=0`).",
        f"2. Apply `{cluster_file}` (`kubectl apply -f {cluster_file}`): a *new* Cluster"
        f" `{plan.recovery_cluster}`; the damaged `{plan.source_cluster}` is kept for forensics.",
        f"3. Wait until it is healthy: `kubectl -n {plan.namespace} wait cluster/"
        f"{plan.recovery_cluster} --for=condition=Ready --timeout=60m`.",
        "4. Check the recovered point: the newest `write_date` in `stock_move` and"
        " `account_move_line` must be just before the target time.",
        "",
        "## 2. Filestore",
        "1. Restore the filestore from the plantops backup closest *after* the target time"
        " (`plantops backup list --plant PLANT --env ENV`, then"
        " `plantops backup restore ID --to-db SCRATCH --filestore PATH`), or from the"
        " volume snapshot of the same time.",
        "2. Attachments newer than the target time have no rows after recovery; files without"
        " rows are harmless (Odoo's garbage collector removes them).",
        "",
        "## 3. Odoo",
        f"1. Point Odoo's database host to `{plan.recovery_cluster}-rw` (the rendered"
        " config's `db_host`) and roll out.",
        "2. Scale cron to 0 until integrations are checked; scale web back up.",
        "",
        "## 4. Integrations",
        "1. Pause outbound integrations (EDI, carriers, banks, MES) until reconciled:"
        " messages sent after the target time may be sent again.",
        "2. Reconcile with each partner for the window between the target time and now;"
        " re-enable integrations one by one, then scale cron back up.",
        "",
        "## 5. Smoke checks",
        "1. Log in; open a recent sales order, manufacturing order and stock picking.",
        "2. Validate a test picking in a test location and cancel it.",
        "3. Check the health endpoint `/web/health` and the SLO dashboard.",
        "4. Record the measured RTO and the data loss window (RPO) in the incident ticket.",
        "",
    ]
    if plan.runtime == "vm":
        steps.insert(
            10,
            "> This plant runs on a VM: use pgBackRest (`pgbackrest restore --type=time"
            f" --target='{when}'`) instead of the CloudNativePG manifest.\n",
        )
    return "\n".join(steps)


def write_plan(plan: DrPlan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    runbook = out_dir / "RUNBOOK.md"
    manifest = out_dir / "recovery-cluster.json"
    runbook.write_text(render_runbook(plan))
    manifest.write_text(json.dumps(render_recovery_cluster(plan), indent=2, sort_keys=True) + "\n")
    return [runbook, manifest]

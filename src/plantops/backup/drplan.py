"""Disaster-recovery plans: a runbook, and for Kubernetes plants the CloudNativePG recovery
``Cluster`` (bootstrap.recovery from the Barman Cloud plugin, to a target time) with the
NetworkPolicies it needs.

Every name comes from the renderers ``plantops plan`` uses (``render.kubernetes``,
``render.compose``, ``render.odoo_conf``), never from a string format of its own: the
recovery Cluster is the rendered Cluster with its bootstrap swapped, so its size,
storage, roles and WAL archiving match what runs today. Pure apart from
:func:`plan_for_fleet` (reads the fleet) and :func:`write_plan`; deterministic output
(sorted keys, no timestamps other than the requested target time).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.backup.fleet import BackupTarget, resolve_target
from plantops.render.compose.stack import PGDATA, stanza
from plantops.render.context import RenderContext
from plantops.render.kubernetes.cloudnativepg import object_store_name, render_postgres_cluster
from plantops.render.kubernetes.common import BARMAN_PLUGIN, pg_cluster_name, pooler_name
from plantops.render.kubernetes.networkpolicies import render_network_policies
from plantops.render.odoo_conf import db_host

CLUSTER_LABEL = "cnpg.io/cluster"
PURPOSE_LABEL = "plantops.io/purpose"
CLUSTER_FILE = "recovery-cluster.json"
POLICIES_FILE = "recovery-networkpolicies.json"


@dataclass(frozen=True)
class DrPlan:
    plant: str
    env: str
    tier: str
    tier_reason: str
    runtime: str
    namespace: str
    database: str
    rpo_minutes: int
    rto_minutes: int
    target_time: dt.datetime | None
    db_host: str
    shared_with: tuple[str, ...] = ()
    # Kubernetes plants (CloudNativePG); empty for VM plants.
    source_cluster: str = ""
    recovery_cluster: str = ""
    object_store: str = ""
    server_name: str = ""
    pooler: str = ""
    manifests: tuple[dict[str, Any], ...] = ()
    # VM plants (pgBackRest).
    stanza: str = ""
    pgdata: str = ""

    @property
    def recovery_manifest(self) -> dict[str, Any]:
        return self.manifests[0]

    @property
    def network_policies(self) -> tuple[dict[str, Any], ...]:
        return self.manifests[1:]


def _suffix(target_time: dt.datetime | None) -> str:
    return target_time.astimezone(dt.UTC).strftime("%Y%m%d%H%M") if target_time else "latest"


def cnpg_target_time(when: dt.datetime) -> str:
    """CloudNativePG's ``recoveryTarget.targetTime`` (RFC 3339 with explicit UTC offset)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def render_recovery_cluster(
    source: dict[str, Any], recovery_name: str, target_time: dt.datetime | None
) -> dict[str, Any]:
    """A new Cluster bootstrapped from the source Cluster's Barman Cloud backups.

    ``source`` is the Cluster ``plantops plan`` renders. The copy keeps its spec
    (instances, resources, storage, roles, parameters) and swaps ``bootstrap.initdb``
    for ``bootstrap.recovery``; its own WAL archive goes to the same ObjectStore under
    its own ``serverName``, so it never overwrites the source's WAL.
    """
    obj = copy.deepcopy(source)
    meta = obj["metadata"]
    source_name = meta["name"]
    meta["name"] = recovery_name
    meta.pop("annotations", None)  # applied by hand, not synced by Argo CD
    meta["labels"] = {**meta.get("labels", {}), PURPOSE_LABEL: "disaster-recovery"}
    spec = obj["spec"]
    initdb = spec["bootstrap"]["initdb"]
    recovery: dict[str, Any] = {
        "database": initdb["database"],
        "owner": initdb["owner"],
        "secret": initdb["secret"],
        "source": source_name,
    }
    if target_time is not None:
        recovery["recoveryTarget"] = {"targetTime": cnpg_target_time(target_time)}
    spec["bootstrap"] = {"recovery": recovery}
    plugin = next(p for p in spec["plugins"] if p["name"] == BARMAN_PLUGIN)
    store = plugin["parameters"]["barmanObjectName"]
    plugin["parameters"] = {**plugin["parameters"], "serverName": recovery_name}
    spec["externalClusters"] = [
        {
            "name": source_name,
            "plugin": {
                "name": BARMAN_PLUGIN,
                "parameters": {"barmanObjectName": store, "serverName": source_name},
            },
        }
    ]
    return obj


def _replace_cluster(value: Any, source: str, recovery: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                recovery
                if k == CLUSTER_LABEL and v == source
                else _replace_cluster(v, source, recovery)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_cluster(v, source, recovery) for v in value]
    return value


def recovery_network_policies(
    policies: list[dict[str, Any]], source: str, recovery: str
) -> list[dict[str, Any]]:
    """Copies of every rendered NetworkPolicy that names the source cluster's pods, for
    the recovery cluster's pods. Policies add up, so the recovery cluster gets exactly
    the flows the source has (object store, operator, Odoo or PgBouncer) and no more.
    """
    out = []
    for pol in policies:
        new = _replace_cluster(pol, source, recovery)
        if new == pol:
            continue
        new["metadata"]["name"] = f"{pol['metadata']['name']}-{recovery}"[:253]
        new["metadata"].pop("annotations", None)
        new["metadata"]["labels"] = {
            **new["metadata"].get("labels", {}),
            PURPOSE_LABEL: "disaster-recovery",
        }
        out.append(new)
    return out


def plan_for_target(
    target: BackupTarget, target_time: dt.datetime | None, ctx: RenderContext | None = None
) -> DrPlan:
    dep = target.deployment
    ctx = ctx or RenderContext.from_fleet(target.fleet.spec)
    common: dict[str, Any] = {
        "plant": target.plant,
        "env": target.env,
        "tier": target.tier,
        "tier_reason": target.tier_reason,
        "runtime": dep.runtime,
        "namespace": dep.namespace,
        "database": target.database,
        "rpo_minutes": target.policy.rpo_minutes,
        "rto_minutes": target.policy.rto_minutes,
        "target_time": target_time,
        "db_host": db_host(dep),
        "shared_with": tuple(t.plant for t in dep.tenants if t.plant != target.plant),
    }
    if dep.cluster is None:
        return DrPlan(**common, stanza=stanza(dep), pgdata=PGDATA)
    source = pg_cluster_name(dep)
    recovery = f"{source}-recovery-{_suffix(target_time)}"
    cluster = render_recovery_cluster(render_postgres_cluster(dep, ctx), recovery, target_time)
    policies = recovery_network_policies(render_network_policies(dep, ctx), source, recovery)
    return DrPlan(
        **common,
        source_cluster=source,
        recovery_cluster=recovery,
        object_store=object_store_name(dep),
        server_name=source,
        pooler=pooler_name(dep) if dep.sizing.pgbouncer else "",
        manifests=(cluster, *policies),
    )


def plan_for_fleet(
    root: Path,
    plant: str,
    env: str,
    target_time: dt.datetime | None,
    tier: str | None = None,
    today: dt.date | None = None,
) -> DrPlan:
    return plan_for_target(resolve_target(root, plant, env, tier, today), target_time)


def _when(plan: DrPlan) -> str:
    if plan.target_time is None:
        return "latest (end of the archived WAL)"
    return plan.target_time.astimezone(dt.UTC).isoformat()


def _kubernetes_database_steps(plan: DrPlan) -> list[str]:
    ns = plan.namespace
    cut = (
        f"Point the Pooler `{plan.pooler}` at the new cluster (Odoo's `db_host` stays"
        f" `{plan.db_host}`): `kubectl -n {ns} patch pooler {plan.pooler} --type merge"
        f' -p \'{{"spec":{{"cluster":{{"name":"{plan.recovery_cluster}"}}}}}}\'`.'
        if plan.pooler
        else f"Point Odoo's `db_host` (`{plan.db_host}` today) at `{plan.recovery_cluster}-rw`"
        " in the odoo-conf ConfigMap."
    )
    if plan.shared_with:
        others = ", ".join(plan.shared_with)
        cut = (
            f"`{plan.source_cluster}` also holds {others}: do **not** cut over (that would"
            f" rewind them too). Copy only database `{plan.database}`: `pg_dump -Fc` it from"
            f" `{plan.recovery_cluster}-rw`, `pg_restore --clean --no-owner` it into"
            f" `{plan.source_cluster}-rw`, then delete `{plan.recovery_cluster}`."
        )
    return [
        "## 1. Database",
        f"1. Pause Argo CD auto-sync for the application of `{ns}` (it would revert the"
        " cut-over below), then freeze the plant: scale Odoo web and cron to 0"
        f" (`kubectl -n {ns} scale deploy -l app.kubernetes.io/instance={ns} --replicas=0`).",
        f"2. Apply the manifests (`kubectl apply -f {CLUSTER_FILE} -f {POLICIES_FILE}`): a *new*"
        f" Cluster `{plan.recovery_cluster}` recovered from ObjectStore `{plan.object_store}`"
        f" (serverName `{plan.server_name}`), and NetworkPolicies giving it the flows of"
        f" `{plan.source_cluster}`. The damaged `{plan.source_cluster}` is kept for forensics.",
        f"3. Wait until it is healthy: `kubectl -n {ns} wait cluster/{plan.recovery_cluster}"
        " --for=condition=Ready --timeout=60m`.",
        "4. Check the recovered point: the newest `write_date` in `stock_move` and"
        f" `account_move_line` of database `{plan.database}` must be just before the target.",
        f"5. {cut}",
        "",
    ]


def _vm_database_steps(plan: DrPlan) -> list[str]:
    return [
        "## 1. Database",
        "1. Freeze the plant: `docker compose stop odoo-web odoo-cron` in the plant's"
        " directory on the VM.",
        "2. Restore into a *new* data directory (never in place) with the rendered"
        " `pgbackrest.conf`:",
        f"   `plantops backup pitr restore --config pgbackrest.conf --stanza {plan.stanza}"
        f" --target-time '{_when(plan)}' --to /var/lib/postgresql/recovery/pgdata`"
        " (cipher passphrase and S3 keys from the environment, as for archiving).",
        "3. `docker compose stop postgres`; keep the old `pgdata` volume for forensics and"
        f" mount the restored directory as `{plan.pgdata}`; start postgres and wait until"
        " `SELECT pg_is_in_recovery()` is false.",
        "4. Check the recovered point: the newest `write_date` in `stock_move` and"
        f" `account_move_line` of database `{plan.database}` must be just before the target.",
        "",
    ]


def render_runbook(plan: DrPlan) -> str:
    lines = [
        f"# Recovery runbook — {plan.plant}/{plan.env}",
        "",
        f"- Tier: **{plan.tier}** ({plan.tier_reason}); objectives RPO {plan.rpo_minutes} min,"
        f" RTO {plan.rto_minutes} min.",
        f"- Recovery target: **{_when(plan)}**.",
    ]
    if plan.runtime == "vm":
        lines.append(
            f"- VM plant: pgBackRest stanza `{plan.stanza}`, data directory `{plan.pgdata}`."
        )
    else:
        lines.append(
            f"- Namespace `{plan.namespace}`; source cluster `{plan.source_cluster}`;"
            f" ObjectStore `{plan.object_store}`; recovery cluster `{plan.recovery_cluster}`."
        )
    if plan.shared_with:
        lines.append(
            f"- Shared deployment: the same Odoo and PostgreSQL serve {', '.join(plan.shared_with)};"
            " freezing Odoo stops them too."
        )
    lines += [
        "",
        "Start a timer now: the RTO is measured from here to the last smoke check.",
        "",
        *(_vm_database_steps(plan) if plan.runtime == "vm" else _kubernetes_database_steps(plan)),
        "## 2. Filestore",
        "1. Restore the filestore from the plantops backup closest *after* the target time"
        f" (`plantops backup list --plant {plan.plant} --env {plan.env}`, then"
        " `plantops backup restore ID --to-db SCRATCH --filestore PATH`), or from the"
        " volume snapshot of the same time.",
        "2. Attachments newer than the target time have no rows after recovery; files without"
        " rows are harmless (Odoo's garbage collector removes them).",
        "",
        "## 3. Odoo",
        "1. Start Odoo web with cron still at 0; log in once to check the database opens.",
        "",
        "## 4. Integrations",
        "1. Pause outbound integrations (EDI, carriers, banks, MES) until reconciled:"
        " messages sent after the target time may be sent again.",
        "2. Reconcile with each partner for the window between the target time and now;"
        " re-enable integrations one by one, then start cron.",
        "",
        "## 5. Smoke checks",
        "1. Log in; open a recent sales order, manufacturing order and stock picking.",
        "2. Validate a test picking in a test location and cancel it.",
        "3. Check the health endpoint `/web/health` and the SLO dashboard.",
        "4. Record the measured RTO and the data loss window (RPO) in the incident ticket.",
    ]
    if plan.runtime != "vm" and not plan.shared_with:
        lines.append(
            "5. Make the recovery permanent in Git (or recover once more under the original"
            " name), then re-enable Argo CD auto-sync; until then no ScheduledBackup covers"
            f" `{plan.recovery_cluster}` beyond its WAL archive: take a backup"
            f" (`kubectl cnpg backup {plan.recovery_cluster} -n {plan.namespace}"
            " --method plugin --plugin-name barman-cloud.cloudnative-pg.io`)."
        )
    return "\n".join(lines) + "\n"


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_plan(plan: DrPlan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "RUNBOOK.md"]
    written[0].write_text(render_runbook(plan))
    if plan.manifests:
        cluster_path = out_dir / CLUSTER_FILE
        cluster_path.write_text(_json(plan.recovery_manifest))
        policies_path = out_dir / POLICIES_FILE
        policies_path.write_text(
            _json({"apiVersion": "v1", "kind": "List", "items": list(plan.network_policies)})
        )
        written += [cluster_path, policies_path]
    return written

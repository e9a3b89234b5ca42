"""Disaster-recovery plans, pure: a runbook, and for Kubernetes plants the CloudNativePG
recovery ``Cluster`` (bootstrap.recovery from the Barman Cloud plugin, to a target time)
with the NetworkPolicies it needs.

Every name comes from the renderers ``plantops plan`` uses (``render.kubernetes``,
``render.compose``, ``render.odoo_conf``), never from a string format of its own: the
recovery Cluster is the rendered Cluster with its bootstrap swapped, so its size,
storage, roles and WAL archiving match what runs today. Deterministic output (sorted
keys, no timestamps other than the requested target time). Reading the fleet, checking
the target time against the backups and writing the plan are ``backup.drplan``'s.
"""

from __future__ import annotations

import copy
import datetime as dt
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantops.render.argocd.application import application_name
from plantops.render.compose.stack import PGDATA, stanza
from plantops.render.context import RenderContext
from plantops.render.kubernetes.cloudnativepg import object_store_name, render_postgres_cluster
from plantops.render.kubernetes.common import (
    BARMAN_PLUGIN,
    pg_cluster_name,
    pooler_name,
    role_name,
    runtime_role,
)
from plantops.render.kubernetes.networkpolicies import render_network_policies
from plantops.render.odoo_conf import db_host

if TYPE_CHECKING:
    from plantops.plan import Deployment

CLUSTER_LABEL = "cnpg.io/cluster"
PURPOSE_LABEL = "plantops.io/purpose"
CLUSTER_FILE = "recovery-cluster.json"
POLICIES_FILE = "recovery-networkpolicies.json"
PLANT_LABEL = "plantops.io/plant"  # on each plant's IngressRoutes (render.kubernetes.traefik)
PAUSED_CRON_TABLE = "plantops_dr_paused_cron"
VM_RESTORE_DIR = "/var/lib/postgresql/recovery/pgdata"


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
    owner: str = ""  # the plant's database owner role
    runtime_role: str = ""  # the role Odoo logs in as (``odoo`` for a tenant group)
    application: str = ""  # Argo CD Application of the deployment
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


def plan_recovery(
    dep: Deployment,
    *,
    plant: str,
    env: str,
    tier: str,
    tier_reason: str,
    database: str,
    rpo_minutes: int,
    rto_minutes: int,
    target_time: dt.datetime | None,
    ctx: RenderContext,
) -> DrPlan:
    """The recovery plan of ``plant`` × ``env`` (database ``database``) in ``dep``."""
    common: dict[str, Any] = {
        "plant": plant,
        "env": env,
        "tier": tier,
        "tier_reason": tier_reason,
        "runtime": dep.runtime,
        "namespace": dep.namespace,
        "database": database,
        "rpo_minutes": rpo_minutes,
        "rto_minutes": rto_minutes,
        "target_time": target_time,
        "db_host": db_host(dep),
        "shared_with": tuple(t.plant for t in dep.tenants if t.plant != plant),
        "owner": role_name(database),
        "runtime_role": runtime_role(dep),
        "application": application_name(dep),
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


def _when(plan: DrPlan) -> str:
    if plan.target_time is None:
        return "latest (end of the archived WAL)"
    return plan.target_time.astimezone(dt.UTC).isoformat()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def restored_database(plan: DrPlan) -> str:
    """Where the tenant's recovered copy is restored, beside the live database."""
    return f"{plan.database}-dr-{_suffix(plan.target_time)}"


def retired_database(plan: DrPlan) -> str:
    """What the damaged database is renamed to (kept for forensics)."""
    return f"{plan.database}-before-dr-{_suffix(plan.target_time)}"


def tenant_create_sql(plan: DrPlan) -> str:
    return (
        f"CREATE DATABASE {_ident(restored_database(plan))} OWNER {_ident(plan.owner)}"
        " TEMPLATE template0;"
    )


def tenant_dump_argv(plan: DrPlan) -> list[str]:
    """pg_dump of the tenant's database in the recovery cluster (custom format)."""
    return ["pg_dump", "--format=custom", f"--dbname={plan.database}"]


def tenant_restore_argv(plan: DrPlan) -> list[str]:
    """pg_restore into the new database; every object owned by the plant's role, as in
    the live database (render.kubernetes.cloudnativepg ``tenant_owner_sql``)."""
    return [
        "pg_restore",
        "--exit-on-error",
        "--no-owner",
        f"--role={plan.owner}",
        f"--dbname={restored_database(plan)}",
    ]


def tenant_prepare_sql(plan: DrPlan) -> str:
    """In the restored copy, before anyone can reach it: pause the plant's cron jobs (the
    shared cron process serves every tenant and cannot be stopped for one), remembering
    which were active; and move Odoo's signaling sequences far ahead. Workers compare
    these with the values they last read (odoo/modules/registry.py
    ``Registry.check_signaling``: reload when they differ), and a copy from the past may
    hold exactly the values they saw last, which would keep their registry and caches of
    the damaged database."""
    return "\n".join(
        [
            f"SET ROLE {_ident(plan.owner)};",
            f"CREATE TABLE {PAUSED_CRON_TABLE} AS SELECT id FROM ir_cron WHERE active;",
            f"UPDATE ir_cron SET active = false WHERE id IN (SELECT id FROM {PAUSED_CRON_TABLE});",
            "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass,"
            " coalesce(last_value, 0) + 1000000) FROM pg_sequences"
            " WHERE schemaname = 'public' AND (sequencename = 'base_registry_signaling'"
            " OR sequencename LIKE 'base\\_cache\\_signaling%');",
        ]
    )


def tenant_freeze_sql(plan: DrPlan) -> str:
    """Close the damaged database only: no new sessions (ALLOW_CONNECTIONS is per
    database), then end the open ones. Other tenants' databases are not touched."""
    dbs = ", ".join(_literal(d) for d in (plan.database, restored_database(plan)))
    return "\n".join(
        [
            f"ALTER DATABASE {_ident(plan.database)} ALLOW_CONNECTIONS false;",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            f" WHERE datname IN ({dbs}) AND pid <> pg_backend_pid();",
        ]
    )


def tenant_swap_sql(plan: DrPlan) -> str:
    """One transaction: the restored copy takes the database's name, so the Database CR,
    Odoo's ``db_name`` and the filestore path keep pointing at the same name, and there is
    no moment without that name for the CloudNativePG Database controller to "repair".
    ``ALTER ROLE … IN DATABASE`` is keyed by the database's OID, so the runtime role's
    session role is set again on the new one (what the tenant-owner init container does)."""
    lines = [
        "BEGIN;",
        f"ALTER DATABASE {_ident(plan.database)} RENAME TO {_ident(retired_database(plan))};",
        f"ALTER DATABASE {_ident(restored_database(plan))} RENAME TO {_ident(plan.database)};",
    ]
    if plan.runtime_role != plan.owner:
        lines.append(
            f"ALTER ROLE {_ident(plan.runtime_role)} IN DATABASE {_ident(plan.database)}"
            f" SET role = {_literal(plan.owner)};"
        )
    lines.append("COMMIT;")
    return "\n".join(lines)


def tenant_resume_cron_sql(plan: DrPlan) -> str:
    return "\n".join(
        [
            f"SET ROLE {_ident(plan.owner)};",
            f"UPDATE ir_cron SET active = true WHERE id IN (SELECT id FROM {PAUSED_CRON_TABLE});",
            f"DROP TABLE {PAUSED_CRON_TABLE};",
        ]
    )


def _psql(cluster: str, ns: str, database: str) -> str:
    """psql as ``postgres`` over the primary's local socket (CloudNativePG disables
    superuser access over the network, not in the pod)."""
    return (
        f"kubectl -n {ns} exec -i {_primary(cluster, ns)} -c postgres --"
        f" psql -v ON_ERROR_STOP=1 -d {_sh(database)}"
    )


def _sh(word: str) -> str:
    return shlex.quote(word)


def _sql_block(command: str, sql: str) -> list[str]:
    """A fenced shell block at the left margin, so the heredoc runs as copied."""
    return ["", "```sh", f"{command} <<'SQL'", *sql.splitlines(), "SQL", "```", ""]


def _primary(cluster: str, ns: str) -> str:
    return (
        f"$(kubectl -n {ns} get pod -l cnpg.io/cluster={cluster},cnpg.io/instanceRole=primary"
        " -o name)"
    )


def _recovery_steps(plan: DrPlan, first: int) -> list[str]:
    ns = plan.namespace
    return [
        f"{first}. Apply the manifests (`kubectl apply -f {CLUSTER_FILE} -f {POLICIES_FILE}`):"
        f" a *new* Cluster `{plan.recovery_cluster}` recovered from ObjectStore"
        f" `{plan.object_store}` (serverName `{plan.server_name}`), and NetworkPolicies giving"
        f" it the flows of `{plan.source_cluster}`. The damaged `{plan.source_cluster}` is kept"
        " for forensics.",
        f"{first + 1}. Wait until it is healthy: `kubectl -n {ns} wait"
        f" cluster/{plan.recovery_cluster} --for=condition=Ready --timeout=60m`.",
        f"{first + 2}. Check the recovered point: the newest `write_date` in `stock_move` and"
        f" `account_move_line` of database `{plan.database}` must be just before the target.",
    ]


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
    return [
        "## 1. Database",
        f"1. Pause Argo CD auto-sync (`argocd app set {plan.application} --sync-policy none`:"
        " it would revert the cut-over below), then freeze the plant: scale Odoo web and cron"
        f" to 0 (`kubectl -n {ns} scale deploy -l app.kubernetes.io/instance={ns}"
        " --replicas=0`).",
        *_recovery_steps(plan, 2),
        f"5. {cut}",
        "",
    ]


def _tenant_database_steps(plan: DrPlan) -> list[str]:
    """A tenant group: the shared Odoo and PostgreSQL keep serving the other plants. The
    recovery cluster brings every tenant back to the target time, so only this plant's
    database is copied out of it, restored beside the live one, and swapped in by name
    while only this plant's routes and sessions are closed."""
    ns, src = plan.namespace, plan.source_cluster
    others = ", ".join(plan.shared_with)
    restored, retired = restored_database(plan), retired_database(plan)
    dump = " ".join(_sh(a) for a in tenant_dump_argv(plan))
    restore = " ".join(_sh(a) for a in tenant_restore_argv(plan))
    return [
        "## 1. Database",
        f"`{src}` and the shared Odoo also serve {others}: nothing below stops them or"
        f" rewinds their databases. Only database `{plan.database}` is replaced; plant `{plan.plant}` is"
        " paused at its routes and its database only.",
        "",
        f"1. Pause Argo CD auto-sync (`argocd app set {plan.application} --sync-policy none`):"
        " it would recreate the routes removed below. The applications keep running.",
        *_recovery_steps(plan, 2),
        f"5. Copy the plant's database beside the live one (the plant still works meanwhile):"
        f" create `{restored}`,",
        *_sql_block(_psql(src, ns, "postgres"), tenant_create_sql(plan)),
        "   then stream the dump from the recovery cluster into it:",
        "",
        "```sh",
        f"kubectl -n {ns} exec {_primary(plan.recovery_cluster, ns)} -c postgres -- {dump} \\",
        f"  | kubectl -n {ns} exec -i {_primary(src, ns)} -c postgres -- {restore}",
        "```",
        "",
        f"6. Prepare the copy: pause its cron jobs (recorded in `{PAUSED_CRON_TABLE}`) and"
        " make every Odoo worker reload its registry when it next opens the database:",
        *_sql_block(_psql(src, ns, restored), tenant_prepare_sql(plan)),
        f"7. Pause the plant's traffic (its hosts answer 404; the other plants' routes stay):"
        f" `kubectl -n {ns} delete ingressroute -l {PLANT_LABEL}={plan.plant}`.",
        "8. Close the damaged database to every session (cron and integrations included):",
        *_sql_block(_psql(src, ns, "postgres"), tenant_freeze_sql(plan)),
        f"9. Swap the names in one transaction (`{plan.database}` → `{retired}`, kept for"
        f" forensics; `{restored}` → `{plan.database}`):",
        *_sql_block(_psql(src, ns, "postgres"), tenant_swap_sql(plan)),
        f"10. Delete the recovery cluster once the copy is checked: `kubectl -n {ns} delete"
        f" cluster {plan.recovery_cluster}` (its NetworkPolicies too:"
        f" `kubectl delete -f {POLICIES_FILE}`).",
        "",
    ]


def _vm_database_steps(plan: DrPlan) -> list[str]:
    point = (
        f"--target-time {plan.target_time.astimezone(dt.UTC).isoformat()}"
        if plan.target_time is not None
        else "--latest"
    )
    return [
        "## 1. Database",
        "1. Freeze the plant: `docker compose stop odoo-web odoo-cron` in the plant's"
        " directory on the VM.",
        "2. Restore into a *new* data directory (never in place) with the rendered"
        " `pgbackrest.conf`:",
        f"   `plantops backup pitr restore --config pgbackrest.conf --stanza {plan.stanza}"
        f" {point} --to {VM_RESTORE_DIR}`"
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
            " this runbook never stops them: only this plant's database is replaced, while"
            " only its routes and its database's sessions are closed."
        )
    if plan.runtime == "vm":
        database = _vm_database_steps(plan)
    elif plan.shared_with:
        database = _tenant_database_steps(plan)
    else:
        database = _kubernetes_database_steps(plan)
    lines += [
        "",
        "Start a timer now: the RTO is measured from here to the last smoke check.",
        "",
        *database,
        "## 2. Filestore",
        "1. Restore the filestore from the plantops backup closest *after* the target time"
        f" (`plantops backup list --plant {plan.plant} --env {plan.env}`, then"
        " `plantops backup restore ID --to-db SCRATCH --filestore PATH`), or from the"
        " volume snapshot of the same time.",
        "2. Attachments newer than the target time have no rows after recovery; files without"
        " rows are harmless (Odoo's garbage collector removes them).",
        "",
        "## 3. Odoo",
        *(
            [
                "1. Re-enable Argo CD auto-sync (`argocd app set"
                f" {plan.application} --sync-policy automated --self-heal`): it recreates"
                f" the IngressRoutes of `{plan.plant}`; log in once to check the database"
                " opens. Its cron jobs stay paused.",
            ]
            if plan.shared_with
            else [
                "1. Start Odoo web with cron still at 0; log in once to check the database opens."
            ]
        ),
        "",
        "## 4. Integrations",
        "1. Pause outbound integrations (EDI, carriers, banks, MES) until reconciled:"
        " messages sent after the target time may be sent again.",
        "2. Reconcile with each partner for the window between the target time and now;"
        " re-enable integrations one by one, then start cron"
        + (f" (this plant's jobs only, in `{plan.database}`):" if plan.shared_with else "."),
    ]
    if plan.shared_with:
        lines += _sql_block(
            _psql(plan.source_cluster, plan.namespace, plan.database), tenant_resume_cron_sql(plan)
        )
    lines += [
        "",
        "## 5. Smoke checks",
        "1. Log in; open a recent sales order, manufacturing order and stock picking.",
        "2. Validate a test picking in a test location and cancel it.",
        "3. Check the health endpoint `/web/health` and the SLO dashboard.",
        "4. Record the measured RTO and the data loss window (RPO) in the incident ticket.",
    ]
    if plan.shared_with:
        lines.append(
            f"5. Once no longer needed for forensics, drop `{retired_database(plan)}`"
            f" (`DROP DATABASE {_ident(retired_database(plan))}` in `{plan.source_cluster}`)."
        )
    elif plan.runtime != "vm":
        lines.append(
            "5. Make the recovery permanent in Git (or recover once more under the original"
            " name), then re-enable Argo CD auto-sync; until then no ScheduledBackup covers"
            f" `{plan.recovery_cluster}` beyond its WAL archive: take a backup"
            f" (`kubectl cnpg backup {plan.recovery_cluster} -n {plan.namespace}"
            " --method plugin --plugin-name barman-cloud.cloudnative-pg.io`)."
        )
    return "\n".join(lines) + "\n"

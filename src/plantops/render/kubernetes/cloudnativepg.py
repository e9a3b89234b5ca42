"""CloudNativePG: the PostgreSQL Cluster, one Database and role per plant, PgBouncer,
and backups through the Barman Cloud plugin.

Backups use the plugin (``barmancloud.cnpg.io/v1`` ObjectStore + ``spec.plugins`` with
``isWALArchiver: true`` + ``method: plugin``), not the in-tree ``barmanObjectStore``
that CloudNativePG deprecated in 1.26. WAL archiving runs for every tier because an
online base backup is only consistent with its WAL; PITR tiers also bound
``archive_timeout`` by their RPO. Recovery is never in place: a new Cluster with
``bootstrap.recovery`` (see docs/reference-architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object, standard_labels
from plantops.render.kubernetes.common import (
    BARMAN_PLUGIN,
    container_security_context,
    data_wave,
    name,
    node_placement,
    pg_cluster_name,
    pooler_name,
    role_name,
    runtime_role,
    stable_minute,
)
from plantops.render.kubernetes.externalsecrets import backup_secret, db_roles, db_secret
from plantops.render.kubernetes.storage import postgres_class

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

PGBOUNCER_INSTANCES = 2
# Created by Odoo itself only when Odoo creates the database (odoo/service/db.py
# _create_empty_database); here CloudNativePG creates it, so the Database CR must.
ODOO_EXTENSIONS = ("pg_trgm", "unaccent")
# What _create_empty_database runs after creating the extensions: unaccent made IMMUTABLE,
# without which Odoo builds trigram indexes without it (odoo/modules/db.py has_unaccent ->
# FunctionStatus.INDEXABLE only for provolatile 'i'). Only the function's owner may alter
# it, and an extension's functions belong to the superuser even when a database owner
# creates the (trusted) extension, so neither the owner role nor the init Job can do it
# (tests/render/test_db_init.py shows both on PostgreSQL). The one superuser hook
# CloudNativePG offers is bootstrap SQL: postInitTemplateSQL runs in template1 before the
# application database is created (pkg/management/postgres/initdb.go
# ConfigureNewInstance), and every Database object without ``template`` is created from
# template1 (internal/management/controller/database_controller_sql.go createDatabase),
# so every tenant database inherits the extensions and the IMMUTABLE function.
ODOO_TEMPLATE_SQL = (
    *(f"CREATE EXTENSION IF NOT EXISTS {e}" for e in ODOO_EXTENSIONS),
    "ALTER FUNCTION unaccent(text) IMMUTABLE",
)


def object_store_name(dep: Deployment) -> str:
    return name(dep, "backup")


def _largest_divisor(total: int, at_most: int) -> int:
    return max(d for d in range(1, total + 1) if total % d == 0 and d <= max(1, at_most))


def backup_interval_minutes(dep: Deployment) -> int:
    """Minutes between base backups: the RPO, or daily where WAL archiving covers the RPO."""
    b = dep.tier_spec.backup
    return 1440 if b.pitr else b.rpo_minutes


def backup_schedule(dep: Deployment) -> str:
    """Six-field cron (seconds first) for the ScheduledBackup, never longer apart than needed."""
    interval = backup_interval_minutes(dep)
    minute = stable_minute(dep, "backup")
    if interval < 60:
        return f"0 */{_largest_divisor(60, interval)} * * * *"
    hours = interval // 60
    if hours < 24:
        return f"0 {minute} */{_largest_divisor(24, hours)} * * *"
    return f"0 {minute} 2 * * *"


def archive_timeout_seconds(dep: Deployment) -> int:
    """Force a WAL switch at least twice per RPO (at most every 5 minutes)."""
    rpo_s = dep.tier_spec.backup.rpo_minutes * 60
    return max(60, min(rpo_s // 2, 300))


def _retention(dep: Deployment) -> str:
    r = dep.tier_spec.backup.retention
    if r.daily:
        return f"{r.daily}d"
    if r.weekly:
        return f"{r.weekly}w"
    return f"{max(1, r.monthly)}m"


def _sync_replicas(dep: Deployment) -> int:
    instances = dep.sizing.postgres_instances
    if instances < 2:
        return 0
    wanted = dep.tier_spec.postgres_sync_replicas
    if dep.pattern == "dedicated-environment":
        wanted = max(1, wanted)
    return min(wanted, instances - 1)


def _roles(dep: Deployment) -> list[dict[str, Any]]:
    tenants = [role_name(t.database) for t in dep.tenants]
    runtime = runtime_role(dep)
    roles = []
    for role in db_roles(dep):
        spec: dict[str, Any] = {
            "bypassrls": False,
            "connectionLimit": -1,
            "createdb": False,
            "createrole": False,
            "ensure": "present",
            "inherit": True,
            "login": True,
            "name": role,
            "passwordSecret": {"name": db_secret(dep, role)},
            "replication": False,
            "superuser": False,
        }
        if role == runtime and runtime not in tenants:
            # The shared Odoo process reaches each plant's database through membership
            # in that plant's owner role; it owns nothing itself.
            spec["inRoles"] = tenants
        roles.append(spec)
    return roles


def _sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def tenant_owner_sql(dep: Deployment) -> list[tuple[str, str]]:
    """Per tenant database, the SQL that makes the shared runtime role act as its owner.

    ``(database, sql)`` pairs, run by the runtime role itself in that database; empty
    where the runtime role is the owner (dedicated patterns). ``ALTER ROLE … IN DATABASE
    … SET role`` is a per-database session default an ordinary role may set for itself:
    every later login of ``odoo`` to that database runs as the plant's role (it is a
    member, ``inRoles``), so whatever Odoo creates there is owned by the plant.
    ``REASSIGN OWNED`` hands over what an earlier ``odoo`` session created (a no-op once
    done). ``SET ROLE NONE`` first: once the default applies, the session already runs as
    the plant, which may neither change ``odoo``'s settings nor take its objects. The
    advisory lock serialises pods starting together; ``lock_timeout`` makes a migration
    that waits on a busy table fail (and the init container retry) instead of blocking.
    """
    runtime = runtime_role(dep)
    if runtime in {role_name(t.database) for t in dep.tenants}:
        return []
    out = []
    for t in dep.tenants:
        owner = role_name(t.database)
        out.append(
            (
                t.database,
                "SET LOCAL lock_timeout = '10s'; "
                "SELECT pg_advisory_xact_lock(hashtext('plantops.tenant-owner')); "
                "SET ROLE NONE; "
                f"ALTER ROLE SESSION_USER IN DATABASE {_sql_ident(t.database)} "
                f"SET role = {_sql_literal(owner)}; "
                f"REASSIGN OWNED BY SESSION_USER TO {_sql_ident(owner)};",
            )
        )
    return out


def _affinity(dep: Deployment) -> dict[str, Any]:
    zones = len(dep.cluster.zones) if dep.cluster else 1
    ha = dep.tier_spec.ha and dep.sizing.postgres_instances > 1
    hard = ha and dep.sizing.postgres_instances <= zones
    affinity: dict[str, Any] = {
        "enablePodAntiAffinity": True,
        "podAntiAffinityType": "required" if hard else "preferred",
        "topologyKey": "topology.kubernetes.io/zone" if ha else "kubernetes.io/hostname",
    }
    placement = node_placement(dep)
    if placement:
        affinity["nodeAffinity"] = placement["affinity"]["nodeAffinity"]
        affinity["tolerations"] = placement["tolerations"]
    return affinity


def render_postgres_cluster(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    s = dep.sizing
    first = dep.tenants[0]
    params = dict(s.postgres_parameters)
    params["archive_timeout"] = f"{archive_timeout_seconds(dep)}s"
    params["log_min_duration_statement"] = "2000"
    postgresql: dict[str, Any] = {"parameters": dict(sorted(params.items()))}
    sync = _sync_replicas(dep)
    if sync:
        postgresql["synchronous"] = {"dataDurability": "required", "method": "any", "number": sync}
    spec: dict[str, Any] = {
        "affinity": _affinity(dep),
        "bootstrap": {
            "initdb": {
                "dataChecksums": True,
                "database": first.database,
                "encoding": "UTF8",
                "localeCType": "C",
                "localeCollate": "C",
                "owner": role_name(first.database),
                "postInitTemplateSQL": list(ODOO_TEMPLATE_SQL),
                "secret": {"name": db_secret(dep, role_name(first.database))},
            }
        },
        "enablePDB": s.postgres_instances > 1,
        **_pooler_alt_names(dep),
        "enableSuperuserAccess": False,
        "instances": s.postgres_instances,
        "managed": {"roles": _roles(dep)},
        "plugins": [
            {
                "enabled": True,
                "isWALArchiver": True,
                "name": BARMAN_PLUGIN,
                "parameters": {"barmanObjectName": object_store_name(dep)},
            }
        ],
        "postgresql": postgresql,
        "primaryUpdateStrategy": "unsupervised",
        "resources": s.postgres.k8s(),
        "storage": {
            "size": f"{s.postgres_storage_gib}Gi",
            "storageClass": postgres_class(dep, ctx),
        },
    }
    return k8s_object(
        dep,
        "postgresql.cnpg.io/v1",
        "Cluster",
        pg_cluster_name(dep),
        "postgres",
        annotations=data_wave(dep),
        body={"spec": spec},
    )


def _pooler_alt_names(dep: Deployment) -> dict[str, Any]:
    """The Pooler's names in the server certificate, so clients can use verify-full.

    PgBouncer presents the cluster's server certificate to clients (api/v1/pooler_funcs.go
    GetClientTLSSecretNameOrDefault → cluster.GetServerTLSSecretName), whose names cover
    only the -rw/-r/-ro services (cluster_funcs.go GetClusterAltDNSNames) plus
    spec.certificates.serverAltDNSNames.
    """
    if not dep.sizing.pgbouncer:
        return {}
    svc = pooler_name(dep)
    ns = dep.namespace
    return {"certificates": {"serverAltDNSNames": [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc"]}}


def render_object_store(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    store = ctx.backup_store
    cluster = dep.cluster.name if dep.cluster else "vm"
    config: dict[str, Any] = {
        "data": {"compression": "gzip", "jobs": 2},
        "destinationPath": f"{store.destination.rstrip('/')}/{cluster}/{dep.namespace}",
        "wal": {"compression": "gzip", "maxParallel": 2},
    }
    if store.endpoint_url:
        config["endpointURL"] = store.endpoint_url
    if store.credentials_key:
        config["s3Credentials"] = {
            "accessKeyId": {"key": "ACCESS_KEY_ID", "name": backup_secret(dep)},
            "secretAccessKey": {"key": "ACCESS_SECRET_KEY", "name": backup_secret(dep)},
        }
    else:
        config["s3Credentials"] = {"inheritFromIAMRole": True}
    spec = {
        "configuration": config,
        # plugin-barman-cloud lifecycle_resources.go collectSidecarResourcesForPod: the
        # sidecar in every instance pod takes these; unset, the namespace's LimitRange
        # default would make the pod Burstable and the quota would not know it.
        "instanceSidecarConfiguration": {"resources": dep.sizing.backup_sidecar.k8s()},
        "retentionPolicy": _retention(dep),
    }
    return k8s_object(
        dep,
        "barmancloud.cnpg.io/v1",
        "ObjectStore",
        object_store_name(dep),
        "postgres",
        annotations=data_wave(dep),
        body={"spec": spec},
    )


def render_databases(dep: Deployment) -> list[dict[str, Any]]:
    """One database per plant, owned by that plant's role only."""
    return [
        k8s_object(
            dep,
            "postgresql.cnpg.io/v1",
            "Database",
            name(dep, f"db-{t.plant}"),
            "postgres",
            labels={"plantops.io/plant": t.plant},
            annotations=data_wave(dep),
            body={
                "spec": {
                    "cluster": {"name": pg_cluster_name(dep)},
                    "databaseReclaimPolicy": "retain",
                    "ensure": "present",
                    "extensions": [{"ensure": "present", "name": e} for e in ODOO_EXTENSIONS],
                    "name": t.database,
                    "owner": role_name(t.database),
                }
            },
        )
        for t in dep.tenants
    ]


def render_scheduled_backup(dep: Deployment) -> dict[str, Any]:
    spec = {
        "backupOwnerReference": "self",
        "cluster": {"name": pg_cluster_name(dep)},
        "immediate": True,
        "method": "plugin",
        "pluginConfiguration": {"name": BARMAN_PLUGIN},
        "schedule": backup_schedule(dep),
        "target": "prefer-standby",
    }
    return k8s_object(
        dep,
        "postgresql.cnpg.io/v1",
        "ScheduledBackup",
        name(dep, "pg-backup"),
        "postgres",
        annotations=data_wave(dep),
        body={"spec": spec},
    )


def pooler_pool_size(dep: Deployment) -> int:
    """Server connections per PgBouncer instance and database.

    Every instance keeps its own pools, so sizing's per-database budget is split between
    them; otherwise the instances together open more connections than PostgreSQL allows.
    """
    return max(1, dep.sizing.pgbouncer_pool_size // PGBOUNCER_INSTANCES)


def render_pooler(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """PgBouncer in session mode (Odoo relies on session state: advisory locks, LISTEN)."""
    if not dep.sizing.pgbouncer:
        return []
    resources = dep.sizing.pgbouncer_pod.k8s()
    template_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "pgbouncer",
                "resources": resources,
                "securityContext": container_security_context(),
            }
        ],
        # cloudnative-pg pkg/specs/pgbouncer/deployments.go keeps the resources given here
        # for its init container; left out, it would get the LimitRange default (larger
        # than PgBouncer's and Burstable).
        "initContainers": [{"name": "bootstrap-controller", "resources": resources}],
        **node_placement(dep),
    }
    spec = {
        "cluster": {"name": pg_cluster_name(dep)},
        "deploymentStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "type": "RollingUpdate",
        },
        "instances": PGBOUNCER_INSTANCES,
        "pgbouncer": {
            "parameters": {
                "default_pool_size": str(pooler_pool_size(dep)),
                "max_client_conn": str(ctx.defaults.pgbouncer_max_client_conn),
                "server_idle_timeout": "600",
            },
            "poolMode": "session",
        },
        "template": {
            "metadata": {"labels": standard_labels(dep, "pooler")},
            "spec": dict(sorted(template_spec.items())),
        },
        "type": "rw",
    }
    return [
        k8s_object(
            dep,
            "postgresql.cnpg.io/v1",
            "Pooler",
            pooler_name(dep),
            "pooler",
            annotations=data_wave(dep),
            body={"spec": spec},
        )
    ]


def render_cloudnativepg(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    return [
        render_object_store(dep, ctx),
        render_postgres_cluster(dep, ctx),
        *render_databases(dep),
        *render_pooler(dep, ctx),
        render_scheduled_backup(dep),
    ]

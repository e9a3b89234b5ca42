"""Names, sync waves, selectors and security settings shared by the Kubernetes renderers.

Pure: every function derives its answer from the deployment and the fleet settings.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plantops.plan import Deployment

# Argo CD applies lower waves first and waits for them to be healthy.
WAVE_FOUNDATION = -1  # namespace, quota, service account, secrets, config, network policy
WAVE_DATA = 0  # PostgreSQL, Redis, filestore
# The database-initialisation Jobs: a Sync hook in its own wave, so Argo CD runs it
# once the Database objects are healthy and waits for it to complete before Odoo
# starts ("the next wave is the first one where any resource is out of sync or
# unhealthy", argo-cd docs/user-guide/sync-waves.md; a Job is healthy once complete).
WAVE_DB_INIT = 1
WAVE_ODOO = 2  # Odoo web and cron, services, autoscaling, monitoring
WAVE_INGRESS = 3  # middlewares, certificates, routes

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"

# uid:gid of the ``odoo`` user in the official image (odoo/docker ``<series>/Dockerfile``).
# No Dockerfile sets them: the odoo .deb's postinst runs ``adduser --system --group odoo``,
# which takes the first free system uid and gid (100 up) of the base image. Debian
# bullseye (16.0) and Ubuntu jammy (17.0) have ``_apt`` at uid 100 and the ``users``
# group at 100: 101:101. Ubuntu noble (18.0, 19.0) ships base-passwd >= 3.6 with
# ``_apt`` at uid 42: uid 100, gid 101 (reported in odoo/odoo#183106). Odoo needs a
# uid with a passwd entry: cli/server.py check_root_user calls getpass.getuser(),
# which fails for an unknown uid when USER/LOGNAME are unset (odoo/docker#421).
ODOO_IDS: dict[str, tuple[int, int]] = {
    "16.0": (101, 101),
    "17.0": (101, 101),
    "18.0": (100, 101),
    "19.0": (100, 101),
}
REDIS_UID = 999  # the redis user of the official image
HTTP_PORT = 8069
GEVENT_PORT = 8072
REDIS_PORT = 6379
SENTINEL_PORT = 26379
REDIS_EXPORTER_PORT = 9121
PG_PORT = 5432
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
DEDICATED_LABEL = "plantops.io/dedicated-to"


def odoo_ids(dep: Deployment) -> tuple[int, int]:
    """``(uid, gid)`` of the official image's ``odoo`` user for the deployment's series."""
    return ODOO_IDS[dep.series]


# Objects holding data (and the Namespace holding them) are never removed by Argo CD:
# not pruned when they leave the tree (gitops-engine pkg/sync/sync_context.go
# syncContext.pruneObject skips a live object carrying Prune=false), and
# not deleted when their Application is deleted with cascade (argo-cd
# controller/appcontroller.go ApplicationController.shouldBeDeleted is false for
# Delete=false). Not ``Prune=confirm``/``Delete=confirm``: one click on "confirm" would
# then delete the Namespace and, through Kubernetes' namespace deletion, every
# PostgreSQL volume in it. Removing data is a human decision taken outside Argo CD.
PROTECTED_SYNC_OPTIONS = "Prune=false,Delete=false"


def wave(n: int, *, protect: bool = False) -> dict[str, str]:
    """Sync-wave annotation; ``protect`` keeps Argo CD from pruning or deleting the object."""
    ann = {SYNC_WAVE: str(n)}
    if protect:
        ann[SYNC_OPTIONS] = PROTECTED_SYNC_OPTIONS
    return ann


def data_wave(_dep: Deployment) -> dict[str, str]:
    """Data services: never pruned or deleted by Argo CD, in every environment (a test or
    staging database is somebody's work too, and a rename must not cost it)."""
    return wave(WAVE_DATA, protect=True)


def name(dep: Deployment, suffix: str) -> str:
    return f"{dep.unit}-{suffix}"


def pg_cluster_name(dep: Deployment) -> str:
    return name(dep, "pg")


def pooler_name(dep: Deployment) -> str:
    return name(dep, "pg-pooler-rw")


def role_name(database: str) -> str:
    return database.replace("-", "_")


def runtime_role(dep: Deployment) -> str:
    """The PostgreSQL role Odoo logs in as (matches ``db_user`` in odoo.conf)."""
    return "odoo" if len(dep.tenants) > 1 else role_name(dep.tenants[0].database)


def selector(dep: Deployment, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": dep.namespace, "app.kubernetes.io/component": component}


def stable_minute(dep: Deployment, salt: str = "") -> int:
    """A minute (0-59) fixed per deployment, to spread scheduled jobs over the hour."""
    return zlib.crc32(f"{dep.id}{salt}".encode()) % 60


def pod_security_context(uid: int, gid: int | None = None) -> dict[str, Any]:
    group = uid if gid is None else gid
    return {
        "fsGroup": group,
        "fsGroupChangePolicy": "OnRootMismatch",
        "runAsGroup": group,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def dedicated_pools(dep: Deployment) -> list[str]:
    if dep.pattern != "dedicated-environment" or dep.cluster is None:
        return []
    plants = {t.plant for t in dep.tenants}
    return sorted(p.name for p in dep.cluster.node_pools if p.dedicated_to in plants)


def node_placement(dep: Deployment) -> dict[str, Any]:
    """Affinity and tolerations that pin a dedicated-environment plant to its node pools.

    Pools with ``dedicated_to`` are expected to carry the label and the NoSchedule taint
    ``plantops.io/dedicated-to=<plant>`` (set by whoever provisions the node pool).
    """
    if not dedicated_pools(dep):
        return {}
    plant = dep.tenants[0].plant
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": DEDICATED_LABEL, "operator": "In", "values": [plant]}
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [
            {"effect": "NoSchedule", "key": DEDICATED_LABEL, "operator": "Equal", "value": plant}
        ],
    }


def topology_spread(dep: Deployment, component: str, replicas: int = 1) -> list[dict[str, Any]]:
    """Spread HA pods over zones (hard) and nodes (soft). The ``replicas`` pods of other
    tiers, when more than one, are spread softly over both: ``ScheduleAnyway`` only makes
    the scheduler prefer the nodes and zones that reduce the skew, it never leaves a pod
    Pending (k8s.io/api core/v1 ``TopologySpreadConstraint.WhenUnsatisfiable``), so a
    single-zone shared cluster still takes every replica (policy PO-AVAIL-003)."""
    if not dep.tier_spec.ha and replicas < 2:
        return []
    match = {"matchLabels": selector(dep, component)}
    return [
        {
            "labelSelector": match,
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule" if dep.tier_spec.ha else "ScheduleAnyway",
        },
        {
            "labelSelector": match,
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
        },
    ]

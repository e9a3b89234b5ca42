"""Odoo web and cron Deployments, the web Service, PodDisruptionBudget and autoscaler.

Hardening: image by digest, non-root, no privilege escalation, every capability
dropped, seccomp RuntimeDefault, read-only root filesystem (Odoo writes only to its
data dir, /tmp and the generated config in /run/odoo). The master password never
enters a manifest: an init container appends it, from its Secret, to a copy of
odoo.conf in a memory-backed volume.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object, standard_labels
from plantops.render.dbinit import PGPASSFILE, db_init_command, pgpass_script
from plantops.render.kubernetes.cloudnativepg import tenant_owner_sql
from plantops.render.kubernetes.common import (
    GEVENT_PORT,
    HTTP_PORT,
    PG_PORT,
    REDIS_PORT,
    SENTINEL_PORT,
    WAVE_DB_INIT,
    WAVE_ODOO,
    container_security_context,
    name,
    node_placement,
    odoo_ids,
    pg_cluster_name,
    pod_security_context,
    role_name,
    runtime_role,
    selector,
    topology_spread,
    wave,
)
from plantops.render.kubernetes.config import odoo_config_name
from plantops.render.kubernetes.externalsecrets import (
    admin_secret,
    db_secret,
    filestore_secret,
    redis_secret,
)
from plantops.render.kubernetes.redis import (
    redis_failover,
    redis_service,
    redis_tls,
    sentinel_service,
    tls_secret,
)
from plantops.render.kubernetes.serviceaccount import odoo_service_account
from plantops.render.kubernetes.storage import (
    filestore_claim,
    filestore_needs_rwx,
    filestore_on_pvc,
)
from plantops.render.odoo_conf import (
    DATA_DIR,
    db_host,
    render_odoo_conf,
    session_redis_url_script,
)

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

HEALTH_PATH = "/web/health"
RUN_DIR = "/run/odoo"
# Copies the rendered config and appends the master password from the environment.
CONFIG_SCRIPT = (
    'cp "/etc/odoo/$ODOO_CONF" /run/odoo/odoo.conf && '
    "printf 'admin_passwd = %s\\n' \"$ODOO_ADMIN_PASSWD\" >> /run/odoo/odoo.conf"
)


def web_name(dep: Deployment) -> str:
    return name(dep, "odoo-web")


def cron_name(dep: Deployment) -> str:
    return name(dep, "odoo-cron")


def web_service(dep: Deployment) -> str:
    return name(dep, "odoo")


def image(dep: Deployment) -> str:
    return f"{dep.image}@{dep.digest}"


def has_hpa(dep: Deployment) -> bool:
    return dep.tier_spec.ha and dep.sizing.max_web_replicas > dep.sizing.web_replicas


# CloudNativePG's server CA (api/v1/cluster_funcs.go GetServerCASecretName:
# "<cluster>-ca", key ca.crt), for sslmode=verify-full. Odoo hands only host, port,
# user, password and sslmode to libpq (odoo/sql_db.py connection_info_for), so the CA
# reaches libpq as $PGSSLROOTCERT. Only ca.crt is projected: the secret also holds ca.key.
PG_CA_DIR = "/etc/plantops/pg-ca"
PG_SSLROOTCERT = f"{PG_CA_DIR}/ca.crt"


def _pg_ca_volume(dep: Deployment) -> dict[str, Any]:
    return {
        "name": "pg-ca",
        "secret": {
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "secretName": f"{pg_cluster_name(dep)}-ca",
        },
    }


PG_CA_MOUNT = {"mountPath": PG_CA_DIR, "name": "pg-ca", "readOnly": True}
PG_TLS_ENV = [
    {"name": "PGSSLMODE", "value": "verify-full"},
    {"name": "PGSSLROOTCERT", "value": PG_SSLROOTCERT},
]


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"key": key, "name": secret}}}


DB_PASSWORD_DIR = "/etc/plantops/db"
REDIS_AUTH_DIR = "/etc/plantops/redis"
REDIS_CA_DIR = "/etc/plantops/redis-ca"
REDIS_CA = f"{REDIS_CA_DIR}/ca.crt"


def _session_env(dep: Deployment) -> list[dict[str, Any]]:
    """session_redis: by URL over TLS (:func:`odoo_command`), else through Sentinel."""
    if redis_tls(dep):
        return []
    env = [_secret_env("ODOO_SESSION_REDIS_PASSWORD", redis_secret(dep), "password")]
    if redis_failover(dep):
        return [
            *env,
            {"name": "ODOO_SESSION_REDIS_SENTINEL_HOST", "value": sentinel_service(dep)},
            {"name": "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME", "value": "odoo"},
            {"name": "ODOO_SESSION_REDIS_SENTINEL_PORT", "value": str(SENTINEL_PORT)},
        ]
    return [
        *env,
        {"name": "ODOO_SESSION_REDIS_HOST", "value": redis_service(dep)},
        {"name": "ODOO_SESSION_REDIS_PORT", "value": str(REDIS_PORT)},
    ]


def odoo_command(dep: Deployment) -> dict[str, list[str]]:
    """``command``/``args`` of the Odoo containers; over TLS the session URL is built first."""
    if not redis_tls(dep):
        return {"args": ["--config=/run/odoo/odoo.conf"], "command": ["odoo"]}
    url = session_redis_url_script(
        f"{REDIS_AUTH_DIR}/password", redis_service(dep), REDIS_PORT, REDIS_CA
    )
    return {"command": ["/bin/sh", "-c", f"{url} && exec odoo --config=/run/odoo/odoo.conf"]}


def odoo_env(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        # Written by the config init container from the mounted Secret (pgpass_script).
        {"name": "PGPASSFILE", "value": PGPASSFILE},
        {"name": "ODOO_SESSION_REDIS", "value": "1"},
        {"name": "ODOO_SESSION_REDIS_EXPIRATION", "value": "86400"},
        {"name": "ODOO_SESSION_REDIS_PREFIX", "value": dep.namespace},
        {"name": "PGSSLROOTCERT", "value": PG_SSLROOTCERT},
        *_session_env(dep),
    ]
    bucket = ctx.platform.storage.filestore_bucket
    if not filestore_on_pvc(ctx) and bucket is not None:
        path = bucket.destination.removeprefix("s3://")
        env += [
            {"name": "AWS_BUCKETNAME", "value": f"{path.split('/', 1)[0]}"},
            {"name": "AWS_REGION", "value": bucket.region or ""},
        ]
        if bucket.endpoint_url:
            env.append({"name": "AWS_HOST", "value": bucket.endpoint_url})
        if bucket.credentials_key:
            env += [
                _secret_env("AWS_ACCESS_KEY_ID", filestore_secret(dep), "AWS_ACCESS_KEY_ID"),
                _secret_env(
                    "AWS_SECRET_ACCESS_KEY", filestore_secret(dep), "AWS_SECRET_ACCESS_KEY"
                ),
            ]
    return sorted(env, key=lambda e: str(e["name"]))


def _secret_volume(volume: str, secret: str, key: str, path: str) -> dict[str, Any]:
    return {
        "name": volume,
        "secret": {
            "defaultMode": 0o400,
            "items": [{"key": key, "path": path}],
            "secretName": secret,
        },
    }


def _redis_volumes(dep: Deployment) -> list[dict[str, Any]]:
    if not redis_tls(dep):
        return []
    return [
        _secret_volume("redis-auth", redis_secret(dep), "password", "password"),
        _secret_volume("redis-ca", tls_secret(dep), "ca.crt", "ca.crt"),
    ]


POD_ONLY_VOLUMES = ("db-password", "redis-auth", "redis-ca", "run")
"""Volumes of the Odoo pods that the database Jobs do not mount."""


def _volumes(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    data: dict[str, Any]
    if filestore_on_pvc(ctx):
        data = {"persistentVolumeClaim": {"claimName": filestore_claim(dep)}}
    else:
        data = {"emptyDir": {"sizeLimit": "2Gi"}}
    return [
        {"configMap": {"name": odoo_config_name(dep)}, "name": "config"},
        {"name": "data", **data},
        _secret_volume("db-password", db_secret(dep, runtime_role(dep)), "password", "password"),
        {"emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}, "name": "run"},
        {"emptyDir": {"sizeLimit": "1Gi"}, "name": "tmp"},
        _pg_ca_volume(dep),
        *_redis_volumes(dep),
    ]


def _mounts(dep: Deployment) -> list[dict[str, Any]]:
    redis = [
        {"mountPath": REDIS_AUTH_DIR, "name": "redis-auth", "readOnly": True},
        {"mountPath": REDIS_CA_DIR, "name": "redis-ca", "readOnly": True},
    ]
    return [
        PG_CA_MOUNT,
        {"mountPath": DATA_DIR, "name": "data"},
        *(redis if redis_tls(dep) else []),
        {"mountPath": RUN_DIR, "name": "run", "readOnly": True},
        {"mountPath": "/tmp", "name": "tmp"},
    ]


def _init_container(dep: Deployment, conf_file: str) -> dict[str, Any]:
    script = f"{CONFIG_SCRIPT} && {pgpass_script(f'{DB_PASSWORD_DIR}/password')}"
    return {
        "command": ["/bin/sh", "-c", script],
        "env": [
            {"name": "ODOO_CONF", "value": conf_file},
            _secret_env("ODOO_ADMIN_PASSWD", admin_secret(dep), "admin_passwd"),
        ],
        "image": image(dep),
        "imagePullPolicy": "IfNotPresent",
        "name": "config",
        "resources": dep.sizing.init.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"mountPath": "/etc/odoo", "name": "config", "readOnly": True},
            {"mountPath": DB_PASSWORD_DIR, "name": "db-password", "readOnly": True},
            {"mountPath": RUN_DIR, "name": "run"},
        ],
    }


def _psql_quote(value: str) -> str:
    """A psql meta-command argument in single quotes (doubled quotes, escaped backslashes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def tenant_owner_command(dep: Deployment) -> list[str]:
    """psql argv that makes ``odoo`` act as each plant's role in that plant's database.

    One session per tenant database (``\\connect``), each a single transaction; no shell.
    Empty where Odoo logs in as the owner itself (dedicated patterns).
    """
    steps = tenant_owner_sql(dep)
    if not steps:
        return []
    argv = ["psql", "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--quiet", "--tuples-only"]
    argv.append(f"--dbname={steps[0][0]}")
    for i, (database, sql) in enumerate(steps):
        if i:
            argv.append(f"--command=\\connect {_psql_quote(database)}")
        argv.append(f"--command={sql}")
    return argv


def _tenant_owner_container(dep: Deployment) -> list[dict[str, Any]]:
    """Shared multi-tenant only: per-database session role for ``odoo`` (see cloudnativepg)."""
    command = tenant_owner_command(dep)
    if not command:
        return []
    env = [
        {"name": "PGAPPNAME", "value": "plantops-tenant-owner"},
        {"name": "PGCONNECT_TIMEOUT", "value": "10"},
        {"name": "PGHOST", "value": db_host(dep)},
        # The password file the config init container wrote before this one runs
        # (initContainers run in order): the same credentials as Odoo, from a file.
        {"name": "PGPASSFILE", "value": PGPASSFILE},
        {"name": "PGPORT", "value": str(PG_PORT)},
        *PG_TLS_ENV,
        {"name": "PGUSER", "value": runtime_role(dep)},
    ]
    return [
        {
            "command": command,
            "env": env,
            "image": image(dep),
            "imagePullPolicy": "IfNotPresent",
            "name": "tenant-owner",
            "resources": dep.sizing.init.k8s(),
            "securityContext": container_security_context(),
            "volumeMounts": [PG_CA_MOUNT, {"mountPath": RUN_DIR, "name": "run", "readOnly": True}],
        }
    ]


def _health_probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "failureThreshold": failures,
        "httpGet": {"path": HEALTH_PATH, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
    }


def _config_checksum(dep: Deployment, cron: bool) -> str:
    return hashlib.sha256(render_odoo_conf(dep, cron=cron).encode()).hexdigest()


def _pod_template(
    dep: Deployment,
    ctx: RenderContext,
    component: str,
    container: dict[str, Any],
    conf_file: str,
    *,
    cron: bool,
    extra_affinity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    placement = node_placement(dep)
    affinity: dict[str, Any] = dict(placement.get("affinity", {}))
    if extra_affinity:
        affinity.update(extra_affinity)
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [container],
        "enableServiceLinks": False,
        "initContainers": [_init_container(dep, conf_file), *_tenant_owner_container(dep)],
        "securityContext": pod_security_context(*odoo_ids(dep)),
        "serviceAccountName": odoo_service_account(dep),
        "terminationGracePeriodSeconds": 120 if cron else 60,
        "volumes": _volumes(dep, ctx),
    }
    if affinity:
        spec["affinity"] = affinity
    if "tolerations" in placement:
        spec["tolerations"] = placement["tolerations"]
    spread = topology_spread(dep, component, dep.sizing.web_replicas)
    if spread and not cron:
        spec["topologySpreadConstraints"] = spread
    annotations = {"plantops.io/config-sha256": _config_checksum(dep, cron)}
    if dep.release is not None:
        # The release's configuration hash and id: a promotion re-rolls the pods even when
        # the image digest is unchanged, and `kubectl describe` tells which release runs.
        annotations["plantops.io/release"] = dep.release.release
        annotations["plantops.io/release-config-sha256"] = dep.release.config
    return {
        "metadata": {
            "annotations": annotations,
            "labels": standard_labels(dep, component),
        },
        "spec": dict(sorted(spec.items())),
    }


def web_strategy(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    """Surge one pod at a time, except a single replica on a ReadWriteOnce filestore: the
    surge pod may land on another node, where the volume cannot attach (Multi-Attach) and
    the rollout hangs; that one is replaced (a short outage, the only safe choice)."""
    if filestore_on_pvc(ctx) and not filestore_needs_rwx(dep):
        return {"type": "Recreate"}
    if dep.release is not None and dep.release.migrates:
        # After a module update no pod of the old release may serve the migrated database
        # next to the new ones (render.kubernetes.upgrade).
        return {"type": "Recreate"}
    return {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}, "type": "RollingUpdate"}


def render_odoo_web(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    container = {
        **odoo_command(dep),
        "env": odoo_env(dep, ctx),
        "image": image(dep),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _health_probe(20, 3),
        "name": "odoo",
        "ports": [
            {"containerPort": HTTP_PORT, "name": "http", "protocol": "TCP"},
            {"containerPort": GEVENT_PORT, "name": "websocket", "protocol": "TCP"},
        ],
        "readinessProbe": _health_probe(10, 3),
        "resources": dep.sizing.web.k8s(),
        "securityContext": container_security_context(),
        "startupProbe": _health_probe(10, 30),
        "volumeMounts": _mounts(dep),
    }
    spec = {
        "replicas": dep.sizing.web_replicas,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(dep, "web")},
        "strategy": web_strategy(dep, ctx),
        "template": _pod_template(dep, ctx, "web", container, "odoo.conf", cron=False),
    }
    return k8s_object(
        dep,
        "apps/v1",
        "Deployment",
        web_name(dep),
        "web",
        annotations=wave(WAVE_ODOO),
        body={"spec": spec},
    )


def render_odoo_cron(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    container = {
        **odoo_command(dep),
        "env": odoo_env(dep, ctx),
        "image": image(dep),
        "imagePullPolicy": "IfNotPresent",
        "name": "odoo-cron",
        "resources": dep.sizing.cron.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": _mounts(dep),
    }
    colocate = None
    if filestore_on_pvc(ctx) and not filestore_needs_rwx(dep):
        # A ReadWriteOnce filestore is shared with the web pod only on the same node.
        colocate = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": selector(dep, "web")},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    spec = {
        "replicas": dep.sizing.cron_replicas,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(dep, "cron")},
        # Never two generations of cron workers side by side during a rollout.
        "strategy": {"type": "Recreate"},
        "template": _pod_template(
            dep, ctx, "cron", container, "odoo-cron.conf", cron=True, extra_affinity=colocate
        ),
    }
    return k8s_object(
        dep,
        "apps/v1",
        "Deployment",
        cron_name(dep),
        "cron",
        annotations=wave(WAVE_ODOO),
        body={"spec": spec},
    )


def render_odoo_service(dep: Deployment) -> dict[str, Any]:
    spec = {
        "ports": [
            {"name": "http", "port": HTTP_PORT, "protocol": "TCP", "targetPort": "http"},
            {
                "name": "websocket",
                "port": GEVENT_PORT,
                "protocol": "TCP",
                "targetPort": "websocket",
            },
        ],
        "selector": selector(dep, "web"),
        "type": "ClusterIP",
    }
    return k8s_object(
        dep,
        "v1",
        "Service",
        web_service(dep),
        "web",
        annotations=wave(WAVE_ODOO),
        body={"spec": spec},
    )


def render_odoo_pdb(dep: Deployment) -> list[dict[str, Any]]:
    if dep.sizing.web_replicas < 2:
        return []
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": selector(dep, "web")}}
    return [
        k8s_object(
            dep,
            "policy/v1",
            "PodDisruptionBudget",
            web_name(dep),
            "web",
            annotations=wave(WAVE_ODOO),
            body={"spec": spec},
        )
    ]


def render_odoo_hpa(dep: Deployment) -> list[dict[str, Any]]:
    """Autoscaling for HA tiers; the ceiling is sizing's, already within the connection budget."""
    if not has_hpa(dep):
        return []
    spec = {
        "behavior": {
            "scaleDown": {
                "policies": [{"periodSeconds": 120, "type": "Pods", "value": 1}],
                "stabilizationWindowSeconds": 300,
            }
        },
        "maxReplicas": dep.sizing.max_web_replicas,
        "metrics": [
            {
                "resource": {
                    "name": "cpu",
                    "target": {"averageUtilization": 70, "type": "Utilization"},
                },
                "type": "Resource",
            }
        ],
        "minReplicas": dep.sizing.web_replicas,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": web_name(dep)},
    }
    return [
        k8s_object(
            dep,
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            web_name(dep),
            "web",
            annotations=wave(WAVE_ODOO),
            body={"spec": spec},
        )
    ]


# --- database initialisation --------------------------------------------------------

DB_INIT_CONF = "/etc/odoo/odoo-cron.conf"  # workers 0, no HTTP; the Job needs no master password
DB_INIT_DEADLINE_S = 1800  # installing base takes minutes; this bounds a stuck Job
DB_INIT_BACKOFF = 2
# Long after Argo CD has seen the Job finish: a Job removed by its TTL before that leaves
# the sync waiting for a hook that no longer exists (argoproj/argo-cd#21055). The next
# sync replaces it anyway (BeforeHookCreation).
DB_INIT_TTL_S = 86400
HOOK = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
_K8S_NAME_MAX = 63  # the Job controller puts the name in the pods' job-name label


def db_init_name(dep: Deployment, plant: str) -> str:
    """``<unit>-db-init-<plant>``, shortened with a hash where a label value would overflow."""
    full = name(dep, f"db-init-{plant}")
    if len(full) <= _K8S_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: _K8S_NAME_MAX - 9].rstrip('-')}-{digest}"


def _db_init_affinity(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    """A ReadWriteOnce filestore is attachable on one node only: the web pod's, once it runs.

    The term matches web pods and the initialisation pods themselves. On the first sync
    no such pod runs and kube-scheduler lets a pod that matches its own required term
    schedule anywhere (interpodaffinity filtering.go satisfyPodAffinity, "the first pod
    in a series"); on later syncs the pod goes where the web pod holds the volume.
    Finished pods are invisible to the scheduler, so an earlier Job's pod never pins it.
    """
    if not filestore_on_pvc(ctx) or filestore_needs_rwx(dep):
        return {}
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [
                            {
                                "key": "app.kubernetes.io/component",
                                "operator": "In",
                                "values": ["db-init", "web"],
                            }
                        ],
                        "matchLabels": {"app.kubernetes.io/instance": dep.namespace},
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def render_db_init_job(dep: Deployment, ctx: RenderContext, tenant_index: int) -> dict[str, Any]:
    """A Sync-hook Job that installs ``base`` into one tenant database if it has none.

    It logs in as the database's owner role (its own credentials, in every pattern), so
    what Odoo creates belongs to the plant; a tenant group's shared ``odoo`` role is
    not involved. Same image, hardening, config and filestore as the Odoo pods.
    """
    t = dep.tenants[tenant_index]
    owner = role_name(t.database)
    labels = {**standard_labels(dep, "db-init", t.plant)}
    env = [
        {"name": "PGAPPNAME", "value": "plantops-db-init"},
        {"name": "PGCONNECT_TIMEOUT", "value": "10"},
        {"name": "PGHOST", "value": db_host(dep)},
        _secret_env("PGPASSWORD", db_secret(dep, owner), "password"),
        {"name": "PGPORT", "value": str(PG_PORT)},
        *PG_TLS_ENV,
        {"name": "PGUSER", "value": owner},
    ]
    container = {
        "command": db_init_command(DB_INIT_CONF, [t.database]),
        "env": env,
        "image": image(dep),
        "imagePullPolicy": "IfNotPresent",
        "name": "db-init",
        # A cron worker's resources: one Odoo process loading base (requests == limits
        # where the tier is Guaranteed, as sizing decides for cron).
        "resources": dep.sizing.cron.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": [
            PG_CA_MOUNT,
            {"mountPath": "/etc/odoo", "name": "config", "readOnly": True},
            {"mountPath": DATA_DIR, "name": "data"},
            {"mountPath": "/tmp", "name": "tmp"},
        ],
    }
    placement = node_placement(dep)
    affinity: dict[str, Any] = dict(placement.get("affinity", {}))
    affinity.update(_db_init_affinity(dep, ctx))
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [container],
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": pod_security_context(*odoo_ids(dep)),
        "serviceAccountName": odoo_service_account(dep),
        "volumes": [v for v in _volumes(dep, ctx) if v["name"] not in POD_ONLY_VOLUMES],
    }
    if affinity:
        spec["affinity"] = affinity
    if "tolerations" in placement:
        spec["tolerations"] = placement["tolerations"]
    job_spec = {
        "activeDeadlineSeconds": DB_INIT_DEADLINE_S,
        "backoffLimit": DB_INIT_BACKOFF,
        "template": {"metadata": {"labels": labels}, "spec": dict(sorted(spec.items()))},
        "ttlSecondsAfterFinished": DB_INIT_TTL_S,
    }
    return k8s_object(
        dep,
        "batch/v1",
        "Job",
        db_init_name(dep, t.plant),
        "db-init",
        labels={"plantops.io/plant": t.plant},
        annotations={
            # Sync phase, not PreSync: PreSync runs before the namespace, secrets and
            # database exist. Within the Sync phase hooks run in wave order with the
            # other resources (argo-cd docs/user-guide/sync-waves.md).
            HOOK: "Sync",
            HOOK_DELETE_POLICY: "BeforeHookCreation",
            **wave(WAVE_DB_INIT),
        },
        body={"spec": job_spec},
    )


def render_db_init_jobs(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """One initialisation Job per tenant database (every database of a tenant group)."""
    return [render_db_init_job(dep, ctx, i) for i in range(len(dep.tenants))]

"""Redis for Odoo sessions (and cache): persistence by tier, Sentinel failover for
the tiers whose objectives ask for Redis replicas (production on an HA tier).

Persistence: append-only file (fsync every second) for HA tiers, RDB snapshots for
other production deployments, none outside production (sessions are cheap to lose
there). The password comes from an ExternalSecret through the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object, standard_labels
from plantops.render.kubernetes.common import (
    REDIS_EXPORTER_PORT,
    REDIS_PORT,
    REDIS_UID,
    SENTINEL_PORT,
    container_security_context,
    data_wave,
    name,
    node_placement,
    pod_security_context,
    selector,
    topology_spread,
)
from plantops.render.kubernetes.externalsecrets import redis_secret
from plantops.sizing.odoo import REDIS_SENTINELS

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

SENTINELS = REDIS_SENTINELS
SENTINEL_QUORUM = 2
MASTER_NAME = "odoo"


def redis_service(dep: Deployment) -> str:
    return name(dep, "redis")


def redis_headless(dep: Deployment) -> str:
    return name(dep, "redis-headless")


def sentinel_service(dep: Deployment) -> str:
    return name(dep, "redis-sentinel")


def redis_failover(dep: Deployment) -> bool:
    """Replication with Sentinel failover wherever sizing gives Redis replicas.

    Sizing keeps the tier's ``redis_replicas`` only for production on an HA tier on
    Kubernetes, and the cost model prices exactly those pods, so what is costed is what
    runs (a critical plant at 99.95 % no longer runs one Redis costed for three).
    """
    return dep.sizing.redis_replicas > 0


def redis_persistence(dep: Deployment) -> str:
    if dep.tier_spec.ha:
        return "aof"
    return "rdb" if dep.production else "none"


def redis_conf(dep: Deployment) -> str:
    persistence = redis_persistence(dep)
    lines = [
        "# Rendered by plantops - sessions and cache of Odoo.",
        "bind * -::*",
        f"port {REDIS_PORT}",
        "protected-mode no",
        "dir /data",
        f"maxmemory {dep.sizing.redis_maxmemory_mib}mb",
        # Session keys carry a TTL: evict the least recently used of those first.
        "maxmemory-policy volatile-lru",
        f"appendonly {'yes' if persistence == 'aof' else 'no'}",
        "appendfsync everysec",
        'save "3600 1 300 100 60 10000"' if persistence != "none" else 'save ""',
        'rename-command FLUSHALL ""',
        'rename-command DEBUG ""',
    ]
    return "\n".join(lines) + "\n"


def _start_script(dep: Deployment) -> str:
    if not redis_failover(dep):
        return 'exec redis-server /etc/redis/redis.conf --requirepass "$REDIS_PASSWORD"'
    sts, headless, sentinel = redis_service(dep), redis_headless(dep), sentinel_service(dep)
    # Ask the sentinels who the master is; fall back to pod 0 on a first start.
    return "\n".join(
        [
            "set -eu",
            f'me="$(hostname).{headless}"',
            f'master="$(redis-cli -h {sentinel} -p {SENTINEL_PORT} sentinel '
            f'get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n1 || true)"',
            'if [ -z "$master" ]; then',
            f'  case "$(hostname)" in *-0) master="$me" ;; *) master="{sts}-0.{headless}" ;; esac',
            "fi",
            'set -- --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" '
            '--replica-announce-ip "$me"',
            'if [ "$master" != "$me" ]; then',
            f'  set -- "$@" --replicaof "$master" {REDIS_PORT}',
            "fi",
            'exec redis-server /etc/redis/redis.conf "$@"',
        ]
    )


def _sentinel_script(dep: Deployment) -> str:
    """Start a Sentinel monitoring the *current* master, rebuilt from the live pods.

    The config lives in an emptyDir and is rewritten at every start; if it always
    named pod 0, Sentinels restarting together after a failover would monitor a
    replica as master, and Sentinel would demote the real master (a needless
    failover, writes lost). So the master is asked for, in order: a running Sentinel
    (it saw every failover); the Redis pod that is master with replicas attached; the
    master the replicas follow (when it is down, Sentinel then fails over properly);
    a Redis pod that is master alone; pod 0, on the very first start. Epochs, peers
    and replicas are relearned from the master and the hello channel within seconds.
    """
    headless = redis_headless(dep)
    sentinel_headless = f"{sentinel_service(dep)}-headless"
    hosts = " ".join(
        f"{redis_service(dep)}-{i}.{headless}" for i in range(1 + dep.sizing.redis_replicas)
    )
    # The password through the environment, never on a command line.
    cli = f'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p {REDIS_PORT}'
    return "\n".join(
        [
            "set -eu",
            'master="" following="" alone=""',
            f'master="$(redis-cli -h {sentinel_service(dep)} -p {SENTINEL_PORT} sentinel '
            f'get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n1 || true)"',
            'if [ -z "$master" ]; then',
            f"  for h in {hosts}; do",
            f'    info="$({cli} -h "$h" info replication 2>/dev/null | tr -d \'\\r\' || true)"',
            '    case "$info" in',
            "      *role:master*)",
            '        case "$info" in',
            '          *connected_slaves:0*) alone="${alone:-$h}" ;;',
            '          *) master="$h"; break ;;',
            "        esac ;;",
            "      *role:slave*)",
            '        [ -n "$following" ] || '
            "following=\"$(printf '%s\\n' \"$info\" | sed -n 's/^master_host://p')\" ;;",
            "    esac",
            "  done",
            '  master="${master:-${following:-$alone}}"',
            "fi",
            f'master="${{master:-{redis_service(dep)}-0.{headless}}}"',
            "{",
            f"  echo 'port {SENTINEL_PORT}'",
            "  echo 'sentinel resolve-hostnames yes'",
            "  echo 'sentinel announce-hostnames yes'",
            f'  echo "sentinel announce-ip $(hostname).{sentinel_headless}"',
            f'  echo "sentinel monitor {MASTER_NAME} $master {REDIS_PORT} {SENTINEL_QUORUM}"',
            f'  echo "sentinel auth-pass {MASTER_NAME} $REDIS_PASSWORD"',
            f"  echo 'sentinel down-after-milliseconds {MASTER_NAME} 5000'",
            f"  echo 'sentinel failover-timeout {MASTER_NAME} 60000'",
            f"  echo 'sentinel parallel-syncs {MASTER_NAME} 1'",
            "} > /data/sentinel.conf",
            "exec redis-sentinel /data/sentinel.conf",
        ]
    )


def _probe(port: int, command: str) -> dict[str, Any]:
    return {
        "exec": {"command": ["sh", "-c", f"redis-cli -h 127.0.0.1 -p {port} {command}"]},
        "failureThreshold": 3,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }


def _secret_env(dep: Deployment, var: str) -> dict[str, Any]:
    return {
        "name": var,
        "valueFrom": {"secretKeyRef": {"key": "password", "name": redis_secret(dep)}},
    }


def redis_storage_gib(dep: Deployment) -> int:
    """Room for the AOF and an RDB rewrite beside it (sizing.redis_storage_gib)."""
    return dep.sizing.redis_storage_gib


def _pod_spec(
    dep: Deployment, containers: list[dict[str, Any]], volumes: list[dict[str, Any]], component: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": containers,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(REDIS_UID),
        "serviceAccountName": name(dep, "redis"),
        "volumes": volumes,
        **node_placement(dep),
    }
    spread = topology_spread(dep, component)
    if spread and redis_failover(dep):
        spec["topologySpreadConstraints"] = spread
    return dict(sorted(spec.items()))


def render_redis(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    s = dep.sizing
    images = ctx.platform.images
    failover = redis_failover(dep)
    persistent = redis_persistence(dep) != "none"
    replicas = 1 + (s.redis_replicas if failover else 0)
    objs: list[dict[str, Any]] = [
        k8s_object(
            dep,
            "v1",
            "ConfigMap",
            name(dep, "redis-conf"),
            "redis",
            annotations=data_wave(dep),
            body={"data": {"redis.conf": redis_conf(dep)}},
        ),
        k8s_object(
            dep,
            "v1",
            "Service",
            redis_headless(dep),
            "redis",
            annotations=data_wave(dep),
            body={
                "spec": {
                    "clusterIP": "None",
                    "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}],
                    "publishNotReadyAddresses": True,
                    "selector": selector(dep, "redis"),
                }
            },
        ),
        k8s_object(
            dep,
            "v1",
            "Service",
            redis_service(dep),
            "redis",
            annotations=data_wave(dep),
            body={
                "spec": {
                    "ports": [
                        {"name": "redis", "port": REDIS_PORT, "targetPort": "redis"},
                        {"name": "metrics", "port": REDIS_EXPORTER_PORT, "targetPort": "metrics"},
                    ],
                    "selector": selector(dep, "redis"),
                    "type": "ClusterIP",
                }
            },
        ),
    ]
    redis_container = {
        "command": ["/bin/sh", "-c", _start_script(dep)],
        "env": [_secret_env(dep, "REDISCLI_AUTH"), _secret_env(dep, "REDIS_PASSWORD")],
        "image": images.redis,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe(REDIS_PORT, "ping | grep -q PONG"),
        "name": "redis",
        "ports": [{"containerPort": REDIS_PORT, "name": "redis", "protocol": "TCP"}],
        "readinessProbe": _probe(REDIS_PORT, "ping | grep -q PONG"),
        "resources": s.redis.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"mountPath": "/data", "name": "data"},
            {"mountPath": "/etc/redis", "name": "config", "readOnly": True},
        ],
    }
    exporter = {
        "env": [
            {"name": "REDIS_ADDR", "value": f"redis://127.0.0.1:{REDIS_PORT}"},
            _secret_env(dep, "REDIS_PASSWORD"),
        ],
        "image": images.redis_exporter,
        "imagePullPolicy": "IfNotPresent",
        "name": "exporter",
        "ports": [{"containerPort": REDIS_EXPORTER_PORT, "name": "metrics", "protocol": "TCP"}],
        "resources": s.redis_exporter.k8s(),
        "securityContext": container_security_context(),
    }
    volumes: list[dict[str, Any]] = [
        {"configMap": {"name": name(dep, "redis-conf")}, "name": "config"}
    ]
    sts_spec: dict[str, Any] = {
        "podManagementPolicy": "OrderedReady",
        "replicas": replicas,
        "selector": {"matchLabels": selector(dep, "redis")},
        "serviceName": redis_headless(dep),
        "template": {
            "metadata": {"labels": standard_labels(dep, "redis")},
            "spec": {},
        },
        "updateStrategy": {"type": "RollingUpdate"},
    }
    if persistent:
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }
        sts_spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{redis_storage_gib(dep)}Gi"}},
                },
            }
        ]
    else:
        volumes.append({"emptyDir": {"sizeLimit": "1Gi"}, "name": "data"})
    sts_spec["template"]["spec"] = _pod_spec(dep, [redis_container, exporter], volumes, "redis")
    objs.append(
        k8s_object(
            dep,
            "apps/v1",
            "StatefulSet",
            redis_service(dep),
            "redis",
            annotations=data_wave(dep),
            body={"spec": sts_spec},
        )
    )
    if failover:
        objs += _render_sentinel(dep, ctx)
    return objs


def _render_sentinel(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    svc = sentinel_service(dep)
    ports = [{"name": "sentinel", "port": SENTINEL_PORT, "targetPort": "sentinel"}]
    container = {
        "command": ["/bin/sh", "-c", _sentinel_script(dep)],
        "env": [_secret_env(dep, "REDIS_PASSWORD")],
        "image": ctx.platform.images.redis,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe(SENTINEL_PORT, "ping | grep -q PONG"),
        "name": "sentinel",
        "ports": [{"containerPort": SENTINEL_PORT, "name": "sentinel", "protocol": "TCP"}],
        "readinessProbe": _probe(SENTINEL_PORT, "ping | grep -q PONG"),
        "resources": dep.sizing.redis_sentinel.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": [{"mountPath": "/data", "name": "data"}],
    }
    volumes = [{"emptyDir": {"sizeLimit": "16Mi"}, "name": "data"}]
    return [
        k8s_object(
            dep,
            "v1",
            "Service",
            f"{svc}-headless",
            "redis-sentinel",
            annotations=data_wave(dep),
            body={
                "spec": {
                    "clusterIP": "None",
                    "ports": ports,
                    "publishNotReadyAddresses": True,
                    "selector": selector(dep, "redis-sentinel"),
                }
            },
        ),
        k8s_object(
            dep,
            "v1",
            "Service",
            svc,
            "redis-sentinel",
            annotations=data_wave(dep),
            body={
                "spec": {
                    "ports": ports,
                    "selector": selector(dep, "redis-sentinel"),
                    "type": "ClusterIP",
                }
            },
        ),
        k8s_object(
            dep,
            "apps/v1",
            "StatefulSet",
            svc,
            "redis-sentinel",
            annotations=data_wave(dep),
            body={
                "spec": {
                    "podManagementPolicy": "Parallel",
                    "replicas": SENTINELS,
                    "selector": {"matchLabels": selector(dep, "redis-sentinel")},
                    "serviceName": f"{svc}-headless",
                    "template": {
                        "metadata": {"labels": standard_labels(dep, "redis-sentinel")},
                        "spec": _pod_spec(dep, [container], volumes, "redis-sentinel"),
                    },
                }
            },
        ),
    ]

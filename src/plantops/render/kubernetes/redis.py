"""Redis for Odoo sessions (and cache): persistence by tier, Sentinel failover for
the tiers whose objectives ask for Redis replicas (production on an HA tier).

Persistence: append-only file (fsync every second) for HA tiers, RDB snapshots for
other production deployments, none outside production (sessions are cheap to lose
there). The password comes from an ExternalSecret through the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class RedisTls:
    """Where a Redis server finds its certificate, key and the CA clients trust."""

    cert: str
    key: str
    ca: str


TLS_DIR = "/etc/redis/tls"
K8S_TLS = RedisTls(f"{TLS_DIR}/tls.crt", f"{TLS_DIR}/tls.key", f"{TLS_DIR}/ca.crt")
"""cert-manager's Secret keys (tls.crt, tls.key, ca.crt), mounted from :func:`tls_secret`."""
AUTH_DIR = "/etc/redis/auth"
PASSWORD_FILE = f"{AUTH_DIR}/password"
RUN_DIR = "/run/redis"
AUTH_CONF = f"{RUN_DIR}/auth.conf"
ADMIN_USER = "plantops"


def redis_tls(dep: Deployment) -> bool:
    """TLS (and no plain-text port) wherever Odoo's client can speak it: not with Sentinel.

    session_redis builds its Sentinel client as ``Sentinel([(host, port)],
    password=password)`` and then ``master_for(name)`` (camptocamp/odoo-cloud-platform
    session_redis/http.py ``session_store``): no ``ssl`` for the master, and redis-py
    hands a Sentinel connection only the ``socket_*`` options. With TLS there, Odoo
    could reach neither. No tier says "encryption in transit", so every other Redis
    (standalone: every VM plant, every non-failover deployment) is TLS-only.
    """
    return not redis_failover(dep)


def tls_secret(dep: Deployment) -> str:
    return name(dep, "redis-tls")


def _tls_lines(tls: RedisTls | None) -> list[str]:
    """redis.io TLS docs: ``port 0`` disables the plain-text port; clients need no cert."""
    if tls is None:
        return [f"port {REDIS_PORT}"]
    return [
        "port 0",
        f"tls-port {REDIS_PORT}",
        f"tls-cert-file {tls.cert}",
        f"tls-key-file {tls.key}",
        f"tls-ca-cert-file {tls.ca}",
        "tls-auth-clients no",
        'tls-protocols "TLSv1.2 TLSv1.3"',
    ]


def redis_conf(dep: Deployment, tls: RedisTls | None, auth_conf: str = AUTH_CONF) -> str:
    """redis.conf; the password comes from ``auth_conf``, written at start (never argv)."""
    persistence = redis_persistence(dep)
    lines = [
        "# Rendered by plantops - sessions and cache of Odoo.",
        "bind * -::*",
        *_tls_lines(tls),
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
        # Last, so nothing above can override the password.
        f"include {auth_conf}",
    ]
    return "\n".join(lines) + "\n"


def redis_auth_script(password_file: str, out: str = AUTH_CONF, *, masterauth: bool) -> str:
    """sh: the ``include``d snippet (mode 0600) with ``requirepass`` from ``password_file``.

    A double-quoted config argument takes ``\\`` and ``"`` escaped (sds.c
    ``sdssplitargs``, which parses redis.conf). ``masterauth`` too on replicating pods.
    """
    directives = "requirepass" + (" masterauth" if masterauth else "")
    return (
        f'esc="$(sed \'s/[\\\\"]/\\\\&/g\' {password_file})"\n'
        f"(umask 077 && for d in {directives}; do "
        f'printf \'%s "%s"\\n\' "$d" "$esc"; done > {out})'
    )


def cli(port: int, tls: RedisTls | None, password_file: str | None = PASSWORD_FILE) -> str:
    """redis-cli for ``port`` on this pod: TLS against the CA, password from its file.

    redis-cli has no password-file option; ``--askpass`` reads it from standard input,
    so it is neither in argv nor in the environment.
    """
    parts = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    if tls is not None:
        parts += ["--tls", "--cacert", tls.ca]
    if password_file is not None:
        parts += ["--askpass"]
    return " ".join(parts)


def _with_password(command: str, password_file: str | None = PASSWORD_FILE) -> str:
    return command if password_file is None else f"{command} < {password_file}"


def _start_script(dep: Deployment) -> str:
    auth = redis_auth_script(PASSWORD_FILE, masterauth=redis_failover(dep))
    if not redis_failover(dep):
        return "\n".join(["set -eu", auth, "exec redis-server /etc/redis/redis.conf"])
    sts, headless, sentinel = redis_service(dep), redis_headless(dep), sentinel_service(dep)
    # Ask the sentinels who the master is; fall back to pod 0 on a first start.
    return "\n".join(
        [
            "set -eu",
            auth,
            f'me="$(hostname).{headless}"',
            f'master="$(redis-cli -h {sentinel} -p {SENTINEL_PORT} sentinel '
            f'get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n1 || true)"',
            'if [ -z "$master" ]; then',
            f'  case "$(hostname)" in *-0) master="$me" ;; *) master="{sts}-0.{headless}" ;; esac',
            "fi",
            'set -- --replica-announce-ip "$me"',
            'if [ "$master" != "$me" ]; then',
            f'  set -- "$@" --replicaof "$master" {REDIS_PORT}',
            "fi",
            'exec redis-server /etc/redis/redis.conf "$@"',
        ]
    )


def sentinel_auth_lines() -> list[str]:
    """sh lines echoing Sentinel's authentication, from ``$pw`` (the Redis password).

    Odoo's session_redis asks Sentinel without a password (see :func:`redis_tls`), so
    ``requirepass`` would lock it out. Instead the ``default`` user may only ping and
    discover (``SENTINEL MASTERS``/``REPLICAS``/``GET-MASTER-ADDR-BY-NAME``, what
    redis-py's ``discover_master``/``discover_slaves`` send), and everything that
    changes Sentinel (``SENTINEL SET``, ``FAILOVER``, ``REMOVE``, ``CONFIG``) needs the
    ``plantops`` user, whose password is the Redis password (stored as its SHA-256,
    ACL ``#<hash>``). Sentinels authenticate to each other as that user
    (``sentinel sentinel-user``/``sentinel-pass``) and to Redis with ``auth-pass``.
    """
    discover = "+sentinel|masters +sentinel|get-master-addr-by-name +sentinel|replicas"
    return [
        f'  echo "user {ADMIN_USER} on #$hash ~* &* +@all"',
        f"  echo 'user default on nopass resetchannels -@all +ping {discover}"
        " +sentinel|slaves +sentinel|sentinels'",
        f"  echo 'sentinel sentinel-user {ADMIN_USER}'",
        '  printf \'sentinel sentinel-pass "%s"\\n\' "$esc"',
        f'  printf \'sentinel auth-pass {MASTER_NAME} "%s"\\n\' "$esc"',
    ]


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
    # The password from its file through standard input, never on a command line.
    info = f'redis-cli --askpass -p {REDIS_PORT} -h "$h" info replication < {PASSWORD_FILE}'
    return "\n".join(
        [
            "set -eu",
            f'esc="$(sed \'s/[\\\\"]/\\\\&/g\' {PASSWORD_FILE})"',
            f"hash=\"$(tr -d '\\n' < {PASSWORD_FILE} | sha256sum | cut -d' ' -f1)\"",
            'master="" following="" alone=""',
            f'master="$(redis-cli -h {sentinel_service(dep)} -p {SENTINEL_PORT} sentinel '
            f'get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n1 || true)"',
            'if [ -z "$master" ]; then',
            f"  for h in {hosts}; do",
            f"    info=\"$({info} 2>/dev/null | tr -d '\\r' || true)\"",
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
            "umask 077",
            "{",
            f"  echo 'port {SENTINEL_PORT}'",
            "  echo 'sentinel resolve-hostnames yes'",
            "  echo 'sentinel announce-hostnames yes'",
            f'  echo "sentinel announce-ip $(hostname).{sentinel_headless}"',
            f'  echo "sentinel monitor {MASTER_NAME} $master {REDIS_PORT} {SENTINEL_QUORUM}"',
            *sentinel_auth_lines(),
            f"  echo 'sentinel down-after-milliseconds {MASTER_NAME} 5000'",
            f"  echo 'sentinel failover-timeout {MASTER_NAME} 60000'",
            f"  echo 'sentinel parallel-syncs {MASTER_NAME} 1'",
            "} > /data/sentinel.conf",
            "exec redis-sentinel /data/sentinel.conf",
        ]
    )


def _probe(command: str) -> dict[str, Any]:
    return {
        "exec": {"command": ["sh", "-c", f"{command} | grep -q PONG"]},
        "failureThreshold": 3,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }


def _redis_probe(dep: Deployment) -> dict[str, Any]:
    tls = K8S_TLS if redis_tls(dep) else None
    return _probe(_with_password(f"{cli(REDIS_PORT, tls)} ping"))


def _secret_env(dep: Deployment, var: str) -> dict[str, Any]:
    return {
        "name": var,
        "valueFrom": {"secretKeyRef": {"key": "password", "name": redis_secret(dep)}},
    }


def _auth_volume(dep: Deployment) -> dict[str, Any]:
    return {
        "name": "auth",
        "secret": {
            "defaultMode": 0o400,
            "items": [{"key": "password", "path": "password"}],
            "secretName": redis_secret(dep),
        },
    }


def _tls_volume(dep: Deployment, *, key: bool) -> dict[str, Any]:
    """cert-manager's Secret; without ``key`` only the CA (for clients)."""
    items = ["ca.crt", "tls.crt", "tls.key"] if key else ["ca.crt"]
    return {
        "name": "tls",
        "secret": {
            "defaultMode": 0o400 if key else 0o444,
            "items": [{"key": k, "path": k} for k in items],
            "secretName": tls_secret(dep),
        },
    }


AUTH_MOUNT = {"mountPath": AUTH_DIR, "name": "auth", "readOnly": True}
TLS_MOUNT = {"mountPath": TLS_DIR, "name": "tls", "readOnly": True}
RUN_MOUNT = {"mountPath": RUN_DIR, "name": "run"}
RUN_VOLUME = {"emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}, "name": "run"}


def render_redis_certificates(dep: Deployment) -> list[dict[str, Any]]:
    """A CA of the namespace's own (cert-manager) and Redis's server certificate from it.

    A self-signed Issuer signs only the CA certificate; the CA Issuer signs the server
    certificate, whose Secret carries ``ca.crt`` for the clients. Names: the Service
    (short, namespaced and cluster-local forms) and 127.0.0.1/localhost for the probes
    and the exporter in the pod. Empty where Redis runs without TLS (:func:`redis_tls`).
    """
    if not redis_tls(dep):
        return []
    svc, ns = redis_service(dep), dep.namespace
    selfsigned, ca = name(dep, "redis-selfsigned"), name(dep, "redis-ca")
    key = {"algorithm": "ECDSA", "rotationPolicy": "Always", "size": 256}

    def issuer(issuer_name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return k8s_object(
            dep,
            "cert-manager.io/v1",
            "Issuer",
            issuer_name,
            "redis",
            annotations=data_wave(dep),
            body={"spec": spec},
        )

    def certificate(cert_name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return k8s_object(
            dep,
            "cert-manager.io/v1",
            "Certificate",
            cert_name,
            "redis",
            annotations=data_wave(dep),
            body={"spec": {"privateKey": key, **spec}},
        )

    def ref(issuer_name: str) -> dict[str, str]:
        return {"group": "cert-manager.io", "kind": "Issuer", "name": issuer_name}

    return [
        issuer(selfsigned, {"selfSigned": {}}),
        certificate(
            ca,
            {
                "commonName": f"{ns} redis CA",
                "isCA": True,
                "issuerRef": ref(selfsigned),
                "secretName": ca,
            },
        ),
        issuer(ca, {"ca": {"secretName": ca}}),
        certificate(
            tls_secret(dep),
            {
                "dnsNames": [svc, f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local", "localhost"],
                "ipAddresses": ["127.0.0.1"],
                "issuerRef": ref(ca),
                "secretName": tls_secret(dep),
                "usages": ["server auth", "digital signature", "key encipherment"],
            },
        ),
    ]


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
            body={"data": {"redis.conf": redis_conf(dep, K8S_TLS if redis_tls(dep) else None)}},
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
    tls = redis_tls(dep)
    mounts = [
        AUTH_MOUNT,
        {"mountPath": "/data", "name": "data"},
        {"mountPath": "/etc/redis", "name": "config", "readOnly": True},
        RUN_MOUNT,
        *([TLS_MOUNT] if tls else []),
    ]
    redis_container = {
        "command": ["/bin/sh", "-c", _start_script(dep)],
        "image": images.redis,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _redis_probe(dep),
        "name": "redis",
        "ports": [{"containerPort": REDIS_PORT, "name": "redis", "protocol": "TCP"}],
        "readinessProbe": _redis_probe(dep),
        "resources": s.redis.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    volumes: list[dict[str, Any]] = [
        _auth_volume(dep),
        {"configMap": {"name": name(dep, "redis-conf")}, "name": "config"},
        RUN_VOLUME,
        *([_tls_volume(dep, key=True)] if tls else []),
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
    containers = [redis_container, _exporter(dep, ctx)]
    sts_spec["template"]["spec"] = _pod_spec(dep, containers, volumes, "redis")
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
    return render_redis_certificates(dep) + objs


def _exporter(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    """redis_exporter on the pod's own Redis: TLS against the CA, the password by env.

    Its only password-file option (``--redis.password-file``) takes a JSON map of URI to
    password, which would have to be generated by a shell its image does not have; so
    the password stays in ``REDIS_PASSWORD`` (from the Secret, never in the manifest).
    """
    tls = redis_tls(dep)
    env: list[dict[str, Any]] = [
        {"name": "REDIS_ADDR", "value": f"{'rediss' if tls else 'redis'}://127.0.0.1:{REDIS_PORT}"},
        _secret_env(dep, "REDIS_PASSWORD"),
    ]
    if tls:
        env.append({"name": "REDIS_EXPORTER_TLS_CA_CERT_FILE", "value": K8S_TLS.ca})
    # redis_exporter serves ``/health`` beside the metrics (oliver006/redis_exporter
    # exporter/http.go ``healthHandler``: 200 ``ok``, no Redis round trip, behind basic
    # auth only when that is configured, which it is not here), so a wedged exporter
    # is restarted without a Redis hiccup taking the pod out of its Service.
    health = {
        "failureThreshold": 3,
        "httpGet": {"path": "/health", "port": "metrics"},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }
    return {
        "env": sorted(env, key=lambda e: str(e["name"])),
        "image": ctx.platform.images.redis_exporter,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": health,
        "name": "exporter",
        "ports": [{"containerPort": REDIS_EXPORTER_PORT, "name": "metrics", "protocol": "TCP"}],
        "readinessProbe": health,
        "resources": dep.sizing.redis_exporter.k8s(),
        "securityContext": container_security_context(),
        **({"volumeMounts": [TLS_MOUNT]} if tls else {}),
    }


def _render_sentinel(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    svc = sentinel_service(dep)
    ports = [{"name": "sentinel", "port": SENTINEL_PORT, "targetPort": "sentinel"}]
    container = {
        "command": ["/bin/sh", "-c", _sentinel_script(dep)],
        "image": ctx.platform.images.redis,
        "imagePullPolicy": "IfNotPresent",
        # The default user may ping without a password (sentinel_auth_lines).
        "livenessProbe": _probe(f"{cli(SENTINEL_PORT, None, None)} ping"),
        "name": "sentinel",
        "ports": [{"containerPort": SENTINEL_PORT, "name": "sentinel", "protocol": "TCP"}],
        "readinessProbe": _probe(f"{cli(SENTINEL_PORT, None, None)} ping"),
        "resources": dep.sizing.redis_sentinel.k8s(),
        "securityContext": container_security_context(),
        "volumeMounts": [AUTH_MOUNT, {"mountPath": "/data", "name": "data"}],
    }
    volumes = [_auth_volume(dep), {"emptyDir": {"sizeLimit": "16Mi"}, "name": "data"}]
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

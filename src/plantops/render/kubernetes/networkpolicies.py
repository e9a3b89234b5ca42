"""NetworkPolicies: deny everything, then allow exactly the flows of the architecture.

Allowed: ingress controller → Odoo; Odoo → PostgreSQL (or PgBouncer), Redis, DNS,
the SMTP relay and each integration endpoint of the plant spec; the database
initialisation Jobs → PostgreSQL (or PgBouncer) and DNS only; PostgreSQL only
from Odoo and those Jobs (or PgBouncer), its own instances and the CloudNativePG operator;
Prometheus → metrics ports.

Every egress rule names its destination. NetworkPolicy matches addresses, not names
(``networking.k8s.io/v1`` NetworkPolicyPeer has podSelector, namespaceSelector and
ipBlock only): an endpoint given as ``CIDR:port`` is pinned to that block; one given as
``host:port`` cannot be, so its rule allows that port to any address *except* the
link-local cloud metadata service (169.254.169.254/32, and fd00:ec2::254/128 on IPv6),
and the policy lists it, with that reason, in the ``plantops.io/egress-unenforced``
annotation (and the names in ``plantops.io/egress-hosts`` for FQDN-aware engines such
as Cilium's toFQDNs). The same holds for PostgreSQL's and PgBouncer's calls to the
Kubernetes API and the object store, whose addresses the fleet does not know.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import (
    GEVENT_PORT,
    HTTP_PORT,
    PG_PORT,
    REDIS_EXPORTER_PORT,
    REDIS_PORT,
    SENTINEL_PORT,
    WAVE_FOUNDATION,
    pg_cluster_name,
    pooler_name,
    selector,
    wave,
)
from plantops.render.kubernetes.redis import redis_failover
from plantops.render.kubernetes.storage import filestore_on_pvc

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

PG_STATUS_PORT = 8000
PG_METRICS_PORT = 9187
POOLER_METRICS_PORT = 9127
API_PORTS = (443, 6443)
NS_LABEL = "kubernetes.io/metadata.name"
METADATA_V4 = "169.254.169.254/32"
METADATA_V6 = "fd00:ec2::254/128"


def _ip_block(cidr: str) -> dict[str, Any]:
    """An ipBlock for ``cidr`` that never reaches the cloud metadata service."""
    net = ipaddress.ip_network(cidr, strict=False)
    block: dict[str, Any] = {"cidr": str(net)}
    for meta in (METADATA_V4, METADATA_V6):
        m = ipaddress.ip_network(meta)
        if m.version == net.version and m.subnet_of(net) and m != net:  # type: ignore[arg-type]
            block["except"] = [meta]
    return {"ipBlock": block}


# Any address but the metadata service: for destinations known only by name.
ANYWHERE = [_ip_block("0.0.0.0/0"), _ip_block("::/0")]


def _ns(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NS_LABEL: name}}}


def _pods(labels: dict[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": labels}}


def _ports(*ports: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"port": p, "protocol": protocol} for p in ports]


def odoo_pods(dep: Deployment) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": ["cron", "web"]}
        ],
        "matchLabels": {"app.kubernetes.io/instance": dep.namespace},
    }


def db_init_pods(dep: Deployment) -> dict[str, str]:
    return selector(dep, "db-init")


def db_client_pods(dep: Deployment) -> dict[str, Any]:
    """Every pod that logs in to PostgreSQL: Odoo web and cron, and the init Jobs."""
    return {
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": ["cron", "db-init", "web"],
            }
        ],
        "matchLabels": {"app.kubernetes.io/instance": dep.namespace},
    }


def pg_pods(dep: Deployment) -> dict[str, str]:
    return {"cnpg.io/cluster": pg_cluster_name(dep), "cnpg.io/podRole": "instance"}


def pooler_pods(dep: Deployment) -> dict[str, str]:
    return {"cnpg.io/poolerName": pooler_name(dep)}


UNENFORCED_NAME = (
    "given by DNS name, which NetworkPolicy cannot match: the port is open to any address"
    " but the cloud metadata service; pin it with CIDR:port: "
)
UNENFORCED_API = (
    "Kubernetes API and object store on 443/6443: addresses unknown to the fleet, open to"
    " any address but the cloud metadata service"
)


def split_endpoint(endpoint: str) -> tuple[str | None, str | None, int]:
    """``(cidr, hostname, port)`` of ``host:port`` or ``CIDR:port``."""
    host, _, port = endpoint.rpartition(":")
    try:
        net = ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None, host, int(port)
    return str(net), None, int(port)


def egress_endpoints(dep: Deployment, ctx: RenderContext) -> list[tuple[str, str]]:
    """(what, host:port) Odoo may call outside the cluster, sorted."""
    out: list[tuple[str, str]] = []
    if ctx.defaults.smtp_relay:
        out.append(("smtp-relay", ctx.defaults.smtp_relay))
    for plant in dep.plants:
        for integ in plant.spec.profile.integrations:
            if integ.endpoint and integ.direction != "inbound":
                out.append((f"{plant.code}/{integ.name}", integ.endpoint))
    bucket = ctx.platform.storage.filestore_bucket
    if not filestore_on_pvc(ctx) and bucket is not None:
        host = (bucket.endpoint_url or "https://s3.amazonaws.com").split("://", 1)[1].split("/")[0]
        out.append(("filestore-s3", host if ":" in host else f"{host}:443"))
    return sorted(set(out))


def _policy(
    dep: Deployment,
    policy: str,
    pod_selector: dict[str, Any],
    *,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector}
    types = []
    if ingress is not None:
        spec["ingress"] = ingress
        types.append("Ingress")
    if egress is not None:
        spec["egress"] = egress
        types.append("Egress")
    spec["policyTypes"] = types
    return k8s_object(
        dep,
        "networking.k8s.io/v1",
        "NetworkPolicy",
        policy,
        "network-policy",
        annotations={**wave(WAVE_FOUNDATION), **(annotations or {})},
        body={"spec": spec},
    )


def render_network_policies(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    p = ctx.platform
    pooled = dep.sizing.pgbouncer
    failover = redis_failover(dep)
    db_peer = _pods(pooler_pods(dep)) if pooled else _pods(pg_pods(dep))
    redis_sel = selector(dep, "redis")
    sentinel_sel = selector(dep, "redis-sentinel")
    odoo_peer = {"podSelector": odoo_pods(dep)}
    db_client_peer = {"podSelector": db_client_pods(dep)}

    odoo_egress: list[dict[str, Any]] = [
        {"ports": _ports(PG_PORT), "to": [db_peer]},
        {"ports": _ports(REDIS_PORT), "to": [_pods(redis_sel)]},
    ]
    if failover:
        odoo_egress.append({"ports": _ports(SENTINEL_PORT), "to": [_pods(sentinel_sel)]})
    hostnames = []
    for what, endpoint in egress_endpoints(dep, ctx):
        cidr, host, port = split_endpoint(endpoint)
        rule: dict[str, Any] = {"ports": _ports(port)}
        if cidr:
            rule["to"] = [_ip_block(cidr)]
        else:
            rule["to"] = ANYWHERE
            hostnames.append(f"{what}={host}:{port}")
        odoo_egress.append(rule)
    odoo_notes: dict[str, str] = {}
    if hostnames:
        odoo_notes = {
            "plantops.io/egress-hosts": ",".join(hostnames),
            "plantops.io/egress-unenforced": UNENFORCED_NAME + ",".join(hostnames),
        }

    policies = [
        _policy(dep, "default-deny-all", {}, ingress=[], egress=[]),
        _policy(
            dep,
            "allow-dns",
            {},
            egress=[
                {
                    "ports": [*_ports(53, protocol="UDP"), *_ports(53)],
                    "to": [
                        {
                            **_ns("kube-system"),
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                }
            ],
        ),
        _policy(
            dep,
            "odoo-ingress",
            {"matchLabels": selector(dep, "web")},
            ingress=[
                {
                    "from": [_ns(p.ingress.controller_namespace)],
                    "ports": _ports(HTTP_PORT, GEVENT_PORT),
                },
                {"from": [_ns(p.monitoring_namespace)], "ports": _ports(HTTP_PORT)},
            ],
        ),
        _policy(
            dep,
            "odoo-egress",
            odoo_pods(dep),
            egress=odoo_egress,
            annotations=odoo_notes or None,
        ),
        _policy(
            dep,
            "db-init-egress",
            {"matchLabels": db_init_pods(dep)},
            egress=[{"ports": _ports(PG_PORT), "to": [db_peer]}],
        ),
        _policy(
            dep,
            "postgres",
            {"matchLabels": pg_pods(dep)},
            ingress=[
                {"from": [db_peer if pooled else db_client_peer], "ports": _ports(PG_PORT)},
                {"from": [_pods(pg_pods(dep))], "ports": _ports(PG_PORT, PG_STATUS_PORT)},
                {"from": [_ns(p.cnpg_namespace)], "ports": _ports(PG_PORT, PG_STATUS_PORT)},
                {"from": [_ns(p.monitoring_namespace)], "ports": _ports(PG_METRICS_PORT)},
            ],
            egress=[
                {"ports": _ports(PG_PORT, PG_STATUS_PORT), "to": [_pods(pg_pods(dep))]},
                # Instance manager → Kubernetes API; barman-cloud → object store.
                {"ports": _ports(*API_PORTS), "to": ANYWHERE},
            ],
            annotations={"plantops.io/egress-unenforced": UNENFORCED_API},
        ),
    ]
    if pooled:
        policies.append(
            _policy(
                dep,
                "pgbouncer",
                {"matchLabels": pooler_pods(dep)},
                ingress=[
                    {"from": [db_client_peer], "ports": _ports(PG_PORT)},
                    {"from": [_ns(p.cnpg_namespace)], "ports": _ports(PG_STATUS_PORT)},
                    {"from": [_ns(p.monitoring_namespace)], "ports": _ports(POOLER_METRICS_PORT)},
                ],
                egress=[
                    {"ports": _ports(PG_PORT), "to": [_pods(pg_pods(dep))]},
                    {"ports": _ports(*API_PORTS), "to": ANYWHERE},
                ],
                annotations={"plantops.io/egress-unenforced": UNENFORCED_API},
            )
        )
    redis_from = [odoo_peer, _pods(redis_sel)]
    if failover:
        redis_from.append(_pods(sentinel_sel))
    policies.append(
        _policy(
            dep,
            "redis",
            {"matchLabels": redis_sel},
            ingress=[
                {"from": redis_from, "ports": _ports(REDIS_PORT)},
                {"from": [_ns(p.monitoring_namespace)], "ports": _ports(REDIS_EXPORTER_PORT)},
            ],
            egress=[
                {"ports": _ports(REDIS_PORT), "to": [_pods(redis_sel)]},
                *(
                    [{"ports": _ports(SENTINEL_PORT), "to": [_pods(sentinel_sel)]}]
                    if failover
                    else []
                ),
            ],
        )
    )
    if failover:
        policies.append(
            _policy(
                dep,
                "redis-sentinel",
                {"matchLabels": sentinel_sel},
                ingress=[
                    {
                        "from": [odoo_peer, _pods(redis_sel), _pods(sentinel_sel)],
                        "ports": _ports(SENTINEL_PORT),
                    }
                ],
                egress=[
                    {"ports": _ports(REDIS_PORT), "to": [_pods(redis_sel)]},
                    {"ports": _ports(SENTINEL_PORT), "to": [_pods(sentinel_sel)]},
                ],
            )
        )
    return policies

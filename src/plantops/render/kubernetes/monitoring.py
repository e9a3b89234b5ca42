"""Prometheus Operator objects: where each signal of a deployment comes from, and the
baseline alerts on exactly those series.

No scrape of Odoo itself. ``monitoring_prometheus`` (camptocamp/odoo-cloud-platform)
serves ``/metrics`` with ``@route(auth="public")``; a scrape by pod IP carries no
database (``dbfilter = ^%d$`` sees an IP, a tenant group has several ``db_name``), and
without one Odoo matches only ``auth="none"`` routes (odoo/http.py
``Application.nodb_routing_map``: ``_generate_routing_rules(..., nodb_only=True)`` skips
every route whose ``auth`` is not ``"none"``), so the scrape would get 404. Even served,
its counters would be one prefork worker's. The signals come from elsewhere instead:

* requests, errors and latency per deployment: Traefik's per-service metrics
  (``traefik_service_*``; ``metrics.prometheus`` with ``addServicesLabels``, on by
  default), scraped by the platform's Traefik install, not here;
* Odoo up, through DNS, TLS, Traefik and the tenant's routing: a blackbox ``Probe``
  of ``https://<host>/web/health`` per plant (the route is ``auth="none"``);
* PostgreSQL: CloudNativePG's exporter on every instance (port ``metrics``, 9187),
  with the Barman Cloud plugin's backup metrics; PgBouncer: the Pooler's exporter;
* Redis: the ``redis_exporter`` sidecar.

Pure: names and expressions come from the deployment and the fleet settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.cloudnativepg import backup_interval_minutes
from plantops.render.kubernetes.common import (
    GEVENT_PORT,
    HTTP_PORT,
    WAVE_ODOO,
    name,
    pg_cluster_name,
    selector,
    wave,
)
from plantops.render.kubernetes.networkpolicies import pg_pods, pooler_pods
from plantops.render.kubernetes.odoo import HEALTH_PATH, web_service

if TYPE_CHECKING:
    from plantops.plan import Deployment, Tenant
    from plantops.render.context import RenderContext

INTERVAL = "30s"
# The blackbox exporter the platform runs beside Prometheus, and its stock module that
# expects a 2xx answer (prometheus/blackbox_exporter example config, chart default).
BLACKBOX_SERVICE = "blackbox-exporter"
BLACKBOX_PORT = 9115
BLACKBOX_MODULE = "http_2xx"
# Traefik's Kubernetes CRD provider names an IngressRoute's service
# "<namespace>-<service>-<port>" (pkg/provider/kubernetes/crd/kubernetes_http.go
# fullServiceName) and qualifies it with its provider; that is the ``service`` label.
TRAEFIK_PROVIDER = "kubernetescrd"
PLANT_LABEL = "plantops_plant"


def _monitor(
    dep: Deployment, kind: str, obj_name: str, component: str, spec: dict[str, Any]
) -> dict[str, Any]:
    return k8s_object(
        dep,
        "monitoring.coreos.com/v1",
        kind,
        obj_name,
        component,
        annotations=wave(WAVE_ODOO),
        body={"spec": spec},
    )


def prober_url(ctx: RenderContext) -> str:
    return f"{BLACKBOX_SERVICE}.{ctx.platform.monitoring_namespace}.svc:{BLACKBOX_PORT}"


def health_url(tenant: Tenant) -> str:
    """Through the ingress, as users reach it (Odoo answers ``/web/health`` with or
    without a database: odoo/addons/web/controllers/home.py ``Home.health``)."""
    return f"https://{tenant.host}{HEALTH_PATH}"


def probe_name(dep: Deployment, tenant: Tenant) -> str:
    return name(dep, f"health-{tenant.plant}") if len(dep.tenants) > 1 else name(dep, "health")


def render_probes(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """One Probe per plant host, so an alert names the plant that is down. The Prometheus
    Operator labels static targets with the Probe's namespace
    (pkg/prometheus/promcfg.go ``generateProbeConfig``) and ``instance`` with the URL."""
    return [
        _monitor(
            dep,
            "Probe",
            probe_name(dep, t),
            "web",
            {
                "interval": INTERVAL,
                "module": BLACKBOX_MODULE,
                "prober": {"url": prober_url(ctx)},
                "targets": {
                    "staticConfig": {
                        "labels": {PLANT_LABEL: t.plant},
                        "static": [health_url(t)],
                    }
                },
            },
        )
        for t in dep.tenants
    ]


def render_monitors(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    objs = [
        *render_probes(dep, ctx),
        _monitor(
            dep,
            "PodMonitor",
            name(dep, "pg"),
            "postgres",
            {
                "podMetricsEndpoints": [{"interval": INTERVAL, "port": "metrics"}],
                "selector": {"matchLabels": pg_pods(dep)},
            },
        ),
        _monitor(
            dep,
            "ServiceMonitor",
            name(dep, "redis"),
            "redis",
            {
                "endpoints": [{"interval": INTERVAL, "port": "metrics"}],
                "selector": {"matchLabels": selector(dep, "redis")},
            },
        ),
    ]
    if dep.sizing.pgbouncer:
        objs.append(
            _monitor(
                dep,
                "PodMonitor",
                name(dep, "pg-pooler"),
                "pooler",
                {
                    "podMetricsEndpoints": [{"interval": INTERVAL, "port": "metrics"}],
                    "selector": {"matchLabels": pooler_pods(dep)},
                },
            )
        )
    return objs


def traefik_services(dep: Deployment, ports: tuple[int, ...] = (HTTP_PORT, GEVENT_PORT)) -> str:
    """Regex of the ``service`` label Traefik gives this deployment's Odoo ports
    (PromQL regexes are anchored at both ends)."""
    alternatives = "|".join(str(p) for p in ports)
    port = alternatives if len(ports) == 1 else f"({alternatives})"
    return f"{dep.namespace}-{web_service(dep)}-{port}@{TRAEFIK_PROVIDER}"


def _alert(
    alert: str, expr: str, for_: str, severity: str, summary: str, dep: Deployment
) -> dict[str, Any]:
    return {
        "alert": alert,
        "annotations": {"summary": summary},
        "expr": expr,
        "for": for_,
        "labels": {
            "namespace": dep.namespace,
            "plantops_environment": dep.environment.name,
            "plantops_tier": dep.tier,
            "severity": severity,
        },
    }


def _down(metric: str, sel: str) -> str:
    """No instance reports up, or none reports at all (the target vanished)."""
    return f"max({metric}{{{sel}}}) < 1 or absent({metric}{{{sel}}})"


def baseline_alerts(dep: Deployment) -> list[dict[str, Any]]:
    ns = dep.namespace
    sel = f'namespace="{ns}"'
    pg_sel = f'{sel},pod=~"{pg_cluster_name(dep)}-[0-9]+"'
    rpo_s = dep.tier_spec.backup.rpo_minutes * 60
    page = "critical" if dep.production else "warning"
    # A base backup is due every interval; allow one missed run plus an hour of runtime.
    backup_max_age = (backup_interval_minutes(dep) * 2 + 60) * 60
    svc = f'service=~"{traefik_services(dep)}"'
    web = f'service=~"{traefik_services(dep, (HTTP_PORT,))}"'
    alerts = [
        _alert(
            "PlantopsOdooUnreachable",
            f"probe_success{{{sel}}} == 0",
            "5m",
            page,
            f"{{{{ $labels.{PLANT_LABEL} }}}}: {HEALTH_PATH} through the ingress has failed"
            " for 5 minutes",
            dep,
        ),
        _alert(
            "PlantopsPodRestarting",
            f"increase(kube_pod_container_status_restarts_total{{{sel}}}[15m]) > 2",
            "5m",
            "warning",
            f"A container in {ns} restarted more than twice in 15 minutes",
            dep,
        ),
        _alert(
            "PlantopsPostgresDown",
            _down("cnpg_collector_up", pg_sel),
            "5m",
            page,
            f"No PostgreSQL instance of {pg_cluster_name(dep)} in {ns} is up",
            dep,
        ),
        _alert(
            "PlantopsPostgresReplicationLag",
            f"max by (pod) (cnpg_pg_replication_lag{{{pg_sel}}}) > 30",
            "5m",
            page,
            f"A PostgreSQL standby in {ns} lags more than 30 s",
            dep,
        ),
        _alert(
            "PlantopsPostgresBackupTooOld",
            "time() - max(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
            f"{{{pg_sel}}}) > {backup_max_age if dep.tier_spec.backup.pitr else rpo_s}",
            "10m",
            page,
            f"The last PostgreSQL base backup of {ns} is older than the tier allows",
            dep,
        ),
        _alert(
            "PlantopsRedisDown",
            _down("redis_up", sel),
            "5m",
            page,
            f"Redis in {ns} is down (Odoo sessions live there)",
            dep,
        ),
        _alert(
            "PlantopsRedisMemoryPressure",
            f"max(redis_memory_used_bytes{{{sel}}} / redis_memory_max_bytes{{{sel}}}) > 0.9",
            "10m",
            "warning",
            f"Redis in {ns} uses over 90 % of maxmemory",
            dep,
        ),
        _alert(
            "PlantopsIngress5xxRatio",
            f'sum(rate(traefik_service_requests_total{{{svc},code=~"5.."}}[5m])) / '
            f"sum(rate(traefik_service_requests_total{{{svc}}}[5m])) > 0.05",
            "10m",
            page,
            f"Over 5 % of requests to {ns} fail with 5xx",
            dep,
        ),
        _alert(
            # The HTTP port only: websocket requests on 8072 last as long as the page.
            "PlantopsIngressSlow",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(traefik_service_request_duration_seconds_bucket{{{web}}}[10m]))) > 3",
            "15m",
            "warning",
            f"The 95th percentile of Odoo responses in {ns} is over 3 s",
            dep,
        ),
    ]
    if dep.tier_spec.backup.pitr:
        alerts.append(
            _alert(
                "PlantopsPostgresWalArchiveBehindRpo",
                f"max(cnpg_pg_stat_archiver_seconds_since_last_archival{{{pg_sel}}}) > {rpo_s}",
                "2m",
                page,
                f"WAL of {ns} has not been archived within the RPO",
                dep,
            )
        )
    return alerts


def render_prometheus_rule(dep: Deployment) -> dict[str, Any]:
    spec = {"groups": [{"name": f"plantops-{dep.namespace}", "rules": baseline_alerts(dep)}]}
    return k8s_object(
        dep,
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        name(dep, "alerts"),
        "monitoring",
        annotations=wave(WAVE_ODOO),
        body={"spec": spec},
    )

"""Prometheus Operator objects: scrape Odoo, PostgreSQL, PgBouncer and Redis, and the
baseline alerts of every deployment.

Odoo's ``/metrics`` comes from the ``monitoring_prometheus`` server-wide module of the
platform image; it is scraped in-cluster and never routed by the ingress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.cloudnativepg import backup_interval_minutes
from plantops.render.kubernetes.common import WAVE_ODOO, name, selector, wave
from plantops.render.kubernetes.networkpolicies import pg_pods, pooler_pods
from plantops.render.kubernetes.odoo import web_service

if TYPE_CHECKING:
    from plantops.plan import Deployment

INTERVAL = "30s"


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


def render_monitors(dep: Deployment) -> list[dict[str, Any]]:
    objs = [
        _monitor(
            dep,
            "ServiceMonitor",
            web_service(dep),
            "web",
            {
                "endpoints": [{"interval": INTERVAL, "path": "/metrics", "port": "http"}],
                "selector": {"matchLabels": selector(dep, "web")},
            },
        ),
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


def baseline_alerts(dep: Deployment) -> list[dict[str, Any]]:
    ns = dep.namespace
    sel = f'namespace="{ns}"'
    rpo_s = dep.tier_spec.backup.rpo_minutes * 60
    page = "critical" if dep.production else "warning"
    # A base backup is due every interval; allow one missed run plus an hour of runtime.
    backup_max_age = (backup_interval_minutes(dep) * 2 + 60) * 60
    alerts = [
        _alert(
            "PlantopsPodRestarting",
            f"increase(kube_pod_container_status_restarts_total{{{sel}}}[15m]) > 2",
            "5m",
            "warning",
            f"A container in {ns} restarted more than twice in 15 minutes",
            dep,
        ),
        _alert(
            "PlantopsPostgresReplicationLag",
            f"max by (pod) (cnpg_pg_replication_lag{{{sel}}}) > 30",
            "5m",
            page,
            f"A PostgreSQL standby in {ns} lags more than 30 s",
            dep,
        ),
        _alert(
            "PlantopsPostgresBackupTooOld",
            f"time() - max(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{{{sel}}}) "
            f"> {backup_max_age if dep.tier_spec.backup.pitr else rpo_s}",
            "10m",
            page,
            f"The last PostgreSQL base backup of {ns} is older than the tier allows",
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
            f'sum(rate(traefik_service_requests_total{{service=~"{ns}-.*",code=~"5.."}}[5m])) / '
            f'sum(rate(traefik_service_requests_total{{service=~"{ns}-.*"}}[5m])) > 0.05',
            "10m",
            page,
            f"Over 5 % of requests to {ns} fail with 5xx",
            dep,
        ),
    ]
    if dep.tier_spec.backup.pitr:
        alerts.append(
            _alert(
                "PlantopsPostgresWalArchiveBehindRpo",
                f"max(cnpg_pg_stat_archiver_seconds_since_last_archival{{{sel}}}) > {rpo_s}",
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

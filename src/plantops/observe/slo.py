"""SLOs per tier as Prometheus rules: SLI recording rules over every window, and the
multi-window, multi-burn-rate alerts of the Google SRE workbook (chapter "Alerting on
SLOs", table 5-8): page when 1h and 5m both burn 14.4x the budget rate or 6h and 30m
burn 6x; open a ticket when 1d and 2h burn 3x or 3d and 6h burn 1x. The long window
says the budget is really going, the short one that it is still going, so an alert
resolves minutes after the burn stops instead of hours.

Where each SLI's data comes from (never Odoo's own ``/metrics``, which needs a
database-bound request; see render/kubernetes/monitoring.py):

* ``availability``: Traefik's per-service request counter, 5xx over all requests
  (``traefik_service_requests_total``, label ``service`` = ``<ns>-<svc>-<port>@kubernetescrd``);
* ``probe``: the blackbox ``Probe`` of ``/web/health`` per plant (``probe_success``);
* ``latency``: Traefik's duration histogram, share of requests to the HTTP port slower
  than the tier's ``latency_p95_ms`` (objective: 95 % under it). The bucket boundary must
  exist, so ``traefik_buckets`` gives the buckets Traefik must be configured with;
* ``backup_freshness``: the Barman Cloud plugin's last available backup timestamp (the
  newest WAL archive for PITR tiers: CloudNativePG's ``cnpg_pg_stat_archiver_*``) within
  the tier's RPO, as a share of time;
* ``restore_verification``: the newest backup whose restore verification passed is no
  older than the tier's verify objective (backup interval + RTO, + 7 days for ``verify:
  weekly``; observe/backupfacts.py), from ``plantops metrics serve``'s
  ``plantops_backup_newest_verified_age_seconds`` (the backup catalog), as a share of time.

Pure: the rules are a function of the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantops.observe.backupfacts import verify_objective_seconds
from plantops.render.kubernetes.common import HTTP_PORT, pg_cluster_name
from plantops.render.kubernetes.monitoring import PLANT_LABEL, traefik_services

if TYPE_CHECKING:
    from collections.abc import Iterable

    from plantops.plan import Deployment

LATENCY_OBJECTIVE = 95.0  # the tier's latency SLO is a 95th percentile
# Traefik's default histogram buckets (pkg/types/metrics.go Prometheus.SetDefaults).
TRAEFIK_DEFAULT_BUCKETS = (0.1, 0.3, 1.2, 5.0)


@dataclass(frozen=True)
class BurnWindow:
    long: str
    short: str
    factor: float
    severity: str  # critical pages, warning opens a ticket

    @property
    def alert(self) -> str:
        return f"PlantopsSloBurnRate{self.long}"


# SRE workbook table 5-8: 2 % of a 30-day budget in 1h, 5 % in 6h, 10 % in 1d, 10 % in 3d.
WINDOWS = (
    BurnWindow("1h", "5m", 14.4, "critical"),
    BurnWindow("6h", "30m", 6.0, "critical"),
    BurnWindow("1d", "2h", 3.0, "warning"),
    BurnWindow("3d", "6h", 1.0, "warning"),
)
RANGES = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def go_float(value: float) -> str:
    """A bucket bound as Prometheus' Go client writes the ``le`` label (%g)."""
    return format(value, "g")


def latency_bucket(dep: Deployment) -> float:
    return dep.tier_spec.slo.latency_p95_ms / 1000


def traefik_buckets(deployments: Iterable[Deployment]) -> list[float]:
    """Traefik's defaults plus every tier's latency threshold, so each latency SLI
    reads an existing ``le`` bucket instead of interpolating."""
    return sorted({*TRAEFIK_DEFAULT_BUCKETS, *(latency_bucket(d) for d in deployments)})


def record_name(window: str) -> str:
    return f"plantops:slo_errors:ratio_rate{window}"


def _labels(dep: Deployment, slo: str, objective: float) -> dict[str, str]:
    return {
        "namespace": dep.namespace,
        "plantops_environment": dep.environment.name,
        "plantops_tier": dep.tier,
        "plantops_unit": dep.unit,
        "slo": slo,
        "objective": go_float(objective),
    }


def _sli_exprs(dep: Deployment) -> dict[str, tuple[float, str]]:
    """slo -> (objective in percent, PromQL template with {w})."""
    slo = dep.tier_spec.slo
    svc = f'service=~"{traefik_services(dep)}"'
    web = f'service=~"{traefik_services(dep, (HTTP_PORT,))}"'
    ns = f'namespace="{dep.namespace}"'
    le = go_float(latency_bucket(dep))
    return {
        "availability": (
            slo.availability,
            f'sum(rate(traefik_service_requests_total{{{svc},code=~"5.."}}[{{w}}])) / '
            f"sum(rate(traefik_service_requests_total{{{svc}}}[{{w}}]))",
        ),
        "probe": (
            slo.availability,
            f"1 - avg by ({PLANT_LABEL}) (avg_over_time(probe_success{{{ns}}}[{{w}}]))",
        ),
        "latency": (
            LATENCY_OBJECTIVE,
            f'1 - sum(rate(traefik_service_request_duration_seconds_bucket{{{web},le="{le}"}}[{{w}}]))'
            f" / sum(rate(traefik_service_request_duration_seconds_count{{{web}}}[{{w}}]))",
        ),
        "backup_freshness": (
            slo.availability,
            f'1 - avg_over_time(plantops:backup_fresh:bool{{{ns},slo="backup_freshness"}}[{{w}}])',
        ),
        "restore_verification": (
            slo.availability,
            "1 - avg_over_time(plantops:restore_verified_fresh:bool"
            f'{{{ns},slo="restore_verification"}}[{{w}}])',
        ),
    }


def _exporter_selector(dep: Deployment) -> str:
    plants = "|".join(sorted(t.plant for t in dep.tenants))
    return f'plant=~"{plants}",environment="{dep.environment.name}"'


def restore_verified_rule(dep: Deployment) -> dict[str, Any]:
    """1 while every plant of the deployment has a verified restore no older than the
    verify objective, else 0; a plant never verified (series absent) counts as stale."""
    sel = _exporter_selector(dep)
    plants = len(dep.tenants)
    age = f"plantops_backup_newest_verified_age_seconds{{{sel}}}"
    return {
        "record": "plantops:restore_verified_fresh:bool",
        # count() == plants: a plant whose series is missing makes the deployment stale
        "expr": (
            f"((count({age} <= {verify_objective_seconds(dep)}) == bool {plants})"
            " or on() vector(0))"
        ),
        "labels": _labels(dep, "restore_verification", dep.tier_spec.slo.availability),
    }


def restore_stale_alert(dep: Deployment) -> dict[str, Any]:
    """A ticket as soon as the newest verified restore is older than the objective (the
    burn alerts say how fast the budget goes; this one says what to do)."""
    objective = verify_objective_seconds(dep)
    return {
        "alert": "PlantopsRestoreVerificationStale",
        "expr": (
            f'plantops:restore_verified_fresh:bool{{namespace="{dep.namespace}",'
            'slo="restore_verification"} == 0'
        ),
        "for": "15m",
        "labels": {"severity": "warning", "slo": "restore_verification"},
        "annotations": {
            "summary": (
                f"{dep.namespace}: no restore verified in the last "
                f"{go_float(round(objective / 3600, 2))} h"
            ),
            "description": (
                "Run `plantops backup verify --due`; the exporter's "
                "plantops_backup_newest_verified_age_seconds shows which plant is behind."
            ),
        },
    }


def backup_fresh_rule(dep: Deployment) -> dict[str, Any]:
    """1 while the newest backup (WAL for PITR tiers) is within the RPO, else 0; absent
    backups count as stale."""
    pg = f'namespace="{dep.namespace}",pod=~"{pg_cluster_name(dep)}-[0-9]+"'
    rpo_s = dep.tier_spec.backup.rpo_minutes * 60
    if dep.tier_spec.backup.pitr:
        age = f"min(cnpg_pg_stat_archiver_seconds_since_last_archival{{{pg}}})"
    else:
        age = (
            "time() - max(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
            f"{{{pg}}})"
        )
    return {
        "record": "plantops:backup_fresh:bool",
        "expr": f"({age} <= bool {rpo_s}) or on() vector(0)",
        "labels": _labels(dep, "backup_freshness", dep.tier_spec.slo.availability),
    }


def slo_rule_groups(dep: Deployment) -> list[dict[str, Any]]:
    """One group per deployment: the SLIs (recorded every 30 s), then the burn alerts that
    read them. One group, because Prometheus evaluates the rules of a group in order but
    separate groups independently (prometheus rules/manager.go: each Group runs its own
    loop; Group.Eval walks its rules in sequence), so an alert in another group could read
    recordings a cycle old — and promtool's unit tests then pass or fail by chance."""
    records: list[dict[str, Any]] = [backup_fresh_rule(dep), restore_verified_rule(dep)]
    alerts: list[dict[str, Any]] = [restore_stale_alert(dep)]
    for slo, (objective, template) in _sli_exprs(dep).items():
        labels = _labels(dep, slo, objective)
        for w in RANGES:
            records.append(
                {"record": record_name(w), "expr": template.replace("{w}", w), "labels": labels}
            )
        budget = round(1 - objective / 100, 10)
        sel = f'namespace="{dep.namespace}",slo="{slo}"'
        for bw in WINDOWS:
            threshold = go_float(round(bw.factor * budget, 10))
            expr = (
                f"{record_name(bw.long)}{{{sel}}} > {threshold}\n"
                f"and\n{record_name(bw.short)}{{{sel}}} > {threshold}"
            )
            alerts.append(
                {
                    "alert": bw.alert,
                    "expr": expr,
                    "labels": {
                        # only production pages; a burning stage opens a ticket
                        "severity": bw.severity if dep.production else "warning",
                        "slo": slo,
                        "long_window": bw.long,
                        "short_window": bw.short,
                    },
                    "annotations": {
                        "summary": (
                            f"{dep.namespace}: {slo} SLO ({go_float(objective)} %) burning "
                            f"its error budget {go_float(bw.factor)}x over {bw.long} and {bw.short}"
                        ),
                        "description": (
                            f"At this rate {go_float(round(bw.factor * 100 / 30, 2))} % of the "
                            f"30-day budget ({go_float(round(budget * 100, 6))} % errors) goes "
                            "per day; the recorded error ratio is the alert's value."
                        ),
                    },
                }
            )
    return [{"name": f"plantops-slo-{dep.namespace}", "interval": "30s", "rules": records + alerts}]


__all__ = [
    "LATENCY_OBJECTIVE",
    "RANGES",
    "WINDOWS",
    "BurnWindow",
    "backup_fresh_rule",
    "go_float",
    "record_name",
    "restore_stale_alert",
    "restore_verified_rule",
    "slo_rule_groups",
    "traefik_buckets",
]

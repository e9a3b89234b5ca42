"""Observability: synthetic checks of Odoo (``probe``), SLO rules and burn-rate alerts
(``slo``), Alertmanager routing from plant windows (``alerting``), blackbox_exporter
modules (``blackbox``), the metrics exporter (``exporter``) and ``observe render``."""

from plantops.observe.probe import (
    CHECKS,
    SCHEMA,
    CheckResult,
    ProbeCredentials,
    ProbeRun,
    ProbeSettings,
    ProbeTarget,
    TargetResult,
    run_probes,
)
from plantops.observe.targets import fleet_targets

__all__ = [
    "CHECKS",
    "SCHEMA",
    "CheckResult",
    "ProbeCredentials",
    "ProbeRun",
    "ProbeSettings",
    "ProbeTarget",
    "TargetResult",
    "fleet_targets",
    "run_probes",
]

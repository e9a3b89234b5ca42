"""SLO rules with the real promtool: every generated file passes `check rules`, and unit
tests on synthetic Traefik series prove each burn window fires when its budget burns and
resolves once the short window is clean (SRE workbook, multi-window multi-burn-rate)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantops.observe.backupfacts import verify_objective_seconds
from plantops.observe.slo import (
    WINDOWS,
    backup_fresh_rule,
    restore_stale_alert,
    restore_verified_rule,
    slo_rule_groups,
    traefik_buckets,
)
from plantops.plan import Deployment
from plantops.render.kubernetes.common import HTTP_PORT
from plantops.render.kubernetes.monitoring import TRAEFIK_PROVIDER
from plantops.render.kubernetes.odoo import web_service
from tests.observe.conftest import tool
from tests.render.conftest import Rendered

PER_SAMPLE = 600  # requests per sample


def _dep(example: Rendered, namespace: str) -> Deployment:
    (dep,) = [d for d in example.deployments if d.namespace == namespace]
    return dep


def _counter(segments: list[tuple[int, float]]) -> str:
    """promtool expanding notation for a counter: (samples, increase per sample) each."""
    parts, value = [], 0.0
    for n, inc in segments:
        start = value + (inc if parts else 0)
        parts.append(f"{start:g}+{inc:g}x{n - 1}")
        value = start + inc * (n - 1)
    return " ".join(parts)


def _service(dep: Deployment) -> str:
    return f"{dep.namespace}-{web_service(dep)}-{HTTP_PORT}@{TRAEFIK_PROVIDER}"


def _healthy_backups(dep: Deployment, samples: int) -> list[dict[str, str]]:
    """A recent backup throughout, so only the SLO under test can burn."""
    sel = f'namespace="{dep.namespace}",pod="{dep.unit}-pg-1"'
    restores = [
        {
            "series": "plantops_backup_newest_verified_age_seconds"
            f'{{plant="{t.plant}",environment="{dep.environment.name}",job="plantops"}}',
            "values": f"3600x{samples}",
        }
        for t in dep.tenants
    ]
    if dep.tier_spec.backup.pitr:
        return [
            {
                "series": f"cnpg_pg_stat_archiver_seconds_since_last_archival{{{sel}}}",
                "values": f"30x{samples}",
            },
            *restores,
        ]
    raise AssertionError("these tests use PITR tiers")


def _alert_labels(dep: Deployment, slo: str, long: str) -> dict[str, str]:
    for group in slo_rule_groups(dep):
        for rule in group["rules"]:
            if rule.get("alert") == f"PlantopsSloBurnRate{long}" and rule["labels"]["slo"] == slo:
                sli = next(
                    r
                    for r in slo_rule_groups(dep)[0]["rules"]
                    if "record" in r and r["labels"].get("slo") == slo
                )
                return {**sli["labels"], **rule["labels"]}
    raise AssertionError(long)


def _annotations(dep: Deployment, slo: str, long: str) -> dict[str, str]:
    rule = next(
        r
        for r in slo_rule_groups(dep)[0]["rules"]
        if r.get("alert") == f"PlantopsSloBurnRate{long}" and r["labels"]["slo"] == slo
    )
    return dict(rule["annotations"])


def _run(
    tmp_path: Path, dep: Deployment, tests: list[dict[str, Any]], evaluation: str = "1m"
) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": slo_rule_groups(dep)}))
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": evaluation, "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run(
        [tool("promtool", "prometheus"), "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_generated_rule_file_passes_promtool_check(example: Rendered, tmp_path: Path) -> None:
    paths = []
    for dep in example.deployments:
        path = tmp_path / f"{dep.namespace}.yml"
        path.write_text(yaml.safe_dump({"groups": slo_rule_groups(dep)}))
        paths.append(str(path))
    proc = subprocess.run(
        [tool("promtool", "prometheus"), "check", "rules", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(paths)


# (long window, error ratio as a multiple of the budget, interval, incident start/end in
# samples, eval times: before it fires, while firing, after it resolves). Each ratio sits
# between this window's factor and the next faster one, so it is this window that fires.
BURNS = [
    ("1h", 200, "1m", (120, 140), ("115m", "130m", "150m")),
    ("6h", 10, "5m", (72, 144), ("9h", "11h30m", "13h")),
    ("1d", 5, "10m", (144, 288), ("36h", "44h", "51h")),
    ("3d", 2, "30m", (144, 288), ("96h", "132h", "151h")),
]


@pytest.mark.parametrize(("long", "multiple", "interval", "incident", "times"), BURNS)
def test_each_burn_window_fires_and_resolves(
    example: Rendered,
    tmp_path: Path,
    long: str,
    multiple: float,
    interval: str,
    incident: tuple[int, int],
    times: tuple[str, str, str],
) -> None:
    dep = _dep(example, "detroit-stamping-prod")  # critical: 99.95 %, budget 0.05 %
    budget = 1 - dep.tier_spec.slo.availability / 100
    ratio = multiple * budget
    start, end = incident
    total = end + 40
    series = [
        {
            "series": f'traefik_service_requests_total{{service="{_service(dep)}",code="200"}}',
            "values": _counter(
                [
                    (start, PER_SAMPLE),
                    (end - start, PER_SAMPLE * (1 - ratio)),
                    (total - end, PER_SAMPLE),
                ]
            ),
        },
        {
            "series": f'traefik_service_requests_total{{service="{_service(dep)}",code="502"}}',
            "values": _counter([(start, 0), (end - start, PER_SAMPLE * ratio), (total - end, 0)]),
        },
        *_healthy_backups(dep, total),
    ]
    before, firing, after = times
    labels = _alert_labels(dep, "availability", long)
    ann = _annotations(dep, "availability", long)
    checks = [
        {"eval_time": before, "alertname": f"PlantopsSloBurnRate{long}", "exp_alerts": []},
        {
            "eval_time": firing,
            "alertname": f"PlantopsSloBurnRate{long}",
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": ann}],
        },
        {"eval_time": after, "alertname": f"PlantopsSloBurnRate{long}", "exp_alerts": []},
    ]
    # the faster window must stay quiet: the burn is below its factor
    faster = [w.long for w in WINDOWS]
    idx = faster.index(long)
    if idx > 0:
        checks.append(
            {
                "eval_time": firing,
                "alertname": f"PlantopsSloBurnRate{faster[idx - 1]}",
                "exp_alerts": [],
            }
        )
    test = {"interval": interval, "input_series": series, "alert_rule_test": checks}
    _run(tmp_path, dep, [test], evaluation=interval)


def test_latency_sli_reads_the_tier_threshold_bucket(example: Rendered, tmp_path: Path) -> None:
    dep = _dep(example, "detroit-stamping-prod")
    assert 0.8 in traefik_buckets(example.deployments)
    svc = _service(dep)
    # 40 % of requests slower than 800 ms for an hour: 8x a 5 % budget, fires 1h? no: 14.4x
    # is 72 %, so the 6h/30m pair (6x = 30 %) fires and 1h/5m does not.
    fast, slow = 360, 240
    series = [
        {
            "series": f'traefik_service_request_duration_seconds_bucket{{service="{svc}",le="0.8"}}',
            "values": _counter([(400, fast)]),
        },
        {
            "series": f'traefik_service_request_duration_seconds_count{{service="{svc}"}}',
            "values": _counter([(400, fast + slow)]),
        },
        *_healthy_backups(dep, 400),
    ]
    labels = _alert_labels(dep, "latency", "6h")
    checks = [
        {
            "eval_time": "6h",
            "alertname": "PlantopsSloBurnRate6h",
            "exp_alerts": [
                {"exp_labels": labels, "exp_annotations": _annotations(dep, "latency", "6h")}
            ],
        },
        {"eval_time": "6h", "alertname": "PlantopsSloBurnRate1h", "exp_alerts": []},
    ]
    _run(tmp_path, dep, [{"interval": "1m", "input_series": series, "alert_rule_test": checks}])


def test_backup_freshness_counts_a_missing_backup_as_stale(
    example: Rendered, tmp_path: Path
) -> None:
    dep = _dep(example, "porto-plastics-prod")  # no PITR: the base backup must be within RPO
    assert not dep.tier_spec.backup.pitr
    rule = backup_fresh_rule(dep)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": slo_rule_groups(dep)}))
    rpo = dep.tier_spec.backup.rpo_minutes
    pod = f"{dep.unit}-pg-1"
    series = [
        {
            # a backup at t=0 and never again: fresh until the RPO has passed
            "series": "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
            f'{{namespace="{dep.namespace}",pod="{pod}"}}',
            "values": f"0x{rpo * 2}",
        }
    ]
    exp = dict(rule["labels"])
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": "plantops:backup_fresh:bool",
                    "eval_time": f"{rpo - 1}m",
                    "exp_samples": [
                        {"labels": _labels_str("plantops:backup_fresh:bool", exp), "value": 1}
                    ],
                },
                {
                    "expr": "plantops:backup_fresh:bool",
                    "eval_time": f"{rpo + 1}m",
                    "exp_samples": [
                        {"labels": _labels_str("plantops:backup_fresh:bool", exp), "value": 0}
                    ],
                },
            ],
        },
        {
            "interval": "1m",
            "input_series": [],
            "promql_expr_test": [
                {
                    "expr": "plantops:backup_fresh:bool",
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": _labels_str("plantops:backup_fresh:bool", exp), "value": 0}
                    ],
                }
            ],
        },
    ]
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run(
        [tool("promtool", "prometheus"), "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _labels_str(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def test_only_production_pages(example: Rendered) -> None:
    for dep in example.deployments:
        severities = {
            r["labels"]["severity"] for r in slo_rule_groups(dep)[0]["rules"] if "alert" in r
        }
        assert severities == ({"critical", "warning"} if dep.production else {"warning"})


def test_restore_verification_freshness_needs_every_plant_verified_within_the_objective(
    example: Rendered, tmp_path: Path
) -> None:
    """The SLI reads the exporter's newest-verified age: fresh while every plant of the
    deployment is within the objective, stale once one ages past it or has no series; the
    stale alert follows 15 minutes later."""
    dep = _dep(example, "shared-eu-subsidiaries-prod")  # two plants, verify weekly
    plants = sorted(t.plant for t in dep.tenants)
    assert len(plants) == 2
    objective = verify_objective_seconds(dep)
    # standard tier: base backup every 240 min (its RPO, no PITR) + 480 min RTO + a week
    assert (dep.tier_spec.backup.rpo_minutes, dep.tier_spec.backup.rto_minutes) == (240, 480)
    assert objective == (240 + 480) * 60 + 7 * 86400
    rule = restore_verified_rule(dep)
    exp = dict(rule["labels"])
    name = "plantops:restore_verified_fresh:bool"
    start = objective - 30 * 60  # 30 minutes from stale at t=0, ageing 60 s a minute
    env = dep.environment.name
    series = [
        {
            "series": f'plantops_backup_newest_verified_age_seconds{{plant="{plants[0]}",'
            f'environment="{env}",job="plantops"}}',
            "values": f"{start}+60x90",
        },
        {
            "series": f'plantops_backup_newest_verified_age_seconds{{plant="{plants[1]}",'
            f'environment="{env}",job="plantops"}}',
            "values": "3600x90",
        },
    ]

    def sample(at: str, value: int) -> dict[str, Any]:
        return {
            "expr": name,
            "eval_time": at,
            "exp_samples": [{"labels": _labels_str(name, exp), "value": value}],
        }

    alert_labels = {**exp, "severity": "warning"}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [sample("29m", 1), sample("31m", 0)],
            "alert_rule_test": [
                {
                    "eval_time": "40m",
                    "alertname": "PlantopsRestoreVerificationStale",
                    "exp_alerts": [],
                },
                {
                    "eval_time": "50m",
                    "alertname": "PlantopsRestoreVerificationStale",
                    "exp_alerts": [
                        {
                            "exp_labels": alert_labels,
                            "exp_annotations": restore_stale_alert(dep)["annotations"],
                        }
                    ],
                },
            ],
        },
        {
            # only one of the two plants was ever verified: stale
            "interval": "1m",
            "input_series": series[1:],
            "promql_expr_test": [sample("5m", 0)],
        },
    ]
    _run_expr_tests(tmp_path, dep, tests)


def _run_expr_tests(tmp_path: Path, dep: Deployment, tests: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": slo_rule_groups(dep)}))
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run(
        [tool("promtool", "prometheus"), "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

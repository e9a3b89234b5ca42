"""The exporter's policy and release-gate series: findings in force and failing per
deployment from a real ``check`` evaluation of a fleet, exception expiries, and each
plant's newest promotion per stage with its gate results from a real (SQLite) ledger —
then all of it scraped from ``metrics serve``'s registry by a real Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from plantops.errors import InfrastructureError
from plantops.observe.exporter import PolicyFacts, Sources, registry_for, release_rows, serve
from plantops.services.observe import (
    Periodic,
    exporter_registry,
    planned,
    policy_facts,
    promotion_rows,
)
from plantops.store.ledger import NewEntry, open_ledger
from tests.conftest import EXAMPLE
from tests.fixtures.postgres import free_port
from tests.observe.conftest import tool
from tests.render.conftest import Rendered

TODAY = dt.date(2026, 12, 3)
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)

# Two rules every web Deployment breaks: one low (below every stage's threshold: in
# force, not failing) and one critical for Porto only (failing in every stage).
RULES = """
  - id: T-LOW
    severity: low
    message: web runs a hundred replicas
    match: {kinds: [Deployment], labels: {app.kubernetes.io/component: web}}
    expression: "object.spec.replicas >= 100"
  - id: T-PORTO
    severity: critical
    message: porto web runs a hundred replicas
    match:
      kinds: [Deployment]
      labels: {app.kubernetes.io/component: web, plantops.io/plant: porto-plastics}
    expression: "object.spec.replicas >= 100"
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    shutil.copytree(EXAMPLE, root)
    with (root / "policies" / "acme.yaml").open("a", encoding="utf-8") as fh:
        fh.write(RULES)
    return root


def families(registry: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry).decode()
    return {
        f.name: [(dict(s.labels), s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def test_policy_facts_split_findings_in_force_from_failing_ones(fleet: Path) -> None:
    facts = policy_facts(fleet, today=TODAY, now=NOW)
    low = [f for f in facts.findings if f.rule == "T-LOW"]
    porto = [f for f in facts.findings if f.rule == "T-PORTO"]
    assert low and not any(f.failing for f in low)
    assert {f.environment for f in porto} == {"dev", "test", "staging", "prod"}
    assert all(f.failing and f.plant == "porto-plastics" for f in porto)
    # the example's exception is in force, with its scope and owner
    assert {(e.rule, e.expires) for e in facts.exceptions} == {
        ("PO-POD-008", dt.date(2027, 6, 30)),
    }
    assert {e.where for e in facts.exceptions} == {"*/*/Deployment/*/*-odoo-cron"}
    # the day after an exception's last day it is gone, and what it covered is back
    later = policy_facts(fleet, today=dt.date(2027, 7, 1), now=NOW)
    assert [e.expires for e in later.exceptions] == []
    assert any(f.rule == "PO-POD-008" for f in later.findings)
    assert not any(f.rule == "PO-POD-008" for f in facts.findings)


def test_policy_series_count_per_deployment_with_zeros(fleet: Path, example: Rendered) -> None:
    facts = policy_facts(fleet, today=TODAY, now=NOW, deployments=planned(fleet, TODAY))
    registry = registry_for(
        release_rows(example.deployments),
        None,
        Sources(deployments=example.deployments, policy=lambda: facts, clock=lambda: NOW),
    )
    got = families(registry)
    failing = {(lb["plant"], lb["environment"]): v for lb, v in got["plantops_policy_failing"]}
    assert failing[("porto-plastics", "prod")] == 1
    assert failing[("porto-plastics", "dev")] == 1
    assert failing[("detroit-stamping", "prod")] == 0  # present, 0: alertable as "> 0"
    deployments = {(r.plant, r.environment) for r in release_rows(example.deployments)}
    assert set(failing) == deployments
    found = {
        (lb["plant"], lb["environment"], lb["rule"], lb["severity"]): v
        for lb, v in got["plantops_policy_findings"]
    }
    # a shared deployment's finding counts for each of its tenants
    assert found[("brno-components", "prod", "T-LOW", "low")] == 1
    assert found[("gdansk-packaging", "prod", "T-LOW", "low")] == 1
    assert not any(plant.startswith("shared-") for plant, *_ in found)
    expiry = {lb["where"]: v for lb, v in got["plantops_policy_exception_expiry_timestamp_seconds"]}
    # valid through its expiry day: it stops applying at the next UTC midnight
    assert (
        expiry["*/*/Deployment/*/*-odoo-cron"] == dt.datetime(2027, 7, 1, tzinfo=dt.UTC).timestamp()
    )
    ((_, evaluated),) = got["plantops_policy_evaluated_timestamp_seconds"]
    assert evaluated == NOW.timestamp()


def test_a_failed_policy_refresh_keeps_the_scrape_and_says_so(example: Rendered) -> None:
    calls = {"n": 0}
    first = PolicyFacts(NOW, (), ())

    def compute() -> PolicyFacts:
        calls["n"] += 1
        if calls["n"] > 1:
            raise InfrastructureError("render failed")
        return first

    periodic = Periodic(compute, 0.05)
    try:
        assert periodic() is first
        deadline = time.monotonic() + 5
        while calls["n"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        with pytest.raises(InfrastructureError):
            periodic()
        registry = registry_for(
            release_rows(example.deployments), None, Sources(policy=periodic, clock=lambda: NOW)
        )
        got = families(registry)
        assert ({"source": "policy"}, 0.0) in got["plantops_source_up"]
        assert "plantops_policy_failing" not in got
    finally:
        periodic.stop()


def _promote(
    ledger: Any, release: str, stage: str, plants: list[str], when: dt.datetime, **kw: Any
) -> None:
    gates = {
        p: [{"gate": "addons", "ok": True}, {"gate": "soak", "ok": not kw.get("glass")}]
        for p in plants
    }
    payload = {"wave": 1, "plants": plants, "gates": gates, "break_glass": bool(kw.get("glass"))}
    ledger.append(
        [NewEntry("promotion", release_id=release, stage=stage, actor="ci", payload=payload)],
        now=when,
        claims=[(release, stage, p) for p in plants],
    )


def test_newest_promotion_per_plant_and_stage_from_a_real_ledger(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        r1, r2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
        _promote(ledger, r1, "prod", ["pune-pilot", "brno-components"], NOW)
        later = NOW + dt.timedelta(hours=5)
        _promote(ledger, r2, "prod", ["pune-pilot"], later, glass=True)
        _promote(ledger, r2, "staging", ["brno-components"], NOW - dt.timedelta(days=1))
        rows = {(r.plant, r.environment): r for r in promotion_rows(ledger.entries())}
    finally:
        ledger.close()
    assert set(rows) == {
        ("pune-pilot", "prod"), ("brno-components", "prod"), ("brno-components", "staging")
    }  # fmt: skip
    pilot = rows[("pune-pilot", "prod")]
    assert (pilot.release, pilot.promoted_at, pilot.break_glass) == (r2, later, True)
    assert pilot.gates == (("addons", True), ("soak", False))
    assert rows[("brno-components", "prod")].release == r1


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


def test_policy_and_gate_series_are_scraped_by_a_real_prometheus(
    fleet: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    ledger = open_ledger(db)
    try:
        _promote(ledger, "sha256:" + "c" * 64, "prod", ["pune-pilot"], NOW, glass=True)
    finally:
        ledger.close()
    # what `plantops metrics serve --fleet F --state-db DB` builds
    registry = exporter_registry(fleet, probe_results=None, state_db=db, today=TODAY)
    server, _thread = serve(registry, host="127.0.0.1", port=0)
    prom_port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: plantops\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.server_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [tool("prometheus", "prometheus"), f"--config.file={cfg}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{prom_port}"
    try:
        deadline = time.monotonic() + 30
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                found = _query(url, "plantops_policy_failing > 0")
            except OSError:
                continue
        assert {(r["metric"]["plant"], r["metric"]["environment"]) for r in found} == {
            ("porto-plastics", e) for e in ("dev", "test", "staging", "prod")
        }
        assert {r["metric"]["tier"] for r in found} == {"standard"}
        glass = _query(url, "plantops_release_break_glass == 1")
        assert [r["metric"]["plant"] for r in glass] == ["pune-pilot"]
        failed = _query(url, "plantops_release_gate_passed == 0")
        assert [r["metric"]["gate"] for r in failed] == ["soak"]
        ups = {r["metric"]["source"]: r["value"][1] for r in _query(url, "plantops_source_up")}
        assert ups == {"backup_catalog": "1", "policy": "1", "release_ledger": "1"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()

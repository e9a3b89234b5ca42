"""plantops probe run against the stand-in Odoo (tests/observe/odoo_standin.py): every
check passes on a healthy deployment and fails, with its reason, on each way a real one
breaks; the prober never hangs and one bad target never delays the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantops.observe import fleet_targets
from plantops.observe.probe import (
    CHECKS,
    ProbeCredentials,
    ProbeRun,
    ProbeSettings,
    ProbeTarget,
    run_probes,
)
from tests.fixtures.postgres import free_port
from tests.observe.odoo_standin import Behaviour, OdooStandIn
from tests.render.conftest import Rendered

FAST = ProbeSettings(timeout=1.0, retries=1, backoff=0.05, concurrency=8, cert_min_days=14)
CREDS = ProbeCredentials("probe", "s3cret", "stock.picking")


def _target(url: str, **kw: object) -> ProbeTarget:
    defaults: dict[str, object] = {
        "database": "acme",
        "expected_version": "17.0",
        "credentials": CREDS,
    }
    defaults.update(kw)
    return ProbeTarget(name="acme-prod", url=url, **defaults)  # type: ignore[arg-type]


def _checks(run: ProbeRun, index: int = 0) -> dict[str, tuple[str, str]]:
    return {c.check: (c.status, c.detail) for c in run.targets[index].checks}


@pytest.fixture
def odoo() -> Iterator[OdooStandIn]:
    with OdooStandIn() as s:
        yield s


@pytest.fixture
def odoo_tls(tmp_path: Path) -> Iterator[OdooStandIn]:
    with OdooStandIn(tls_dir=tmp_path / "tls") as s:
        yield s


def test_healthy_deployment_passes_every_check_over_tls(odoo_tls: OdooStandIn) -> None:
    assert odoo_tls.ca_file is not None
    settings = ProbeSettings(timeout=2, retries=0, ca_file=str(odoo_tls.ca_file))
    run = run_probes([_target(odoo_tls.url)], settings)
    checks = _checks(run)
    assert list(checks) == list(CHECKS)
    assert {k: v[0] for k, v in checks.items()} == dict.fromkeys(CHECKS, "pass"), checks
    assert run.ok
    by = {c.check: c for c in run.targets[0].checks}
    assert by["business"].data == {"uid": 7, "model": "stock.picking", "count": 42}
    assert by["version"].data["server_serie"] == "17.0"
    assert 88 < by["tls"].data["days_left"] <= 90
    assert by["dbmanager"].data == {"http_status": 404}


def test_self_signed_certificate_is_a_failed_check_with_the_reason(odoo_tls: OdooStandIn) -> None:
    run = run_probes([_target(odoo_tls.url)], ProbeSettings(timeout=2, retries=0))
    checks = _checks(run)
    assert not run.ok
    for name in ("health", "login", "version", "xmlrpc", "business", "dbmanager", "tls"):
        status, detail = checks[name]
        assert status == "fail"
        assert "TLS" in detail and "self-signed" in detail, (name, detail)


def test_certificate_expiring_soon_fails_tls_only(odoo_tls: OdooStandIn) -> None:
    assert odoo_tls.ca_file is not None
    settings = ProbeSettings(timeout=2, retries=0, ca_file=str(odoo_tls.ca_file), cert_min_days=120)
    checks = _checks(run_probes([_target(odoo_tls.url)], settings))
    assert checks["tls"][0] == "fail" and "expires in" in checks["tls"][1]
    assert checks["health"][0] == "pass"


def test_plain_http_skips_tls_and_no_credentials_skip_business(odoo: OdooStandIn) -> None:
    run = run_probes([_target(odoo.url, credentials=None)], FAST)
    checks = _checks(run)
    assert checks["tls"][0] == "skip"
    assert checks["business"][0] == "skip"
    assert run.ok  # a skip is not a failure
    assert run.counts()["skipped"] == 2


def test_wrong_release_fails_version_and_xmlrpc(odoo: OdooStandIn) -> None:
    checks = _checks(run_probes([_target(odoo.url, expected_version="18.0")], FAST))
    for name in ("version", "xmlrpc"):
        status, detail = checks[name]
        assert status == "fail" and "'17.0'" in detail and "'18.0'" in detail
    assert checks["health"][0] == "pass"


def test_jsonrpc_error_envelope_is_reported_with_its_exception_name(odoo: OdooStandIn) -> None:
    odoo.behaviour.version_error = True
    status, detail = _checks(run_probes([_target(odoo.url)], FAST))["version"]
    assert status == "fail"
    assert "JSON-RPC error 200 Odoo Server Error" in detail and "builtins.KeyError" in detail


def test_500_is_retried_then_fails(odoo: OdooStandIn) -> None:
    odoo.behaviour.status["/web/health"] = 500
    run = run_probes([_target(odoo.url)], FAST)
    health = next(c for c in run.targets[0].checks if c.check == "health")
    assert health.status == "fail" and "HTTP 500" in health.detail
    assert health.attempts == 2 == odoo.hits["/web/health"]


def test_a_transient_500_recovers_on_retry(odoo: OdooStandIn) -> None:
    odoo.behaviour.fail_first["/web/health"] = 1
    run = run_probes([_target(odoo.url)], FAST)
    health = next(c for c in run.targets[0].checks if c.check == "health")
    assert health.status == "pass" and health.attempts == 2


def test_wrong_password_fails_business_with_access_denied(odoo: OdooStandIn) -> None:
    creds = ProbeCredentials("probe", "wrong", "stock.picking")
    status, detail = _checks(run_probes([_target(odoo.url, credentials=creds)], FAST))["business"]
    assert status == "fail" and "fault 3" in detail and "Access Denied" in detail


def test_unknown_model_fails_business(odoo: OdooStandIn) -> None:
    creds = ProbeCredentials("probe", "s3cret", "mrp.production")
    status, detail = _checks(run_probes([_target(odoo.url, credentials=creds)], FAST))["business"]
    assert status == "fail" and "fault 1" in detail and "mrp.production" in detail


def test_exposed_database_manager_fails(odoo: OdooStandIn) -> None:
    odoo.behaviour.dbmanager_exposed = True
    status, detail = _checks(run_probes([_target(odoo.url)], FAST))["dbmanager"]
    assert status == "fail" and "HTTP 200" in detail


def test_unbound_database_fails_login_with_the_redirect(odoo: OdooStandIn) -> None:
    odoo.behaviour.bound_db = False
    status, detail = _checks(run_probes([_target(odoo.url)], FAST))["login"]
    assert status == "fail" and "303" in detail and "/web/database/selector" in detail


def test_slow_answer_within_timeout_passes_with_its_latency(odoo: OdooStandIn) -> None:
    odoo.behaviour.delay["/web/health"] = 0.4
    run = run_probes([_target(odoo.url)], FAST)
    health = next(c for c in run.targets[0].checks if c.check == "health")
    assert health.status == "pass" and health.latency_ms >= 400


def test_hanging_target_times_out_and_never_delays_a_healthy_one() -> None:
    hanging = Behaviour(delay=dict.fromkeys(["/web/health", "/web/login"], 30.0))
    with OdooStandIn(hanging) as slow, OdooStandIn() as good:
        settings = ProbeSettings(timeout=0.5, retries=1, backoff=0.05, concurrency=4)
        t0 = time.monotonic()
        run = run_probes([_target(slow.url), _target(good.url)], settings)
        elapsed = time.monotonic() - t0
    slow_checks, good_checks = _checks(run, 0), _checks(run, 1)
    assert slow_checks["health"][0] == "fail" and "timed out" in slow_checks["health"][1]
    assert all(s == "pass" for s, _ in list(good_checks.values())[:6])
    # two attempts of 0.5 s plus the pause, far below the hang
    assert elapsed < settings.deadline + 1
    good_health = next(c for c in run.targets[1].checks if c.check == "health")
    assert good_health.latency_ms < 500


def test_a_dripping_server_is_cut_at_the_check_deadline() -> None:
    """httpx's read timeout restarts with every byte; the check's own deadline does not."""
    with OdooStandIn(Behaviour(drip={"/web/health": 0.1})) as odoo:
        settings = ProbeSettings(timeout=0.3, retries=0, checks=("health",))
        t0 = time.monotonic()
        run = run_probes([_target(odoo.url)], settings)
        elapsed = time.monotonic() - t0
    status, detail = _checks(run)["health"]
    assert status == "fail" and f"no answer within {settings.deadline:g} s" in detail
    assert elapsed < settings.deadline + 0.5


def test_fleet_targets_follow_the_plan(example: Rendered) -> None:
    targets = fleet_targets(example.deployments, plants=["detroit-stamping"], environments=["prod"])
    assert [(t.name, t.url, t.database, t.expected_version, t.tier) for t in targets] == [
        (
            "detroit-stamping-prod",
            "https://detroit-stamping.erp.acme.example",
            "detroit-stamping",
            "17.0",
            "critical",
        )
    ]
    every = fleet_targets(example.deployments)
    assert len(every) == sum(len(d.tenants) for d in example.deployments)
    assert all(t.credentials is None for t in every)


def test_nothing_listening_is_a_failed_check_on_every_check() -> None:
    # (An unresolvable name takes the same path, httpx.ConnectError; it is not tested
    # here because resolving it would send a DNS query off this machine.)
    port = free_port()
    run = run_probes([_target(f"http://127.0.0.1:{port}")], ProbeSettings(timeout=1, retries=0))
    checks = _checks(run)
    for name in ("health", "login", "version", "xmlrpc", "business", "dbmanager"):
        assert checks[name][0] == "fail" and "cannot connect" in checks[name][1], name
    assert not run.ok


def test_concurrency_limit_bounds_targets_in_flight() -> None:
    in_flight, peak = 0, 0

    behaviour = Behaviour(delay={"/web/health": 0.2})
    with OdooStandIn(behaviour) as odoo:
        from plantops.observe import probe as probe_mod

        original = probe_mod.Prober.probe

        async def counted(self, client, target):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await original(self, client, target)
            finally:
                in_flight -= 1

        settings = ProbeSettings(timeout=2, retries=0, concurrency=3, checks=("health",))
        prober = probe_mod.Prober(settings)
        prober.probe = counted.__get__(prober)  # type: ignore[method-assign]
        targets = [_target(odoo.url) for _ in range(9)]
        run = asyncio.run(prober.run(targets))
    assert run.ok and len(run.targets) == 9
    assert peak == 3


def test_json_document_shape(odoo: OdooStandIn) -> None:
    doc = run_probes([_target(odoo.url)], FAST).as_dict()
    assert doc["schema"] == "plantops.io/probe-run/v1"
    assert set(doc) == {"schema", "started_at", "duration_ms", "ok", "summary", "targets"}
    assert set(doc["summary"]) == {
        "targets", "targets_failed", "checks", "passed", "failed", "skipped",
    }  # fmt: skip
    target = doc["targets"][0]
    assert target["ok"] is True and target["url"] == odoo.url
    assert set(target["checks"][0]) == {
        "check",
        "status",
        "latency_ms",
        "attempts",
        "detail",
        "data",
    }
    assert "s3cret" not in str(doc)

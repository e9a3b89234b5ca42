"""The exporter's catalog and calendar series: backup ages, the last verification and
its measured RPO/RTO from a real (SQLite) backup catalog, business events from the plant
calendars — computed purely, then scraped from ``metrics serve``'s registry by a real
Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantops.observe.backupfacts import backup_facts, verify_objective_seconds
from plantops.observe.events import plant_events
from plantops.observe.exporter import Sources, registry_for, release_rows, serve
from plantops.store import Catalog, open_catalog
from tests.fixtures.postgres import free_port
from tests.observe.conftest import tool
from tests.render.conftest import Rendered

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'state.db'}")
    yield cat
    cat.close()


def _backup(
    cat: Catalog, bid: str, plant: str, env: str, age_h: float, *, complete: bool = True
) -> None:
    when = NOW - dt.timedelta(hours=age_h)
    cat.create_backup(
        backup_id=bid, plant=plant, env=env, tier="critical", fmt="native",
        store_url="file:///b", location=f"{plant}/{env}/{bid}", started_at=when,
        host="h", pid=1, key_id=None, db_name="odoo",
    )  # fmt: skip
    if complete:
        cat.complete_backup(
            bid, objects=[], manifest={}, row_counts={}, pg_version="16", odoo_version="17.0",
            finished_at=when + dt.timedelta(minutes=5),
        )  # fmt: skip


def _verify(cat: Catalog, bid: str, status: str, age_h: float, rpo: float, rto: float) -> None:
    when = NOW - dt.timedelta(hours=age_h)
    cat.add_verification(
        bid, status=status, started_at=when, finished_at=when + dt.timedelta(minutes=10),
        rto_seconds=rto, rto_objective_seconds=3600, rpo_seconds=rpo, rpo_objective_seconds=300,
        checks={},
    )  # fmt: skip


def _fill(cat: Catalog) -> None:
    # detroit prod: newest backup 2 h old (never verified), the one before (26 h) verified,
    # then a failed verification of the newest
    _backup(cat, "d1", "detroit-stamping", "prod", 26)
    _verify(cat, "d1", "passed", 25, 120.0, 900.0)
    _backup(cat, "d2", "detroit-stamping", "prod", 2)
    _verify(cat, "d2", "failed", 1, 60.0, 1200.0)
    _backup(cat, "d3", "detroit-stamping", "prod", 0.5, complete=False)  # still running
    # lyon prod: one backup, never verified
    _backup(cat, "l1", "lyon-meddev", "prod", 3)


def test_backup_facts_from_a_real_catalog(example: Rendered, catalog: Catalog) -> None:
    _fill(catalog)
    facts = {(f.plant, f.environment): f for f in backup_facts(
        example.deployments, catalog.list_backups(), NOW)}  # fmt: skip
    d = facts[("detroit-stamping", "prod")]
    assert d.newest_age_s == 2 * 3600  # the running backup does not count
    assert d.newest_verified_age_s == 26 * 3600  # age of the data the verified restore holds
    assert d.last_verify_passed is False  # the newest verification failed
    assert (d.last_verify_rpo_s, d.last_verify_rto_s) == (60.0, 1200.0)
    assert (d.rpo_objective_s, d.rto_objective_s) == (5 * 60, 60 * 60)
    # critical: PITR, so a daily base backup, verified each (every) within the RTO
    assert d.verify_objective_s == (1440 + 60) * 60
    lyon = facts[("lyon-meddev", "prod")]
    assert lyon.newest_age_s == 3 * 3600
    assert lyon.newest_verified_age_s is None and lyon.last_verify_passed is None
    porto = facts[("porto-plastics", "prod")]  # no backup at all
    assert porto.newest_age_s is None
    dep = next(x for x in example.deployments if x.namespace == "porto-plastics-prod")
    assert porto.verify_objective_s == verify_objective_seconds(dep) == (240 + 480) * 60 + 7 * 86400
    # one row per plant and stage of the plan
    assert len(facts) == sum(len(x.tenants) for x in example.deployments)


def _plants(example: Rendered) -> list[Any]:
    return list({p.code: p for d in example.deployments for p in d.plants}.values())


def _plant(example: Rendered, code: str) -> Any:
    return next(p for p in _plants(example) if p.code == code)


def test_business_events_in_the_plant_timezone(example: Rendered) -> None:
    detroit = _plant(example, "detroit-stamping")  # America/Detroit, UTC-5 in December
    assert detroit.spec.timezone == "America/Detroit"
    # Thursday 2026-12-03 23:30 local = 04:30 UTC Friday: MRP nightly (23:00, 2 h) runs,
    # the second shift (14:30-23:00) has just ended
    now = dt.datetime(2026, 12, 4, 4, 30, tzinfo=dt.UTC)
    events = {(e.kind, e.event): e for e in plant_events([detroit], now)}
    mrp = events[("mrp-run", "mrp-nightly")]
    assert mrp.active
    assert mrp.last_start == dt.datetime(2026, 12, 4, 4, 0, tzinfo=dt.UTC)
    assert mrp.next_start == dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.UTC)
    second = events[("shift", "second")]
    assert not second.active
    assert second.last_start == dt.datetime(2026, 12, 3, 19, 30, tzinfo=dt.UTC)
    first = events[("shift", "first")]
    assert first.next_start == dt.datetime(2026, 12, 4, 11, 0, tzinfo=dt.UTC)  # Fri 06:00
    close = events[("month-end-close", "month-end-close")]
    assert not close.active
    # last day of November 12:00 local (UTC-5) and for 36 h: the last start
    assert close.last_start == dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)
    assert close.next_start == dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)
    # during the close
    during = {
        (e.kind, e.event): e
        for e in plant_events([detroit], close.next_start + dt.timedelta(hours=30))
    }
    assert during[("month-end-close", "month-end-close")].active
    retool = events[("shutdown", "summer-retooling")]
    assert not retool.active and retool.last_start is None
    assert retool.next_start == dt.datetime(2027, 7, 1, 4, 0, tzinfo=dt.UTC)  # EDT


def test_lyon_night_shift_crosses_midnight(example: Rendered) -> None:
    lyon = _plant(example, "lyon-meddev")  # Europe/Paris, UTC+1 in December
    # Saturday 2026-12-05 03:00 local: Friday's night shift (22:00-06:00) still runs
    now = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)
    night = next(e for e in plant_events([lyon], now) if e.event == "night")
    assert night.active
    assert night.last_start == dt.datetime(2026, 12, 4, 21, 0, tzinfo=dt.UTC)
    # no shift on the weekend: next is Monday 22:00 local
    assert night.next_start == dt.datetime(2026, 12, 7, 21, 0, tzinfo=dt.UTC)


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as resp:
        data = json.load(resp)
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def test_catalog_and_calendar_series_are_scraped_by_a_real_prometheus(
    example: Rendered, catalog: Catalog, tmp_path: Path
) -> None:
    _fill(catalog)
    broken = {"on": False}

    def backups() -> Any:
        if broken["on"]:
            from plantops.errors import InfrastructureError

            raise InfrastructureError("state database: gone")
        return catalog.list_backups()

    sources = Sources(
        deployments=example.deployments,
        backups=backups,
        plants=_plants(example),
        clock=lambda: NOW,
    )
    registry = registry_for(release_rows(example.deployments), None, sources)
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

    def wait_for(promql: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                found = _query(url, promql)
            except OSError:
                continue
            if found:
                return found
        raise AssertionError(f"no result for {promql}")

    try:
        sel = '{plant="detroit-stamping",environment="prod",tier="critical"}'
        (age,) = wait_for(f"plantops_backup_newest_age_seconds{sel}")
        assert float(age["value"][1]) == 7200
        (verified,) = _query(url, f"plantops_backup_newest_verified_age_seconds{sel}")
        assert float(verified["value"][1]) == 26 * 3600
        (ok,) = _query(url, f"plantops_backup_last_verify_success{sel}")
        assert ok["value"][1] == "0"
        (rto,) = _query(url, f"plantops_backup_verify_rto_seconds{sel}")
        assert float(rto["value"][1]) == 1200
        # stale against the objective: the restore-verification SLI's input
        stale = _query(
            url,
            "plantops_backup_newest_verified_age_seconds > on(plant, environment) "
            "group_left plantops_restore_verification_objective_seconds",
        )
        assert {r["metric"]["plant"] for r in stale} == {"detroit-stamping"}
        assert not _query(url, 'plantops_backup_newest_age_seconds{plant="porto-plastics"}')
        (mrp,) = _query(url, 'plantops_plant_event_active{plant="detroit-stamping",kind="mrp-run"}')
        assert mrp["value"][1] == "0"  # 07:00 local
        shifts = _query(url, 'plantops_plant_event_active{plant="detroit-stamping",kind="shift"}')
        assert {r["metric"]["event"]: r["value"][1] for r in shifts} == {
            "first": "1",
            "second": "0",
        }
        (up,) = _query(url, 'plantops_source_up{source="backup_catalog"}')
        assert up["value"][1] == "1"
        broken["on"] = True  # the catalog goes away: the scrape still succeeds, says so
        wait_for('plantops_source_up{source="backup_catalog"} == 0')
        assert _query(url, 'up{job="plantops"} == 1')
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()

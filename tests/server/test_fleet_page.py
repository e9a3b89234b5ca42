"""The fleet page's per-environment status, from what the store records: the newest
probe run (``probe run --state-db`` → ``probe.checked`` events), the newest verified
backup's age against the tier's RPO (the backup catalog) and the open policy findings
(``plantops check`` on the fleet); "—" where nothing is recorded."""

from __future__ import annotations

import datetime as dt
import re
import time

from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.observe.probe import ProbeSettings, ProbeTarget, run_probes
from plantops.services import observe as observe_services
from tests.conftest import EXAMPLE
from tests.observe.odoo_standin import Behaviour, OdooStandIn
from tests.server.conftest import SCOPED, Server

CHECKS = ("health", "version", "dbmanager")


def cells(html: str, code: str) -> dict[str, str]:
    """The environment cells of one plant's row, by environment name."""
    row = html.split(f'<a href="/plants/{code}">', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'<td class="env" data-env="([^"]+)">(.*?)</td>', row, re.S))


def attr(cell: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', cell)
    assert found, (name, cell)
    return found.group(1)


def add_backup(server: Server, backup_id: str, env: str, age: dt.timedelta, verified: bool) -> None:
    catalog = server.app.state.plantops.catalog
    at = dt.datetime.now(dt.UTC) - age
    catalog.create_backup(
        backup_id=backup_id, plant=SCOPED, env=env, tier="standard", fmt="odoo-zip",
        store_url="file:///x", location="x", started_at=at, host="h", pid=1, key_id=None,
        db_name="d",
    )  # fmt: skip
    catalog.complete_backup(
        backup_id, objects=[], manifest={}, row_counts={}, pg_version="16",
        odoo_version="17.0", finished_at=at,
    )  # fmt: skip
    catalog.add_verification(
        backup_id, status="passed" if verified else "failed", started_at=at, finished_at=at,
        rto_seconds=10.0, rto_objective_seconds=3600, rpo_seconds=60, rpo_objective_seconds=900,
        checks={},
    )  # fmt: skip


def test_nothing_recorded_shows_dashes(server: Server) -> None:
    page = server.client.get("/", headers=server.as_role("viewer"))
    assert page.status_code == 200
    got = cells(page.text, SCOPED)
    assert set(got) >= {"dev", "prod"}
    for cell in got.values():
        assert attr(cell, "probe") == "none" and "probe —" in cell
        assert "SLO burn —" in cell
        assert attr(cell, "backup") == "none" and "backup —" in cell


def test_probe_backups_and_findings_from_the_store(server: Server) -> None:
    tier = server.client.get(f"/api/plants/{SCOPED}", headers=server.as_role("viewer")).json()
    tiers = server.app.state.plantops.snapshot.get(dt.datetime.now(dt.UTC).date()).fleet.spec.tiers
    rpo = dt.timedelta(minutes=tiers[tier["tier"]].backup.rpo_minutes)  # the tier's, fleet.yaml
    # a real probe run: prod answers as Odoo does, dev exposes the database manager
    with OdooStandIn() as good, OdooStandIn(Behaviour(dbmanager_exposed=True)) as bad:
        run = run_probes(
            [
                ProbeTarget("p", good.url, "acme", "17.0", plant=SCOPED, environment="prod"),
                ProbeTarget("d", bad.url, "acme", "17.0", plant=SCOPED, environment="dev"),
                ProbeTarget("u", good.url),  # no plant: not recorded
            ],
            ProbeSettings(retries=0, checks=CHECKS),
        )
    assert observe_services.record_probe_run(run, server.settings.db_url) == 2
    add_backup(server, "fresh", "prod", rpo / 2, verified=True)
    add_backup(server, "newer-unverified", "prod", dt.timedelta(0), verified=False)
    add_backup(server, "old", "dev", rpo * 3, verified=True)
    auditor = server.as_role("auditor")
    policy = server.client.get("/api/policy", headers=auditor).json()  # computes the check
    mine = [f for f in policy["findings"] if f["plant"] == SCOPED]

    page = server.client.get("/", headers=auditor)
    assert page.status_code == 200
    got = cells(page.text, SCOPED)
    assert attr(got["prod"], "probe") == "pass" and "probe pass" in got["prod"]
    assert attr(got["dev"], "probe") == "fail" and 'title="failed: dbmanager"' in got["dev"]
    # the SLO burn of the one recorded run (tests/server/test_slo_pages.py for the numbers)
    assert attr(got["prod"], "slo") == "ok" and ">1h 0× · 6h 0× · ok</span>" in got["prod"]
    assert attr(got["dev"], "slo") == "exhausted"  # one run, and it failed
    assert attr(got["prod"], "backup") == "ok"  # the verified one, not the newer failed one
    assert attr(got["dev"], "backup") == "late"
    assert "/ RPO " in got["dev"]
    assert attr(got.get("test", 'data-backup="none"'), "backup") == "none"
    for env, cell in got.items():
        want = sum(1 for f in mine if f["environment"] == env)
        assert attr(cell, "findings") == str(want), env
    row = page.text.split(f'<a href="/plants/{SCOPED}">', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="num" data-findings="{len(mine)}">' in row


def test_a_probe_state_change_is_its_own_event(server: Server) -> None:
    """probe.changed when a deployment goes from pass to fail or back (or its first
    recorded run fails); a run that keeps the state records probe.checked only."""

    def probe(ok: bool) -> None:
        behaviour = Behaviour() if ok else Behaviour(dbmanager_exposed=True)
        with OdooStandIn(behaviour) as odoo:
            run = run_probes(
                [ProbeTarget("p", odoo.url, "acme", "17.0", plant=SCOPED, environment="prod")],
                ProbeSettings(retries=0, checks=CHECKS),
            )
        assert run.ok is ok
        assert observe_services.record_probe_run(run, server.settings.db_url) == 1

    def changes() -> list[tuple[bool | None, bool]]:
        events = server.client.get("/api/events", headers=server.as_role("auditor")).json()
        return [
            (e["data"]["was"], e["data"]["ok"])
            for e in events["items"]
            if e["type"] == "probe.changed"
        ]

    probe(True)  # a first run that passes: no change to report
    assert changes() == []
    probe(True)
    probe(False)
    probe(False)
    probe(True)
    assert changes() == [(True, False), (False, True)]


def test_findings_are_computed_in_the_background(server: Server) -> None:
    h = server.as_role("viewer")
    first = server.client.get("/", headers=h).text
    assert "policy findings are being computed" in first
    assert attr(cells(first, SCOPED)["prod"], "findings") == ""
    deadline = time.monotonic() + 120
    while "policy findings are being computed" in server.client.get("/", headers=h).text:
        assert time.monotonic() < deadline, "the policy check did not finish in 120 s"
        time.sleep(0.5)
    assert attr(cells(server.client.get("/", headers=h).text, SCOPED)["prod"], "findings") != ""


def test_probe_run_cli_records_what_the_page_shows(server: Server) -> None:
    """``plantops probe run --fleet … --state-db`` against the example fleet's hosts (under
    the reserved ``.example`` domain, so the name does not resolve): a failed health check,
    recorded, and the page says FAIL for that environment only."""
    res = CliRunner().invoke(
        app,
        ["probe", "run", "--fleet", str(EXAMPLE), "--plant", SCOPED, "--env", "prod",
         "--check", "health", "--retries", "0", "--timeout", "2",
         "--state-db", server.settings.db_url],
    )  # fmt: skip
    assert res.exit_code == 1, res.output  # the check failed, and says so
    got = cells(server.client.get("/", headers=server.as_role("viewer")).text, SCOPED)
    assert attr(got["prod"], "probe") == "fail" and 'title="failed: health"' in got["prod"]
    assert attr(got["dev"], "probe") == "none"

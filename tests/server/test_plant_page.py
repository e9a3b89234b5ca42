"""The plant page's release history (the ledger's promotions, break-glass and rollbacks
naming the plant), its next allowed window per stage in the plant's timezone (the
``windows`` gate of ``plantops promote``) and its open policy findings (the fleet
page's background ``plantops check``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plantops.release.windows import evaluate_windows
from plantops.server import ServerSettings, pages, views
from plantops.services import open_fleet
from plantops.services import release as release_services
from tests.addons.test_addons import addon
from tests.release.fleet import release_fleet
from tests.server.conftest import OTHER, SCOPED, Server
from tests.server.test_releases import create, promote, subject

# A Wednesday: the example fleet's prod stage allows promotions on weekends only.
WEDNESDAY = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)
DETROIT = "detroit-stamping"  # America/Detroit: a negative offset from UTC
SHARED = "shared-eu-subsidiaries"  # the shared deployment unit SCOPED runs in
HOSTILE_RULE = f"""
  - id: ACME-900
    severity: low
    message: "<b>web</b> pods carry a cost-centre label"
    match:
      kinds: [Deployment]
      labels: {{plantops.io/plant: {SHARED}, app.kubernetes.io/component: web}}
    expression: "false"
"""


@pytest.fixture
def server_fleet(tmp_path: Path) -> Path:
    fleet = release_fleet(tmp_path)  # promotions write pins into the fleet: a copy
    addon(fleet / "addons", "acme_mrp", depends=["mrp"])
    # a policy rule that fails for the web pods of the shared deployment SCOPED runs in
    # (the example fleet has no open findings), with markup in its message
    with (fleet / "policies" / "acme.yaml").open("a", encoding="utf-8") as fh:
        fh.write(HOSTILE_RULE)
    return fleet


@pytest.fixture
def server_settings(
    server_settings: ServerSettings, request: pytest.FixtureRequest
) -> ServerSettings:
    """The background ``plantops check`` only where a test waits for it (it renders the
    whole fleet: other tests would leave it running on a removed tmp dir)."""
    wanted = request.node.name == "test_findings_pending_then_the_plant_s_findings"
    return dataclasses.replace(server_settings, background_policy=wanted)


def section(page: str, start: str, end: str = "<h2>") -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def history_rows(page: str, stage: str) -> list[dict[str, str]]:
    """(seq, kind, cells) of the history table of one stage, top to bottom."""
    found = re.search(rf'<table class="history" data-stage="{stage}">(.*?)</table>', page, re.S)
    if found is None:
        return []
    rows = []
    for seq, kind, body in re.findall(
        r'<tr data-seq="(\d+)" data-kind="([^"]+)">(.*?)</tr>', found.group(1), re.S
    ):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        ]
        rows.append({"seq": seq, "kind": kind, "release": cells[1], "wave": cells[2],
                     "actor": cells[3], "at": cells[4], "note": cells[6]})  # fmt: skip
    return rows


def promote_every_wave(server: Server, release: str, stage: str) -> list[dict[str, Any]]:
    done = []
    for _ in range(10):
        r = promote(server, release, "release-manager", stage=stage)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        if not doc["promoted"]:
            break
        done.append(doc)
    return done


def test_a_promotion_and_a_rollback_show_newest_first(server: Server) -> None:
    made = create(server, "platform-engineer")
    waves = promote_every_wave(server, made["id"], "dev")
    doc = next(d for d in waves if SCOPED in d["promoted"])
    seq = doc["ledger"][-1]
    viewer = server.as_role("viewer")
    page = server.client.get(f"/plants/{SCOPED}", headers=viewer)
    assert page.status_code == 200, page.text
    rows = history_rows(page.text, "dev")
    assert [(r["seq"], r["kind"]) for r in rows] == [(str(seq), "promotion")]
    short = made["id"].removeprefix("sha256:")[:12]
    row = rows[0]
    assert row["release"] == short and row["wave"] == str(doc["wave"])
    assert row["actor"] == subject(server, "release-manager")
    assert dt.datetime.fromisoformat(row["at"]).tzinfo is not None
    # the other stages have nothing yet; another plant's wave is not listed here
    assert history_rows(page.text, "prod") == []
    assert f"No promotion of {SCOPED} to prod in the ledger." in page.text
    others = [e for d in waves if SCOPED not in d["promoted"] for e in d["ledger"]]
    assert others and not {str(s) for s in others} & {r["seq"] for r in rows}

    # a rollback naming the plant (payload.plant), with hostile text: newest first, escaped
    reason = '<script>alert("x")</script> bad MRP run'
    rollback = release_services.record_rollback(
        plant=SCOPED, env="dev", from_release=made["id"], to_release=None, actor="ops@acme",
        reason=reason, database_action="keep", db=server.settings.db_url,
        now=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    page = server.client.get(f"/plants/{SCOPED}", headers=viewer).text
    rows = history_rows(page, "dev")
    assert [(r["seq"], r["kind"]) for r in rows] == [
        (str(rollback.seq), "rollback"),
        (str(seq), "promotion"),
    ]
    assert rows[0]["actor"] == "ops@acme" and reason in rows[0]["note"]
    assert "<script>" not in page and "&lt;script&gt;" in page
    # the rollback of this plant is not on another plant's page
    other = server.client.get(f"/plants/{DETROIT}", headers=viewer).text
    assert str(rollback.seq) not in {r["seq"] for r in history_rows(other, "dev")}


def test_a_plant_it_sees_the_history_of_its_plants_only(server: Server) -> None:
    made = create(server, "platform-engineer")
    waves = promote_every_wave(server, made["id"], "dev")
    promoted = {p for d in waves for p in d["promoted"]}
    assert {SCOPED, OTHER} <= promoted, promoted
    it = server.as_role("plant-it")
    mine = server.client.get(f"/plants/{SCOPED}", headers=it)
    assert mine.status_code == 200
    assert len(history_rows(mine.text, "dev")) == 1
    # another plant's page: shown as before (read access), its ledger entries are not
    theirs = server.client.get(f"/plants/{OTHER}", headers=it)
    assert theirs.status_code == 200
    assert 'id="history-scope"' in theirs.text and 'class="history"' not in theirs.text
    assert 'id="windows"' in theirs.text  # the fleet's calendar is no secret
    auditor = server.client.get(f"/plants/{OTHER}", headers=server.as_role("auditor")).text
    assert len(history_rows(auditor, "dev")) == 1
    # unknown plant: 404, as before
    assert server.client.get("/plants/nowhere", headers=it).status_code == 404


def test_next_allowed_window_in_the_plant_s_timezone(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "utcnow", lambda: WEDNESDAY)
    page = server.client.get(f"/plants/{DETROIT}", headers=server.as_role("viewer"))
    assert page.status_code == 200, page.text
    table = section(page.text, '<table id="windows">', "</table>")
    states = dict(re.findall(r'<tr data-stage="([^"]+)" data-state="([^"]+)"', table))
    # example fleet.yaml: only prod has the windows gate (weekend windows)
    assert states == {"dev": "no-rule", "test": "no-rule", "staging": "no-rule", "prod": "later"}
    assert "no window rule for this stage" in table
    prod = re.search(r'<tr data-stage="prod"[^>]*data-local="([^"]+)" data-utc="([^"]+)"', table)
    assert prod, table
    local, utc = dt.datetime.fromisoformat(prod[1]), dt.datetime.fromisoformat(prod[2])
    zone = ZoneInfo("America/Detroit")
    assert local == utc and local.utcoffset() == zone.utcoffset(utc.replace(tzinfo=None))
    assert local.utcoffset() == dt.timedelta(hours=-5)  # EST in December
    assert local.strftime("%a") in ("Sat", "Sun") and utc > WEDNESDAY
    shown = local.strftime("%Y-%m-%d %H:%M")
    assert f"{shown} EST" in table
    # it is the windows gate's own next instant: allowed there, blocked just before
    fleet = open_fleet(server.settings.fleet, today=WEDNESDAY.date()).fleet
    spec = next(p.spec for p in fleet.plants if p.spec.code == DETROIT)
    cfg = fleet.spec.releases.stages["prod"]
    margin = fleet.spec.releases.shift_change_margin_minutes

    def allowed(at: dt.datetime) -> bool:
        return evaluate_windows(
            spec.timezone, spec.shifts, spec.freeze_windows, cfg.windows, margin, at
        ).ok

    assert allowed(utc) and not allowed(utc - dt.timedelta(seconds=1))
    assert not allowed(WEDNESDAY)


def test_the_window_is_now_inside_the_weekend(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = open_fleet(server.settings.fleet, today=WEDNESDAY.date()).fleet
    windows = release_services.plant_windows(fleet, DETROIT, now=WEDNESDAY)
    nxt = next(w for w in windows if w.stage == "prod").next_allowed
    assert nxt is not None
    monkeypatch.setattr(pages, "utcnow", lambda: nxt + dt.timedelta(seconds=1))
    page = server.client.get(f"/plants/{DETROIT}", headers=server.as_role("viewer")).text
    table = section(page, '<table id="windows">', "</table>")
    assert re.search(
        r'<tr data-stage="prod" data-state="now">\s*<td>prod</td>\s*<td>now</td>', table
    )
    assert "America/Detroit: open" in table


def test_findings_pending_then_the_plant_s_findings(server: Server) -> None:
    h = server.as_role("viewer")
    first = server.client.get(f"/plants/{SCOPED}", headers=h).text
    assert 'id="findings-pending"' in first and "being computed" in first
    assert 'id="findings"' not in first
    policy = server.client.get("/api/policy", headers=h).json()  # computes the check
    deadline = time.monotonic() + 120
    while 'id="findings-pending"' in server.client.get(f"/plants/{SCOPED}", headers=h).text:
        assert time.monotonic() < deadline, "the policy check did not finish in 120 s"
        time.sleep(0.2)
    # a shared deployment's objects are labelled with its unit: its findings are SCOPED's
    mine = [f for f in policy["findings"] if f["plant"] == SHARED]
    assert {f["rule"] for f in policy["findings"]} == {"ACME-900"} and len(mine) >= 2, mine
    page = server.client.get(f"/plants/{SCOPED}", headers=h).text
    table = section(page, '<table id="findings">', "</table>")
    got = sorted(re.findall(r'<tr data-rule="([^"]+)" data-env="([^"]+)">', table))
    assert got == sorted((f["rule"], f["environment"]) for f in mine)
    assert ">low<" in table and f"{mine[0]['kind']}/" in table
    assert f"(shared deployment {SHARED})" in table
    assert "<b>web</b>" not in page and "&lt;b&gt;web&lt;/b&gt; pods" in page
    # the policy result is an event (feed and webhooks): counts per unit and environment
    events = server.client.get("/api/events", headers=server.as_role("auditor")).json()["items"]
    checked = [e for e in events if e["type"] == "policy.checked"]
    assert checked, [e["type"] for e in events]
    data = checked[-1]["data"]
    assert data["findings"] == len(policy["findings"]) and data["ok"] is policy["ok"]
    shared = data["units"][SHARED]
    assert sum(c["open"] for c in shared.values()) == len(mine)
    # the fleet page counts them for SCOPED too (its row's total column)
    fleet = server.client.get(f"/?q={SCOPED}", headers=h).text
    row = fleet.split(f'<a href="/plants/{SCOPED}">', 1)[1].split("</tr>", 1)[0]
    total = re.findall(r'<td class="num" data-findings="(\d*)">', row)
    assert total == [str(len(mine))], row
    # another plant: none of them
    other = server.client.get(f"/plants/{OTHER}", headers=h).text
    assert 'id="findings-none"' in other and "ACME-900" not in other


def test_no_window_within_the_horizon_says_so(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prod allowed on 29 February only: nothing within the gate's search horizon."""
    path = server.settings.fleet / "fleet.yaml"
    text = path.read_text(encoding="utf-8")
    weekend = '{name: weekend, rrule: "FREQ=WEEKLY;BYDAY=SA,SU", at: "00:00", duration_hours: 24}'
    assert weekend in text
    leap = '{name: leap-day, rrule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", at: "00:00", duration_hours: 24}'
    path.write_text(text.replace(weekend, leap), encoding="utf-8")
    time.sleep(2.1)  # the snapshot rechecks the fleet's files every 2 s
    monkeypatch.setattr(pages, "utcnow", lambda: WEDNESDAY)
    page = server.client.get(f"/plants/{DETROIT}", headers=server.as_role("viewer")).text
    table = section(page, '<table id="windows">', "</table>")
    assert '<tr data-stage="prod" data-state="none">' in table
    assert "none within the search horizon" in table and "(leap-day)" in table


def test_plant_history_is_newest_first_and_counts_all(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/ledger.db"
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    seqs = []
    for i, plant in enumerate([SCOPED, OTHER, SCOPED, SCOPED]):
        entry = release_services.record_rollback(
            plant=plant, env="prod", from_release=f"sha256:{i:064x}", to_release=None,
            actor="ops", reason=f"rollback {i}", database_action="keep", db=db,
            now=now + dt.timedelta(minutes=i),
        )  # fmt: skip
        if plant == SCOPED:
            seqs.append(entry.seq)
    newest, total = release_services.plant_history(db, SCOPED, limit=2)
    assert [e.seq for e in newest] == seqs[::-1][:2] and total == 3
    assert release_services.plant_history(db, "nowhere") == ([], 0)


def test_the_page_says_when_it_shows_only_the_newest(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "HISTORY_LIMIT", 1)
    for i in range(2):
        release_services.record_rollback(
            plant=SCOPED, env="prod", from_release=f"sha256:{i:064x}", to_release=None,
            actor="ops", reason=f"rollback {i}", database_action="keep",
            db=server.settings.db_url, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    page = server.client.get(f"/plants/{SCOPED}", headers=server.as_role("viewer")).text
    assert f"The newest 1 of 2 ledger entries naming {SCOPED}" in page
    assert [r["note"] for r in history_rows(page, "prod")] == ["to —: rollback 1"]


def test_the_api_gives_what_the_page_shows(server: Server) -> None:
    """GET /api/plants/{code}/status: history, windows, findings and SLOs as data."""
    made = create(server, "platform-engineer")
    r = promote(server, made["id"], "release-manager", stage="dev")
    assert r.status_code == 200 and r.json()["promoted"], r.text
    first = r.json()["promoted"][0]  # wave 1 of dev
    h = server.as_role("viewer")
    doc = server.client.get(f"/api/plants/{first}/status", headers=h).json()
    assert doc["code"] == first
    dev = dict(doc["history"]["stages"])["dev"]
    assert [(e["kind"], e["release"]) for e in dev] == [("promotion", made["id"])]
    assert {w["stage"] for w in doc["windows"]} == {"dev", "test", "staging", "prod"}
    assert doc["findings"] is None  # the background check is off in this test
    assert doc["slos"] == []  # no probe run recorded
    # a plant-it outside its plants: no history; an unknown plant: 404 problem
    assert first != SCOPED
    outside = server.client.get(f"/api/plants/{first}/status", headers=server.as_role("plant-it"))
    assert outside.status_code == 200 and outside.json()["history"] is None
    missing = server.client.get("/api/plants/nowhere/status", headers=h)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

"""SLO burn on the fleet page and the error-budget charts on the plant page, from the
``probe.checked`` events the store records: the same numbers as ``plantops slo report
--probe-results`` over the same probe runs written as result files."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from plantops.observe.sloreport import PROBE_SCHEMA
from plantops.server import ServerSettings
from plantops.services import observe as observe_services
from tests.conftest import EXAMPLE
from tests.server.conftest import SCOPED, Server
from tests.server.test_fleet_page import attr, cells

POOLMATE = "gdansk-packaging"  # shares brno-components' pooled deployments
STEP = dt.timedelta(minutes=30)
RUNS = 480  # ten days of runs every 30 minutes
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def server_settings(server_settings: ServerSettings) -> ServerSettings:
    """No background policy check: these pages' findings are not under test."""
    return replace(server_settings, background_policy=False)


def offset(k: int) -> dt.timedelta:
    return dt.timedelta(minutes=10) + k * STEP  # never within 5 minutes of a window edge


def failing(plant: str, env: str, k: int) -> bool:
    if plant != SCOPED:
        return False
    if env == "prod":
        return k == 0  # the newest run failed: 1h and 6h burn fast, budget mostly left
    if env == "dev":
        return k == 240  # one failure five days ago: the budget took it, nothing burns now
    if env == "staging":
        return k in (300, 310, 320)  # three failures six days ago: more than the budget
    return False


RECORDED = [(SCOPED, "prod"), (SCOPED, "dev"), (SCOPED, "staging"), (POOLMATE, "prod")]


def record(server: Server, now: dt.datetime, tmp: Path) -> list[Path]:
    """The runs as events in the store and as ``probe run --out`` files."""
    store = server.app.state.plantops.store
    files = []
    for k in range(RUNS):
        at = now - offset(k)
        targets = []
        for plant, env in RECORDED:
            bad = failing(plant, env, k)
            store.append_event(
                "probe.checked", plant=plant, subject=env, actor="test",
                data={"ok": not bad, "failed": ["health"] if bad else [], "target": plant},
                now=at,
            )  # fmt: skip
            targets.append(
                {"plant": plant, "environment": env,
                 "checks": [{"check": "health", "status": "fail" if bad else "pass"}]}
            )  # fmt: skip
        path = tmp / f"run-{k:03d}.json"
        path.write_text(
            json.dumps({"schema": PROBE_SCHEMA, "started_at": at.isoformat(), "targets": targets})
        )
        files.append(path)
    # older than the 30-day window: not counted
    store.append_event(
        "probe.checked", plant=SCOPED, subject="dev", data={"ok": False},
        now=now - dt.timedelta(days=31),
    )  # fmt: skip
    return files


def test_fleet_and_plant_pages_show_the_slo_report_numbers(server: Server, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    files = record(server, now, tmp_path)
    report = observe_services.slo_report(
        EXAMPLE, prometheus=None, probe_results=files, window="30d", at=now,
        slos=("probe",), plants=(SCOPED,),
    )  # fmt: skip
    want = {(r.plant, r.environment): r for r in report.rows if r.plant}
    assert set(want) == set(RECORDED)
    assert {k: r.status for k, r in want.items()} == {
        (SCOPED, "prod"): "page",
        (SCOPED, "dev"): "ok",
        (SCOPED, "staging"): "exhausted",
        (POOLMATE, "prod"): "ok",
    }

    h = server.as_role("viewer")
    fleet = server.client.get("/", headers=h)
    assert fleet.status_code == 200
    for plant in (SCOPED, POOLMATE):
        got = cells(fleet.text, plant)
        for env, cell in got.items():
            row = want.get((plant, env))
            if row is None:
                assert "SLO burn —" in cell and "data-slo" not in cell, (plant, env)
                continue
            assert attr(cell, "slo") == row.status, (plant, env)
            burn = {w: round(v, 2) for w, v in row.burn_rates.items()}
            shown = " · ".join(f"{w} {burn[w]:g}×" for w in ("1h", "6h") if w in burn)
            assert f">{shown} · {row.status}</span>" in cell, (plant, env, cell)
            budget = round((row.budget_remaining or 0) * 100, 1)
            assert f"budget left {budget} %" in cell and f"over {RUNS} run(s)" in cell
    assert ">1h 100× · 6h 16.67× · page</span>" in cells(fleet.text, SCOPED)["prod"]

    page = server.client.get(f"/plants/{SCOPED}", headers=h)
    assert page.status_code == 200
    html = page.text
    assert html.index("<h2>Backups</h2>") < html.index('<h2 id="slos">SLOs</h2>')
    table = html.split('<table id="slo-table">', 1)[1].split("</table>", 1)[0]
    rows = dict(re.findall(r'<tr data-env="([^"]+)" data-slo="([^"]+)">', table))
    assert rows == {env: want[(SCOPED, env)].status for env in ("dev", "staging", "prod")}
    for env in ("dev", "staging", "prod"):
        r = want[(SCOPED, env)]
        line = table.split(f'<tr data-env="{env}"', 1)[1].split("</tr>", 1)[0]
        assert (
            f"{(r.sli or 0):.4f} %" in line and f"{(r.budget_remaining or 0) * 100:.1f} %" in line
        )
        figure = html.split(f'<figure class="slo-chart" data-env="{env}">', 1)[1]
        svg = ET.fromstring(figure.split("</figure>", 1)[0])  # well-formed XML
        assert svg.tag == f"{SVG}svg"
        days = svg.findall(f"{SVG}rect[@class='day']")
        assert len(days) == 30
        assert days[-1].get("data-day") == now.date().isoformat()
        assert days[-1].get("data-remaining") == f"{(r.budget_remaining or 0) * 100:.1f}"
        assert days[0].get("data-remaining") == ""  # the runs began ten days ago
        assert svg.find(f"{SVG}polyline") is not None
    staging = html.split('<figure class="slo-chart" data-env="staging">', 1)[1]
    values = [
        float(v)
        for v in re.findall(r'data-remaining="(-?[0-9.]+)"', staging.split("</figure>", 1)[0])
    ]
    assert values[0] == 100.0 and values[-1] < 0  # spent six days ago, overspent since
    assert 'data-env="test"' not in table


def test_plant_page_without_probe_runs(server: Server) -> None:
    page = server.client.get(f"/plants/{SCOPED}", headers=server.as_role("viewer"))
    assert page.status_code == 200
    assert "No probe runs recorded for this plant" in page.text
    assert 'class="slo-chart"' not in page.text


def test_fleet_page_counts_the_window_in_one_query(server: Server) -> None:
    """However many plants and runs: one grouped statement over ``probe.checked``."""
    from sqlalchemy import event

    store = server.app.state.plantops.store
    now = dt.datetime.now(dt.UTC)
    for k in range(5):
        for plant, env in RECORDED:
            store.append_event(
                "probe.checked", plant=plant, subject=env,
                data={"ok": not (plant == SCOPED and k == 1)},
                now=now - offset(k),
            )  # fmt: skip
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if "FROM events" in statement and "sum(" in statement.lower():
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        page = server.client.get("/", headers=server.as_role("viewer"))
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    assert page.status_code == 200
    assert len(seen) == 1, seen
    assert "GROUP BY events.plant, events.subject" in seen[0]
    assert attr(cells(page.text, POOLMATE)["prod"], "slo") == "ok"
    assert attr(cells(page.text, SCOPED)["prod"], "slo") == "exhausted"  # 1 of 5 runs failed


def test_budget_chart_is_deterministic_escaped_xml() -> None:
    from plantops.server.svg import budget_chart

    points = [("d1", None), ("d2", 100.0), ("d<3>", 40.0), ("d4", -25.5)]
    svg = budget_chart(points, title='prod & "dev" <budget>')
    assert svg == budget_chart(points, title='prod & "dev" <budget>')
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == 'prod & "dev" <budget>'
    days = root.findall(f"{SVG}rect[@class='day']")
    assert [d.get("data-day") for d in days] == ["d1", "d2", "d<3>", "d4"]
    assert [d.get("data-remaining") for d in days] == ["", "100.0", "40.0", "-25.5"]
    assert [d.get("fill") for d in days[1:]] == ["#2f7d32", "#2f7d32", "#b3261e"]
    line = root.find(f"{SVG}polyline")
    assert line is not None and len((line.get("points") or "").split()) == 3  # not for d1
    assert ET.fromstring(budget_chart([], title="empty")).find(f"{SVG}polyline") is None

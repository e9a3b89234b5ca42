"""The JSON API over the example fleet: data from the use cases, errors as problem+json."""

from __future__ import annotations

from typing import Any

import pytest

from plantops import services
from plantops.services import fleetview
from tests.conftest import EXAMPLE
from tests.server.conftest import SCOPED, Server

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["detail"]
    return body


def test_fleet_matches_the_use_case(server: Server) -> None:
    h = server.as_role("viewer")
    body = server.client.get("/api/fleet", headers=h).json()
    snap = fleetview.fleet_snapshot(EXAMPLE, today=__import__("datetime").date.today())
    assert body["plants"] == len(snap.fleet.plants) == 9
    assert body["deployments"] == len(snap.plan.deployments)
    assert body["monthly_cost"] == round(snap.cost.total_month, 2)
    plants = server.client.get("/api/plants?limit=1000", headers=h).json()
    assert plants["total"] == 9
    by_code = {c.plant: c for c in snap.plan.classifications}
    for row in plants["items"]:
        assert row["tier"] == by_code[row["code"]].tier
        assert row["pattern"] == by_code[row["code"]].pattern
        assert row["monthly_cost"] == round(snap.cost.for_plant(row["code"]), 2)


def test_filter_search_and_page(server: Server) -> None:
    h = server.as_role("viewer")
    every = server.client.get("/api/plants?limit=1000", headers=h).json()["items"]
    critical = server.client.get("/api/plants?tier=critical", headers=h).json()
    assert critical["total"] == sum(1 for r in every if r["tier"] == "critical") > 0
    assert server.client.get("/api/plants?q=BRNO", headers=h).json()["items"][0]["code"] == SCOPED
    page = server.client.get("/api/plants?offset=2&limit=3", headers=h).json()
    assert [r["code"] for r in page["items"]] == [r["code"] for r in every[2:5]]


def test_plant_classification_deployments_cost_plan(server: Server) -> None:
    h = server.as_role("auditor")
    detail = server.client.get(f"/api/plants/{SCOPED}", headers=h).json()
    assert detail["reasons"] and all(r["rule"] for r in detail["reasons"])
    assert {d["environment"] for d in detail["deployments"]} == set(detail["environments"])
    reasons = server.client.get(f"/api/plants/{SCOPED}/classification", headers=h).json()
    assert reasons["reasons"] == detail["reasons"]
    deps = server.client.get(f"/api/deployments?plant={SCOPED}", headers=h).json()
    assert deps["total"] == len(detail["deployments"])
    plan = server.client.get("/api/plan", headers=h).json()
    assert sum(plan["by"]["pattern"].values()) == plan["deployments"]
    cost = server.client.get("/api/cost?by=env", headers=h).json()
    assert abs(sum(cost["items"].values()) - cost["total_month"]) < 0.1


def test_policy_findings_come_from_check(server: Server) -> None:
    body = server.client.get("/api/policy", headers=server.as_role("viewer")).json()
    result = services.check_target(EXAMPLE, today=__import__("datetime").date.today())
    assert body["ok"] == result.ok
    assert len(body["findings"]) == len(result.findings)
    assert body["objects"] == result.objects > 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nothing-here", 404),
        ("DELETE", "/api/fleet", 405),
        ("GET", "/api/plants/no-such-plant", 404),
        ("GET", "/api/deployments?plant=no-such-plant", 404),
        ("GET", "/api/plants?limit=0", 422),
        ("GET", "/api/cost?by=moon", 422),
        ("GET", "/api/events?after=-1", 422),
    ],
)
def test_errors_are_problem_json(server: Server, method: str, path: str, status: int) -> None:
    r = server.client.request(method, path, headers=server.as_role("viewer"))
    body = assert_problem(r, status)
    assert body["instance"] == path.split("?")[0]


def test_bad_bodies(server: Server) -> None:
    h = {**server.as_role("platform-engineer"), "content-type": "application/json"}
    assert_problem(server.client.post("/api/plan", headers=h, content=b"{not json"), 422)
    assert_problem(server.client.post("/api/plan", headers=h, json={"plants": "x"}), 422)
    assert_problem(server.client.post("/api/plan", headers=h, json={"surprise": 1}), 422)
    body = assert_problem(
        server.client.post("/api/plan", headers=h, json={"plants": ["nope"]}), 404
    )
    assert "nope" in body["detail"]
    big = b'{"plants": [' + b'"x",' * 400_000 + b'"x"]}'
    assert_problem(server.client.post("/api/plan", headers=h, content=big), 413)
    assert not server.settings.out.exists()  # nothing half-written
    assert (
        server.client.get("/api/events", headers=h).json()["items"][-1]["type"] == "token.created"
    )


def test_unhandled_error_leaks_nothing(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "canary-secret-3f9a"

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError(f"password={canary} at /etc/plantops")

    monkeypatch.setattr(server.app.state.plantops.snapshot, "compute", boom)
    monkeypatch.setattr(server.app.state.plantops.snapshot, "_value", None)
    r = server.client.get("/api/fleet", headers=server.as_role("viewer"))
    body = assert_problem(r, 500)
    assert canary not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert body["detail"] == "internal error; see the server log"


def test_openapi_lists_the_routes(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    for path in ("/api/fleet", "/api/plants", "/api/plants/{code}", "/api/plan", "/api/cost",
                 "/api/policy", "/api/backups", "/api/releases", "/api/events", "/events",
                 "/api/tokens", "/api/releases/{release_id}",
                 "/api/releases/{release_id}/approvals", "/api/ledger",
                 "/api/ledger/verify"):  # fmt: skip
        assert path in doc["paths"], path


def test_plan_writes_and_records_an_event(server: Server) -> None:
    h = server.as_role("platform-engineer")
    r = server.client.post("/api/plan", headers=h, json={"plants": [SCOPED]})
    assert r.status_code == 200, r.text
    assert r.json()["written"] > 0
    assert (server.settings.out / "argocd").exists() or any(server.settings.out.iterdir())
    last = server.client.get("/api/events", headers=h).json()["items"][-1]
    assert (last["type"], last["plant"]) == ("plan.written", SCOPED)
    assert last["actor"].startswith("token:")

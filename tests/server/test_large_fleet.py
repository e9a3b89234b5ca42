"""A 1,000-plant fleet stays usable: the overview is paginated (50 rows a page), filter
and search work across all plants, and a page renders in bounded time once the
snapshot is built (it is cached until the fleet changes)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from benchmarks.plan_fleet import generate_fleet
from fastapi.testclient import TestClient

from plantops.server import ServerSettings, create_app
from tests.server.conftest import make_tokens

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("big")
    fleet = generate_fleet(tmp / "fleet", 1000)
    db = f"sqlite:///{tmp}/state.db"
    # no background `plantops check` of 1,000 plants (minutes of CPU after the test)
    settings = ServerSettings(
        fleet=fleet, db_url=db, out=tmp / "out", session_secret="s", background_policy=False
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client, {"Authorization": f"Bearer {make_tokens(db)['viewer']}"}


def test_thousand_plants_paginated_and_fast(big: tuple[TestClient, dict[str, str]]) -> None:
    client, h = big
    first = client.get("/", headers=h)  # builds the snapshot
    assert first.status_code == 200
    assert "1000 plant(s) match · page 1 of 20" in first.text
    assert first.text.count('<tr><td><a href="/plants/') == 50
    assert "policy findings are not computed yet" in first.text  # "—" until GET /api/policy
    timings = []
    for page in (1, 2, 20):
        started = time.perf_counter()
        r = client.get(f"/?page={page}", headers=h)
        timings.append(time.perf_counter() - started)
        assert r.status_code == 200
        render = float(re.search(r"render;dur=([\d.]+)", r.headers["server-timing"]).group(1))  # type: ignore[union-attr]
        assert render < 500, render
    assert max(timings) < 2.0, timings  # a loaded 2-core machine: generous, still usable
    body = client.get("/api/plants?limit=1000", headers=h).json()
    assert body["total"] == 1000
    code = body["items"][500]["code"]
    found = client.get(f"/?q={code}", headers=h)
    assert f'href="/plants/{code}"' in found.text
    tier = body["items"][0]["tier"]
    filtered = client.get(f"/api/plants?tier={tier}&limit=1000", headers=h).json()
    assert filtered["total"] == sum(1 for r in body["items"] if r["tier"] == tier)

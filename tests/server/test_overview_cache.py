"""The fleet overview (GET /api/plants) sends cached bytes per snapshot and request key;
the token is still checked against the database on every request."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from plantops.server import state as server_state
from plantops.server.state import AnswerCache
from tests.server.conftest import OTHER, SCOPED, Server


@pytest.fixture
def server_fleet(fleet_copy: Path) -> Path:
    return fleet_copy  # a copy the tests may edit


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_repeat_request_is_the_same_bytes_from_one_entry(server: Server) -> None:
    answers = server.app.state.plantops.answers
    h = server.as_role("viewer")
    first = server.client.get("/api/plants?limit=3", headers=h)
    again = server.client.get("/api/plants?limit=3", headers=h)
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.content == again.content and len(answers) == 1
    body = first.json()
    assert body["total"] == 9 and body["offset"] == 0 and len(body["items"]) == 3
    # another query is another entry, with its own answer
    page = server.client.get("/api/plants?limit=3&offset=3", headers=h).json()
    assert len(answers) == 2
    assert {r["code"] for r in page["items"]}.isdisjoint(r["code"] for r in body["items"])


def test_the_key_carries_the_callers_plant_scope(server: Server) -> None:
    answers = server.app.state.plantops.answers
    store = server.app.state.plantops.store
    now = dt.datetime.now(dt.UTC)
    other_it, _ = store.create_token(role="plant-it", plants=[OTHER], now=now)
    bodies = {
        who: server.client.get("/api/plants", headers=h).content
        for who, h in (
            ("viewer", server.as_role("viewer")),
            ("auditor", server.as_role("auditor")),  # sees every plant too: the same entry
            ("plant-it", server.as_role("plant-it")),  # scoped to SCOPED
            ("other plant-it", bearer(other_it)),  # scoped to OTHER
        )
    }
    assert len(answers) == 3  # every plant; SCOPED's scope; OTHER's scope
    # the overview lists every plant to every reader (docs/server.md, roles): a scoped
    # entry holds the answer rendered for that caller, not another caller's
    every = json.loads(bodies["viewer"])
    assert {SCOPED, OTHER} <= {r["code"] for r in every["items"]}
    assert all(json.loads(b) == every for b in bodies.values())


def test_a_fleet_change_is_a_new_answer(
    server: Server, server_fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_state, "RECHECK_SECONDS", 0.0)
    h = server.as_role("viewer")
    q = f"/api/plants?q={SCOPED}"
    assert server.client.get(q, headers=h).json()["items"][0]["name"] == "Brno Components s.r.o."
    plant = server_fleet / "plants" / f"{SCOPED}.yaml"
    plant.write_text(plant.read_text().replace("name: Brno Components s.r.o.", "name: Brno Two"))
    assert server.client.get(q, headers=h).json()["items"][0]["name"] == "Brno Two"
    assert len(server.app.state.plantops.answers) == 1  # the old snapshot's entries are gone


def test_a_revoked_or_expired_token_gets_no_cached_answer(server: Server) -> None:
    store = server.app.state.plantops.store
    now = dt.datetime.now(dt.UTC)
    token, record = store.create_token(role="viewer", now=now)
    assert server.client.get("/api/plants", headers=bearer(token)).status_code == 200
    store.revoke_token(record.id, now=now)
    r = server.client.get("/api/plants", headers=bearer(token))
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    old, _ = store.create_token(
        role="viewer", expires_at=long_ago + dt.timedelta(days=1), now=long_ago
    )
    r = server.client.get("/api/plants", headers=bearer(old))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_a_plant_it_token_authenticates_with_its_scope(server: Server) -> None:
    store = server.app.state.plantops.store
    token = server.tokens["plant-it"]
    record = store.authenticate(token, now=dt.datetime.now(dt.UTC))
    assert record is not None and record.role == "plant-it" and record.plants == (SCOPED,)
    assert record.created_at.tzinfo is not None and record.expires_at is None
    assert store.authenticate(token[:-1] + "x", now=dt.datetime.now(dt.UTC)) is None  # secret
    assert store.authenticate("pot_nothere_x", now=dt.datetime.now(dt.UTC)) is None


def test_answer_cache_renders_once_per_key_and_snapshot_and_stays_bounded() -> None:
    cache = AnswerCache(size=2)
    calls: list[str] = []

    def render(body: str) -> bytes:
        calls.append(body)
        return body.encode()

    one, two = object(), object()
    assert cache.get(one, ("a", None), lambda: render("a")) == b"a"
    assert cache.get(one, ("a", None), lambda: render("never")) == b"a"
    assert cache.get(one, ("a", frozenset({SCOPED})), lambda: render("scoped")) == b"scoped"
    assert calls == ["a", "scoped"]
    # the least recently used entry goes first once over the bound
    cache.get(one, ("a", None), lambda: render("never"))
    cache.get(one, ("b", None), lambda: render("b"))
    assert len(cache) == 2
    assert cache.get(one, ("a", frozenset({SCOPED})), lambda: render("again")) == b"again"
    # another snapshot: nothing of the old one is served
    assert cache.get(two, ("a", None), lambda: render("new")) == b"new"
    assert len(cache) == 1


def test_answer_cache_keeps_at_most_max_bytes() -> None:
    cache = AnswerCache(size=100, max_bytes=10)
    snap = object()
    cache.get(snap, "a", lambda: b"aaaa")
    cache.get(snap, "b", lambda: b"bbbb")
    cache.get(snap, "c", lambda: b"cccc")  # 12 bytes: "a" goes
    assert len(cache) == 2
    assert cache.get(snap, "a", lambda: b"AAAA") == b"AAAA"  # rendered again
    assert cache.get(snap, "big", lambda: b"x" * 11) == b"x" * 11  # sent, not kept
    assert cache.get(snap, "big", lambda: b"y" * 11) == b"y" * 11
    assert len(cache) == 2

"""``GET /events`` (Server-Sent Events) from a real ``plantops serve``: events written by
another writer (the backup catalog, the store) arrive live, and a reconnect with
``Last-Event-ID`` resumes after the last one seen, with nothing lost or repeated."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from plantops.store import open_catalog
from plantops.store.server import open_server_store
from tests.conftest import EXAMPLE
from tests.server.conftest import SCOPED, Server, make_tokens, start_serve, stop


def read_sse(lines: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of an SSE line iterator (comments and retry skipped)."""
    got: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in event:
                got.append(event)
                if len(got) == count:
                    return got
            event = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            field, _, value = line.partition(": ")
            event[field] = value
    return got


def test_live_stream_and_resume(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/state.db"
    proc = start_serve(EXAMPLE, db, tmp_path)
    try:
        h = {"Authorization": f"Bearer {make_tokens(db)['viewer']}"}
        store = open_server_store(db)
        catalog = open_catalog(db)
        now = dt.datetime.now(dt.UTC)

        def write_later() -> None:
            catalog.create_backup(
                backup_id="b1", plant=SCOPED, env="prod", tier="standard", fmt="odoo-zip",
                store_url="file:///x", location="x", started_at=now, host="h", pid=1,
                key_id=None, db_name="d",
            )  # fmt: skip
            catalog.complete_backup(
                "b1", objects=[], manifest={}, row_counts={}, pg_version="16",
                odoo_version="17.0", finished_at=now,
            )  # fmt: skip
            catalog.add_verification(
                "b1", status="passed", started_at=now, finished_at=now, rto_seconds=12.0,
                rto_objective_seconds=3600, rpo_seconds=60, rpo_objective_seconds=900, checks={},
            )  # fmt: skip
            store.append_event("release.promoted", subject="rel-1", data={"stage": "prod"}, now=now)

        with httpx.stream("GET", proc.url + "/events", headers=h, timeout=20) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            first = read_sse(lines, 5)  # token.created × 5 (the role tokens)
            assert [e["event"] for e in first] == ["token.created"] * 5
            threading.Timer(0.3, write_later).start()
            live = read_sse(lines, 3)
        assert [e["event"] for e in live] == ["backup.taken", "backup.verified", "release.promoted"]
        verified = json.loads(live[1]["data"])
        assert (verified["plant"], verified["subject"], verified["data"]["rto_seconds"]) == (
            SCOPED,
            "b1",
            12.0,
        )
        ids = [int(e["id"]) for e in first + live]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        # reconnect after the backup.taken event: exactly the two after it, then nothing
        resume = {**h, "Last-Event-ID": live[0]["id"]}
        with httpx.stream("GET", proc.url + "/events?once=true", headers=resume, timeout=20) as r:
            again = read_sse(r.iter_lines(), 10)
        assert [e["id"] for e in again] == [live[1]["id"], live[2]["id"]]
        bad = httpx.get(proc.url + "/events", headers={**h, "Last-Event-ID": "x1"}, timeout=10)
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        store.close()
        catalog.close()
    finally:
        stop(proc)


def test_feed_pages_by_cursor_and_respects_scope(server: Server) -> None:
    store = server.app.state.plantops.store
    now = dt.datetime.now(dt.UTC)
    for plant in (SCOPED, "lyon-meddev", SCOPED):
        store.append_event("plan.written", plant=plant, data={}, now=now)
    it = server.as_role("plant-it")
    body = server.client.get("/api/events?after=5", headers=it).json()
    assert [e["plant"] for e in body["items"]] == [SCOPED, SCOPED]  # not the other plant's
    assert body["next_after"] == 8
    assert server.client.get("/api/events?after=8", headers=it).json()["items"] == []
    r = server.client.get("/events?once=true&after=0", headers=server.as_role("auditor"))
    assert r.text.count("event: plan.written") == 3

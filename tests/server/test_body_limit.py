"""The request body limit holds for bodies sent without Content-Length: a chunked body is
counted as it arrives and refused with a 413 problem document once over 1 MiB, by a
real ``plantops serve`` (uvicorn) on loopback; nothing is planned or recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx

from plantops.server.problems import MAX_BODY_BYTES
from tests.conftest import EXAMPLE
from tests.server.conftest import SCOPED, Server, make_tokens, start_serve, stop


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body in pieces: httpx sends an iterator with Transfer-Encoding: chunked."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def oversized() -> bytes:
    return json.dumps({"plants": ["x" * 60] * (MAX_BODY_BYTES // 60 + 100)}).encode()


def test_chunked_bodies_over_the_limit_get_413_from_uvicorn(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/state.db"
    proc = start_serve(EXAMPLE, db, tmp_path)
    try:
        h = {
            "Authorization": f"Bearer {make_tokens(db)['platform-engineer']}",
            "Content-Type": "application/json",
        }
        with httpx.Client(base_url=proc.url, headers=h, timeout=30) as client:
            before = client.get("/api/events?limit=1000").json()["items"]
            big = oversized()
            assert len(big) > MAX_BODY_BYTES
            r = client.post("/api/plan", content=chunks(big))
            assert r.request.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in r.request.headers
            assert r.status_code == 413, r.text
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["status"] == 413 and problem["instance"] == "/api/plan"
            assert str(MAX_BODY_BYTES) in problem["detail"]
            # a token write and a release likewise; nothing was recorded
            for path in ("/api/tokens", "/api/releases"):
                again = client.post(path, content=chunks(big))
                assert again.status_code == 413 and again.json()["status"] == 413, path
            assert client.get("/api/events?limit=1000").json()["items"] == before
            assert not (tmp_path / "out-a").exists()
            # a chunked body under the limit is read as usual
            small = json.dumps({"plants": [SCOPED]}).encode()
            ok = client.post("/api/plan", content=chunks(small, 8))
            assert ok.request.headers.get("transfer-encoding") == "chunked"
            assert ok.status_code == 200, ok.text
            assert ok.json()["written"] > 0
    finally:
        stop(proc)


def test_a_streamed_body_in_process(server: Server) -> None:
    h = {**server.as_role("platform-engineer"), "content-type": "application/json"}
    r = server.client.post("/api/plan", headers=h, content=chunks(oversized()))
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert not server.settings.out.exists()

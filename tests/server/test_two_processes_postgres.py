"""Two ``plantops serve`` processes against one real PostgreSQL: both migrate at once,
share tokens (created on one, revoked on the other) and write one ordered event log."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE
from tests.fixtures.postgres import PgCluster
from tests.server.conftest import make_tokens, start_serve, stop

pytestmark = pytest.mark.postgres


def test_two_servers_one_database(pg_cluster: PgCluster, pg_db: str, tmp_path: Path) -> None:
    url = pg_cluster.url(pg_db)
    # Both start on an empty database: the migration lock makes one wait for the other.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a_f = pool.submit(start_serve, EXAMPLE, url, tmp_path, name="a")
        b_f = pool.submit(start_serve, EXAMPLE, url, tmp_path, name="b")
        a, b = a_f.result(), b_f.result()
    try:
        tokens = make_tokens(url)
        admin = {"Authorization": f"Bearer {tokens['platform-engineer']}"}

        def create(i: int) -> str:
            base = (a, b)[i % 2].url
            r = httpx.post(f"{base}/api/tokens", headers=admin, json={"role": "viewer"}, timeout=30)
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            made = list(pool.map(create, range(40)))
        # a token created through A works on B; revoked through B it fails on A at once
        tid = made[0].removeprefix("pot_").split("_")[0]
        viewer = {"Authorization": f"Bearer {made[0]}"}
        assert httpx.get(f"{b.url}/api/fleet", headers=viewer, timeout=30).status_code == 200
        assert (
            httpx.delete(f"{b.url}/api/tokens/{tid}", headers=admin, timeout=30).status_code == 200
        )
        r = httpx.get(f"{a.url}/api/fleet", headers=viewer, timeout=30)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        # one log: both servers page the same ids, in order, none lost or doubled
        pages = []
        for server in (a, b):
            seen, after = [], 0
            while True:
                body = httpx.get(
                    f"{server.url}/api/events", headers=admin, params={"after": after}, timeout=30
                ).json()
                if not body["items"]:
                    break
                seen += [e["id"] for e in body["items"]]
                after = body["next_after"]
            pages.append(seen)
        assert pages[0] == pages[1] == sorted(set(pages[0]))
        assert len(pages[0]) == len(tokens) + 40 + 1  # token.created × (5 + 40), one revoke
    finally:
        stop(a)
        stop(b)

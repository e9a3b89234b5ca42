"""``plantops serve`` killed (SIGKILL) while a webhook's receiver is down, then started
again on the same database: the new process delivers every event exactly once and in
order per plant, from the outbox the first one left (its leases expire)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from plantops.store.server import open_server_store
from tests.conftest import EXAMPLE
from tests.server.conftest import WEBHOOK_KEY, make_tokens, start_serve, stop
from tests.server.webhook_receiver import Receiver, running

FAST = (
    "--webhook-timeout", "0.5", "--webhook-backoff", "0.05", "--webhook-backoff-max", "0.2",
    "--webhook-allow-network", "127.0.0.0/8",  # the receiver listens on loopback
)  # fmt: skip
PLANTS = ("brno-components", "lyon-meddev", "porto-packaging")


def wait_for(done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_events_survive_a_killed_server(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/state.db"
    env = {"PLANTOPS_WEBHOOK_KEY": WEBHOOK_KEY}
    tokens = make_tokens(db)
    admin = {"Authorization": f"Bearer {tokens['platform-engineer']}"}
    with running(Receiver(mode="fail")) as receiver:
        first = start_serve(EXAMPLE, db, tmp_path, env=env, name="a", args=FAST)
        try:
            r = httpx.post(
                f"{first.url}/api/webhooks",
                headers=admin,
                json={"url": receiver.url, "types": ["backup.*"]},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            receiver.secret = r.json()["secret"]
            log = open_server_store(db)  # another process's writes (a backup run, say)
            try:
                for i in range(30):
                    log.append_event(
                        "backup.taken",
                        plant=PLANTS[i % 3],
                        data={"i": i},
                        now=dt.datetime.now(dt.UTC),
                    )
            finally:
                log.close()
            wait_for(lambda: receiver.requests >= 5, 20)
            assert receiver.requests >= 5 and not receiver.accepted
        finally:
            first.proc.kill()  # no shutdown: leases and backoffs stay as they were
            first.proc.wait(10)
        receiver.mode = "ok"
        second = start_serve(EXAMPLE, db, tmp_path, env=env, name="b", args=FAST)
        try:
            wait_for(lambda: len(receiver.accepted) >= 30, 60)
            listed = httpx.get(f"{second.url}/api/webhooks", headers=admin, timeout=30).json()
        finally:
            stop(second)
    ids = [a.id for a in receiver.accepted]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert receiver.duplicates == 0 and receiver.bad_signatures == 0
    for plant, seqs in receiver.by_plant().items():
        assert seqs == sorted(seqs), f"out of order for {plant}"
    assert listed["items"][0]["deliveries"] == {"pending": 0, "delivered": 30, "dead": 0}
    assert WEBHOOK_KEY not in first.log.read_text() + second.log.read_text()
    assert receiver.secret not in first.log.read_text() + second.log.read_text()

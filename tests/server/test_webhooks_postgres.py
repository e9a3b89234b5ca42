"""Two delivery workers (as two server processes would run) against one real PostgreSQL
and one flaky receiver: the leases (``FOR UPDATE SKIP LOCKED``) keep them from sending
a delivery twice, and the queue rule keeps each plant in order. And migration 0008
(secret rotation) on a PostgreSQL database made at 0007."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from plantops.services.webhooks import Deliverer, DeliveryReport, RetryPolicy, open_store
from plantops.store.server import open_server_store
from plantops.store.webhooks import Webhook, WebhookStore, signing_secrets
from plantops.webhooks.destinations import LOOPBACK
from tests.fixtures.postgres import PgCluster
from tests.server.conftest import WEBHOOK_KEY
from tests.server.test_webhooks import upgrade_from_0007_and_deliver
from tests.server.webhook_receiver import Receiver, running

pytestmark = pytest.mark.postgres
POLICY = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=1000, timeout_seconds=2.0)
PLANTS = [f"plant-{i}" for i in range(6)]
N = 300


def test_two_workers_one_database_deliver_once_in_order(pg_cluster: PgCluster, pg_db: str) -> None:
    url = pg_cluster.url(pg_db)
    log = open_server_store(url)
    stores = [open_store(url, WEBHOOK_KEY), open_store(url, WEBHOOK_KEY)]
    rnd = random.Random(7)
    lock = threading.Lock()

    def flaky(_doc: dict[str, Any]) -> str:
        with lock:
            return "fail" if rnd.random() < 0.3 else "ok"

    try:
        with running(Receiver(decide=flaky)) as receiver:
            secret, hook = stores[0].add_webhook(
                url=receiver.url, types=["backup.*"], now=dt.datetime.now(dt.UTC)
            )
            receiver.secret = secret
            workers = [
                Deliverer(s, policy=POLICY, workers=4, destinations=LOOPBACK) for s in stores
            ]
            stop = threading.Event()
            reports: list[DeliveryReport] = []

            def run(i: int) -> None:
                got = workers[i].run(stop, poll_seconds=0.01)
                with lock:
                    reports.append(got)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            try:
                for i in range(N):  # written while both workers run
                    log.append_event(
                        "backup.taken", plant=PLANTS[i % len(PLANTS)], now=dt.datetime.now(dt.UTC)
                    )
                deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
                while len(receiver.accepted) < N and dt.datetime.now(dt.UTC) < deadline:
                    stop.wait(0.05)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
                for w in workers:
                    w.close()
        assert len(receiver.accepted) == N
        assert len({r.id for r in receiver.accepted}) == N
        assert receiver.duplicates == 0, "two workers sent one delivery"
        assert receiver.bad_signatures == 0
        for plant, seqs in receiver.by_plant().items():
            assert seqs == sorted(seqs), f"out of order for {plant}"
        assert receiver.requests > N  # the receiver did fail some, and they were retried
        done = reports
        assert len(done) == 2 and all(r.delivered > 0 for r in done)  # both took part
        assert sum(r.delivered for r in done) == N
        assert {d.status for d in stores[0].deliveries(hook.id)} == {"delivered"}
    finally:
        log.close()
        for s in stores:
            s.close()


def test_0008_upgrades_a_0007_postgresql_database_whose_webhook_still_delivers(
    pg_cluster: PgCluster, pg_db: str
) -> None:
    with running(Receiver()) as receiver:
        upgrade_from_0007_and_deliver(pg_cluster.url(pg_db), receiver)


def rotate_at_once(stores: list[WebhookStore], hook_id: str) -> list[str]:
    """Each store rotates ``hook_id`` in its own thread, released together; the secrets."""
    start = threading.Barrier(len(stores))
    got: list[str] = []

    def rotate(store: WebhookStore) -> None:
        start.wait()
        secret, _ = store.rotate_secret(
            hook_id, overlap=dt.timedelta(hours=1), now=dt.datetime.now(dt.UTC)
        )
        got.append(secret)

    threads = [threading.Thread(target=rotate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return got


def test_two_servers_rotating_at_once_leave_the_two_newest_secrets(
    pg_cluster: PgCluster, pg_db: str
) -> None:
    """Two processes' stores rotate one webhook at the same moment: the row lock makes the
    second replace the first's secret, so the live pair is both new secrets (neither
    caller was handed a secret that never signs) and the original is gone."""
    url = pg_cluster.url(pg_db)
    stores = [open_store(url, WEBHOOK_KEY), open_store(url, WEBHOOK_KEY)]
    box = stores[0].box
    assert box is not None
    try:
        for _ in range(5):
            original, hook = stores[0].add_webhook(
                url="http://127.0.0.1:9/hook", now=dt.datetime.now(dt.UTC)
            )
            got = rotate_at_once(stores, hook.id)
            with Session(stores[0].engine) as s:
                row = s.get(Webhook, hook.id)
                assert row is not None
                live = signing_secrets(box, row, dt.datetime.now(dt.UTC))
            assert len(got) == 2 and set(live) == set(got) and original not in live
    finally:
        for s in stores:
            s.close()

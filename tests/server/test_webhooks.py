"""Webhooks of the event stream, against a real receiver on loopback that fails, hangs
past the timeout, answers 410 and comes back: registration (secret shown once, sealed at
rest), the outbox written with each event, exactly-once acceptance per receiver (the
receiver drops repeats by ``webhook-id``), order per plant, dead rows and redrive, a new
worker (a restarted server) picking up what the last one left, signatures, bad input."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from sqlalchemy import inspect, text, update

from plantops.errors import UserError
from plantops.server import ServerSettings, create_app
from plantops.services.webhooks import Deliverer, RetryPolicy, WebhookStore
from plantops.store.server import ROLES
from plantops.store.webhooks import Webhook
from plantops.webhooks.destinations import LOOPBACK, Destinations, parse_networks
from plantops.webhooks.signing import WebhookVerificationError, sign_headers, verify_signature
from tests.server.conftest import SCOPED, Server, make_tokens
from tests.server.webhook_receiver import Received, Receiver, running

FAST = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=100, timeout_seconds=0.5)
PLANTS = ("brno-components", "lyon-meddev", "porto-packaging")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as r:
        yield r


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def register(server: Server, receiver: Receiver, **body: Any) -> str:
    r = server.client.post(
        "/api/webhooks",
        headers=server.as_role("platform-engineer"),
        json={"url": receiver.url, **body},
    )
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    return str(r.json()["id"])


def store_of(server: Server) -> WebhookStore:
    store: WebhookStore = server.app.state.plantops.webhooks
    return store


def write_events(server: Server, n: int, plants: tuple[str, ...] = PLANTS) -> list[int]:
    store = server.app.state.plantops.store
    return [
        store.append_event(
            "backup.taken", plant=plants[i % len(plants)], subject=f"b{i}", data={"i": i}, now=now()
        )
        for i in range(n)
    ]


def drain_until(deliverer: Deliverer, done: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "delivery did not finish in time"
        if not deliverer.deliver_due().claimed:
            time.sleep(0.01)


@pytest.fixture
def deliverer(server: Server) -> Iterator[Deliverer]:
    d = Deliverer(store_of(server), policy=FAST, workers=4, destinations=LOOPBACK)
    yield d
    d.close()


def assert_once_in_order(receiver: Receiver, expected: int) -> None:
    ids = [r.id for r in receiver.accepted]
    assert len(ids) == expected and len(set(ids)) == expected
    for plant, seqs in receiver.by_plant().items():
        assert seqs == sorted(seqs), f"out of order for {plant}: {seqs}"
    assert receiver.bad_signatures == 0


# --- registration -----------------------------------------------------------------------


def test_register_shows_the_secret_once_and_seals_it(
    server: Server, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = register(server, receiver, types=["backup.*", "io.plantops.plan.written"])
    secret = receiver.secret
    assert secret.startswith("whsec_") and len(secret) > 40
    listed = server.client.get("/api/webhooks", headers=server.as_role("auditor"))
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["id"] == hook and item["types"] == ["backup.*", "plan.written"]
    assert "secret" not in item and secret not in listed.text
    one = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("platform-engineer"))
    assert one.status_code == 200 and secret not in one.text
    # at rest: a Fernet token, not the secret; nowhere in the log either
    store = store_of(server)
    with store.engine.connect() as conn:
        stored: str = conn.execute(text("SELECT secret FROM webhooks")).scalar_one()
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert secret not in caplog.text
    # its own creation is an event, and the filter drops the token events
    assert [e["type"] for e in events(server)][-1] == "webhook.created"


def events(server: Server) -> list[dict[str, Any]]:
    r = server.client.get("/api/events?limit=1000", headers=server.as_role("auditor"))
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_outbox_row_per_webhook_written_with_the_event(server: Server, receiver: Receiver) -> None:
    a = register(server, receiver)
    b = register(server, receiver, types=["plan.*"])
    before = len(store_of(server).deliveries())
    (event_id,) = write_events(server, 1)
    rows = [d for d in store_of(server).deliveries() if d.event_id == event_id]
    assert [(d.webhook_id, d.status) for d in rows] == [(a, "pending")]  # b filters it out
    assert len(store_of(server).deliveries()) == before + 1
    del b


def test_delivered_exactly_once_after_an_outage(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = register(server, receiver, types=["backup.*"])
    receiver.mode = "fail"
    write_events(server, 12)
    for _ in range(5):  # the receiver is down: attempts fail and back off
        deliverer.deliver_due()
        time.sleep(0.02)
    failed_ids = set(receiver.attempted_ids)
    assert failed_ids and not receiver.accepted
    rows = store_of(server).deliveries(hook)
    assert all(d.status == "pending" for d in rows)
    assert any(d.attempts >= 1 and "HTTP 500" in d.last_error for d in rows)
    receiver.mode = "ok"
    drain_until(deliverer, lambda: len(receiver.accepted) == 12)
    deliverer.drain()
    assert_once_in_order(receiver, 12)
    assert receiver.duplicates == 0
    # the retries carried the ids of the failed attempts (stable idempotency keys)
    assert failed_ids <= {r.id for r in receiver.accepted}
    assert {d.status for d in store_of(server).deliveries(hook)} == {"delivered"}
    listed = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("auditor")).json()
    assert listed["deliveries"] == {"pending": 0, "delivered": 12, "dead": 0}


def test_a_receiver_s_answer_body_is_never_read(server: Server, receiver: Receiver) -> None:
    """A 2xx with a 1 GiB body dripped a byte at a time: delivered on the status line
    and headers alone, in far less than the ~10 s the drip lasts."""
    register(server, receiver, types=["backup.*"])
    receiver.drip_body = True
    write_events(server, 1, plants=(SCOPED,))
    policy = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=3, timeout_seconds=0.3)
    d = Deliverer(store_of(server), policy=policy, destinations=LOOPBACK)
    try:
        started = time.monotonic()
        report = d.deliver_due()
        assert report.delivered == 1 and time.monotonic() - started < 5.0, report
    finally:
        d.close()
    assert len(receiver.accepted) == 1


def test_a_receiver_that_hangs_past_the_timeout(server: Server, receiver: Receiver) -> None:
    register(server, receiver, types=["backup.*"])
    policy = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=10, timeout_seconds=0.3)
    receiver.mode, receiver.hang_seconds = "hang", 2.5
    write_events(server, 1, plants=(SCOPED,))
    d = Deliverer(store_of(server), policy=policy, destinations=LOOPBACK)
    try:
        started = time.monotonic()
        report = d.deliver_due()
        # the 0.3 s timeout, not the 2.5 s hang (margin for a loaded machine)
        assert report.failures == 1 and time.monotonic() - started < 2.0
        (row,) = [r for r in store_of(server).deliveries() if r.plant == SCOPED]
        assert row.status == "pending" and "timed out after 0.3 s" in row.last_error
        receiver.mode = "ok"
        drain_until(d, lambda: receiver.duplicates == 1)
    finally:
        d.close()
    # processed once; the retry (same webhook-id) was a duplicate the receiver dropped
    assert len(receiver.accepted) == 1 and receiver.duplicates == 1
    assert receiver.attempted_ids[0] == receiver.attempted_ids[1] == receiver.accepted[0].id


def test_order_per_plant_one_failing_event_holds_only_its_plant(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    register(server, receiver, types=["backup.*"])
    ids = write_events(server, 9)  # brno, lyon, porto, brno, ...
    blocked = ids[3]  # brno's second event fails until told otherwise
    failing = {"on": True}

    def decide(doc: dict[str, Any]) -> str:
        return "fail" if failing["on"] and int(doc["sequence"]) == blocked else "ok"

    receiver.decide = decide
    for _ in range(30):
        deliverer.deliver_due()
        time.sleep(0.005)
    got = receiver.by_plant()
    assert got["lyon-meddev"] == [ids[1], ids[4], ids[7]]
    assert got["porto-packaging"] == [ids[2], ids[5], ids[8]]
    assert got["brno-components"] == [ids[0]]  # nothing after the failing one
    failing["on"] = False
    drain_until(deliverer, lambda: len(receiver.accepted) == 9)
    assert receiver.by_plant()["brno-components"] == [ids[0], ids[3], ids[6]]
    assert_once_in_order(receiver, 9)


def test_dead_after_max_attempts_holds_the_queue_until_redriven(
    server: Server, receiver: Receiver
) -> None:
    hook = register(server, receiver, types=["backup.*"])
    policy = RetryPolicy(base_seconds=0.01, cap_seconds=0.02, max_attempts=3, timeout_seconds=0.5)
    receiver.mode = "fail"
    write_events(server, 2, plants=(SCOPED,))
    d = Deliverer(store_of(server), policy=policy, destinations=LOOPBACK)
    try:
        drain_until(d, lambda: any(r.status == "dead" for r in store_of(server).deliveries()))
        for _ in range(5):
            d.deliver_due()
            time.sleep(0.03)
        rows = store_of(server).deliveries(hook)
        assert [(r.status, r.attempts) for r in rows] == [("dead", 3), ("pending", 0)]
        assert receiver.requests == 3  # the second event was never sent past the dead one
        listed = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("auditor"))
        assert listed.json()["state"] == "blocked"
        receiver.mode = "ok"
        r = server.client.post(
            f"/api/webhooks/{hook}/redrive", headers=server.as_role("platform-engineer")
        )
        assert r.status_code == 200 and r.json()["deliveries"]["dead"] == 0
        drain_until(d, lambda: len(receiver.accepted) == 2)
    finally:
        d.close()
    assert_once_in_order(receiver, 2)


def test_410_gone_disables_the_webhook(server: Server, receiver: Receiver) -> None:
    hook = register(server, receiver, types=["backup.*"])
    receiver.mode = "gone"
    write_events(server, 2, plants=(SCOPED,))
    d = Deliverer(store_of(server), policy=FAST, destinations=LOOPBACK)
    try:
        d.deliver_due()
        assert not d.deliver_due().claimed  # disabled: nothing is claimed
    finally:
        d.close()
    got = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("auditor")).json()
    assert got["state"] == "disabled" and "410" in got["disabled_reason"]
    assert receiver.requests == 1


def test_a_restarted_server_delivers_what_the_last_one_left(
    server_settings: ServerSettings, receiver: Receiver
) -> None:
    """Two app instances in turn against one database, each with its delivery loop (the
    lifespan's); the first stops while the receiver is down."""
    from dataclasses import replace

    from fastapi.testclient import TestClient

    settings = replace(
        server_settings, deliver_webhooks=True, webhook_retry=FAST, webhook_poll_seconds=0.02
    )
    tokens = make_tokens(settings.db_url)
    admin = {"Authorization": f"Bearer {tokens['platform-engineer']}"}
    receiver.mode = "fail"
    with TestClient(create_app(settings), base_url="https://testserver") as first:
        r = first.post(
            "/api/webhooks", headers=admin, json={"url": receiver.url, "types": ["backup.*"]}
        )
        receiver.secret = r.json()["secret"]
        store = first.app.state.plantops.store  # type: ignore[attr-defined]
        for i in range(10):
            store.append_event("backup.taken", plant=PLANTS[i % 3], data={"i": i}, now=now())
        deadline = time.monotonic() + 10
        while receiver.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert receiver.requests >= 3 and not receiver.accepted  # it tried; nothing got through
    receiver.mode = "ok"
    with TestClient(create_app(settings), base_url="https://testserver") as second:
        deadline = time.monotonic() + 20
        while len(receiver.accepted) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        hooks = second.get("/api/webhooks", headers=admin).json()["items"]
    assert_once_in_order(receiver, 10)
    assert receiver.duplicates == 0
    assert hooks[0]["deliveries"] == {"pending": 0, "delivered": 10, "dead": 0}


def test_platform_events_arrive_as_cloudevents(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    """A real use case's event (``POST /api/plan`` → plan.written), parsed back with the
    cloudevents SDK from the request the receiver verified."""
    register(server, receiver, types=["plan.written"])
    r = server.client.post(
        "/api/plan", headers=server.as_role("platform-engineer"), json={"plants": [SCOPED]}
    )
    assert r.status_code == 200, r.text
    drain_until(deliverer, lambda: len(receiver.accepted) == 1)
    (got,) = receiver.accepted
    event = from_http_event(HTTPMessage(got.headers, got.raw))
    assert event.get_specversion() == "1.0"
    assert event.get_type() == "io.plantops.plan.written"
    assert event.get_source() == f"/plantops/plants/{SCOPED}"
    assert event.get_id() == got.id
    data = event.get_data()
    assert isinstance(data, dict) and data["deployments"] >= 1
    assert got.body["actor"] and got.body["plant"] == SCOPED


# --- the verifier ------------------------------------------------------------------------


def test_verifier_rejects_replays_stale_and_forged_requests() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
    body = b'{"id":"evt_1"}'
    sent_at = 1_700_000_000
    headers = sign_headers(secret, "evt_1", sent_at, body)
    assert verify_signature(secret, headers, body, now=sent_at + 10) == "evt_1"
    # the same request captured and replayed ten minutes later
    with pytest.raises(WebhookVerificationError, match="old"):
        verify_signature(secret, headers, body, now=sent_at + 600)
    # replayed with a fresh timestamp: the signature covers the timestamp
    fresh = {**headers, "webhook-timestamp": str(sent_at + 600)}
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify_signature(secret, fresh, body, now=sent_at + 600)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify_signature(secret, headers, body, now=sent_at - 600)
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify_signature(secret, headers, body + b" ", now=sent_at)
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify_signature(other, headers, body, now=sent_at)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_signature(secret, {"webhook-id": "evt_1"}, body, now=sent_at)
    with pytest.raises(WebhookVerificationError, match="Unix seconds"):
        verify_signature(secret, {**headers, "webhook-timestamp": "soon"}, body, now=sent_at)
    # several signatures (a key rotation): any matching v1 one passes
    both = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert verify_signature(secret, both, body, now=sent_at) == "evt_1"
    # signed with two secrets (a rotation's overlap): each verifies on its own
    pair = sign_headers([other, secret], "evt_1", sent_at, body)
    first, second = pair["webhook-signature"].split(" ")
    assert second == headers["webhook-signature"] and first.startswith("v1,")
    for key in (other, secret):
        assert verify_signature(key, pair, body, now=sent_at) == "evt_1"
    third = "whsec_" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify_signature(third, pair, body, now=sent_at)
    with pytest.raises(ValueError, match="at least one secret"):
        sign_headers([], "evt_1", sent_at, body)


def test_standard_webhooks_reference_vector() -> None:
    """The example of the Standard Webhooks spec (spec/standard-webhooks.md, "Signature
    scheme"): the same id, timestamp, body and secret give the documented signature."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = sign_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# --- who may, and bad input -------------------------------------------------------------


@pytest.mark.parametrize("role", [r for r in ROLES if r != "platform-engineer"])
def test_only_the_platform_engineer_manages_webhooks(
    server: Server, receiver: Receiver, role: str
) -> None:
    hook = register(server, receiver)
    before = events(server)
    h = server.as_role(role)
    answers = [
        server.client.post("/api/webhooks", headers=h, json={"url": receiver.url}),
        server.client.delete(f"/api/webhooks/{hook}", headers=h),
        server.client.post(f"/api/webhooks/{hook}/redrive", headers=h),
        server.client.post(f"/api/webhooks/{hook}/rotate-secret", headers=h),
    ]
    if role != "auditor":  # the auditor reads everything, the others not webhooks
        answers.append(server.client.get("/api/webhooks", headers=h))
    for r in answers:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "may not" in r.json()["detail"]
    assert events(server) == before
    assert [w.id for w in store_of(server).list_webhooks()] == [hook]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"url": "ftp://127.0.0.1/hook"}, 400, "http:// or https://"),
        ({"url": "javascript:alert(1)"}, 400, "http:// or https://"),
        ({"url": "not a url"}, 400, "whitespace"),
        ({"url": "http://user:pw@127.0.0.1/hook"}, 400, "credentials"),
        ({"url": "http://127.0.0.1:99999/hook"}, 400, "malformed"),
        ({"url": "http:///hook"}, 400, "with a host"),
        ({"url": "http://127.0.0.1/" + "a" * 2000}, 422, "url"),
        ({"url": "http://127.0.0.1/hook", "types": ["nope.thing"]}, 400, "nope.thing"),
        ({"url": "http://127.0.0.1/hook", "secret": "whsec_x"}, 422, "secret"),
        ({"url": 5}, 422, "url"),
        ({}, 422, "url"),
    ],
)
def test_bad_input_records_nothing(
    server: Server, body: dict[str, Any], status: int, words: str
) -> None:
    before = events(server)
    r = server.client.post("/api/webhooks", headers=server.as_role("platform-engineer"), json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.text
    assert store_of(server).list_webhooks() == [] and events(server) == before


def test_oversized_and_malformed_bodies(server: Server) -> None:
    h = {**server.as_role("platform-engineer"), "content-type": "application/json"}
    big = json.dumps({"url": "http://127.0.0.1/hook", "pad": "x" * (1024 * 1024 + 1)})
    r = server.client.post("/api/webhooks", headers=h, content=big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    r = server.client.post("/api/webhooks", headers=h, content=b'{"url": ')
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = server.client.delete("/api/webhooks/NOT-HEX", headers=h)
    assert r.status_code == 422
    r = server.client.delete("/api/webhooks/abcdef", headers=h)
    assert r.status_code == 404 and "no webhook" in r.json()["detail"]
    assert store_of(server).list_webhooks() == []


def test_without_a_webhook_key_registration_is_refused(server_settings: ServerSettings) -> None:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    settings = replace(server_settings, webhook_key=None)
    tokens = make_tokens(settings.db_url)
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        r = c.post(
            "/api/webhooks",
            headers={"Authorization": f"Bearer {tokens['platform-engineer']}"},
            json={"url": "http://127.0.0.1/hook"},
        )
    assert r.status_code == 409 and "PLANTOPS_WEBHOOK_KEY" in r.json()["detail"]


def test_promotions_rollbacks_and_failed_backups_reach_the_receiver(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    """Events written outside the server: the release ledger's promotion (one event per
    plant, with the gate results) and rollback, and the catalog's failed backup, each in
    its writer's transaction, fan out to the webhook like the server's own."""
    from plantops.store import Catalog
    from plantops.store.catalog import make_engine
    from plantops.store.ledger import NewEntry, open_ledger

    register(server, receiver, types=["release.*", "backup.failed"])
    ledger = open_ledger(server.settings.db_url)
    catalog = Catalog(make_engine(server.settings.db_url))
    try:
        gates = [{"gate": "policy", "ok": True, "reasons": []}]
        ledger.append(
            [
                NewEntry(
                    "promotion",
                    release_id="sha256:" + "ab" * 32,
                    stage="prod",
                    actor="ci",
                    payload={"wave": 1, "plants": list(PLANTS[:2]), "gates": gates},
                ),
                NewEntry(
                    "rollback",
                    release_id="sha256:" + "ab" * 32,
                    stage="prod",
                    actor="ops",
                    payload={"plant": PLANTS[0], "to_release": "x", "reason": "r"},
                ),
            ],
            now=now(),
        )
        catalog.create_backup(
            backup_id="bk1", plant=PLANTS[2], env="prod", tier="t", fmt="custom",
            store_url="file:///tmp/x", location="bk1", started_at=now(), host="h", pid=1,
            key_id=None, db_name="odoo",
        )  # fmt: skip
        catalog.set_status("bk1", "failed", error="pg_dump exited 1", finished_at=now())
    finally:
        ledger.close()
        catalog.close()
    drain_until(deliverer, lambda: len(receiver.accepted) == 4)
    got = [(r.type, r.plant) for r in receiver.accepted]
    assert sorted(got) == sorted(
        [
            ("io.plantops.release.promoted", PLANTS[0]),
            ("io.plantops.release.promoted", PLANTS[1]),
            ("io.plantops.release.rolled-back", PLANTS[0]),
            ("io.plantops.backup.failed", PLANTS[2]),
        ]
    )
    promoted = next(r for r in receiver.accepted if r.type.endswith("promoted"))
    assert promoted.body["data"]["gates"] == gates and promoted.body["data"]["stage"] == "prod"
    failed = next(r for r in receiver.accepted if r.type.endswith("backup.failed"))
    assert failed.body["data"]["error"] == "pg_dump exited 1"
    assert_once_in_order(receiver, 4)


def test_a_dead_workers_leases_expire_and_another_worker_sends_them(
    server: Server, receiver: Receiver
) -> None:
    """A worker that leased rows and died (never recorded anything): until the lease
    expires no other worker sends them; after it, one does, with the same ids."""
    register(server, receiver, types=["backup.*"])
    write_events(server, 6)
    store = store_of(server)
    t0 = now()
    dead = store.claim("worker-that-died", now=t0, lease_seconds=30, limit=10, run=10)
    assert sum(len(r) for r in dead) == 6
    clock = {"now": t0 + dt.timedelta(seconds=10)}
    other = Deliverer(store, policy=FAST, clock=lambda: clock["now"], destinations=LOOPBACK)
    try:
        assert other.deliver_due().claimed == 0  # still leased
        clock["now"] = t0 + dt.timedelta(seconds=31)
        drain_until(other, lambda: len(receiver.accepted) == 6)
    finally:
        other.close()
    assert_once_in_order(receiver, 6)
    assert {r.event.id for run in dead for r in run} == {int(r.sequence) for r in receiver.accepted}


def test_replay_delivers_the_log_before_the_webhook_too(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    ids = write_events(server, 4)
    register(server, receiver, types=["backup.*"], replay=True)
    drain_until(deliverer, lambda: len(receiver.accepted) == 4)
    assert sorted(r.sequence for r in receiver.accepted) == ids
    late = register(server, receiver, types=["backup.*"])  # no replay: from now on
    assert store_of(server).deliveries(late) == []


def test_deliveries_show_failures_and_delivered_rows_are_pruned(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = register(server, receiver, types=["backup.*"])
    receiver.mode = "fail"
    write_events(server, 3, plants=(SCOPED,))
    deliverer.deliver_due()
    url = f"/api/webhooks/{hook}/deliveries"
    r = server.client.get(url + "?status=pending", headers=server.as_role("auditor"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["attempts"] for i in items] == [1, 0, 0]  # the head failed; the rest wait
    assert items[0]["last_status"] == 500 and "HTTP 500" in items[0]["last_error"]
    assert server.client.get(url, headers=server.as_role("viewer")).status_code == 403
    bad = server.client.get(url + "?status=lost", headers=server.as_role("auditor"))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert (
        server.client.get(
            "/api/webhooks/abcdef/deliveries", headers=server.as_role("auditor")
        ).status_code
        == 404
    )
    receiver.mode = "ok"
    drain_until(deliverer, lambda: len(receiver.accepted) == 3)
    page = server.client.get(url + "?limit=2", headers=server.as_role("auditor")).json()
    assert [i["status"] for i in page["items"]] == ["delivered", "delivered"]
    rest = server.client.get(
        f"{url}?after={page['next_after']}", headers=server.as_role("auditor")
    ).json()
    assert len(rest["items"]) == 1
    store = store_of(server)
    assert store.prune(before=now() - dt.timedelta(days=1)) == 0  # all newer
    assert store.prune(before=now() + dt.timedelta(seconds=1)) == 3
    assert store.deliveries(hook) == []
    write_events(server, 1, plants=(SCOPED,))  # order does not need the pruned rows
    drain_until(deliverer, lambda: len(receiver.accepted) == 4)
    assert_once_in_order(receiver, 4)


# --- where webhooks may go (webhooks/destinations.py) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://192.168.0.7/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_an_internal_ip_literal_is_refused_at_registration(
    server_settings: ServerSettings, url: str
) -> None:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    settings = replace(server_settings, webhook_allow_networks=())
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        tokens = make_tokens(settings.db_url)
        h = {"Authorization": f"Bearer {tokens['platform-engineer']}"}
        r = client.post("/api/webhooks", headers=h, json={"url": url})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "--webhook-allow-network" in r.json()["detail"]
        assert client.get("/api/webhooks", headers=h).json()["items"] == []


def test_a_name_that_resolves_inside_is_refused_at_delivery(
    server: Server, receiver: Receiver
) -> None:
    """A public-looking name resolving to a private address (DNS rebinding, a split
    horizon): checked right before each request, never sent, retried, then dead."""
    hook = register(server, receiver, types=["backup.*"])
    # registered on loopback (allowed in these tests); now a name the resolver maps to
    # 10.0.0.5, as a DNS answer that changed after registration would
    with store_of(server).engine.begin() as conn:
        conn.execute(update(Webhook).values(url="http://hooks.example.test:9/x"))
    write_events(server, 1, plants=(SCOPED,))
    policy = RetryPolicy(base_seconds=0.0, cap_seconds=0.0, max_attempts=2, timeout_seconds=1)
    d = Deliverer(store_of(server), policy=policy, resolver=lambda host, port: ["10.0.0.5"])
    try:
        d.drain(idle_passes=2)
    finally:
        d.close()
    (row,) = [r for r in store_of(server).deliveries(hook) if r.plant == SCOPED]
    assert row.status == "dead" and "10.0.0.5 is a private address" in row.last_error
    assert receiver.attempted_ids == []
    # allowed explicitly, the same name is delivered to (resolved to the real receiver)
    allowed = Destinations(parse_networks(["10.0.0.0/8"]))
    assert allowed.check_resolved(["10.0.0.5"]) == ""
    assert "loopback" in Destinations().check_resolved(["127.0.0.1"])
    assert Destinations().check_resolved(["93.184.216.34"]) == ""


def test_a_bad_allowed_network_is_a_usage_error() -> None:
    with pytest.raises(UserError, match="--webhook-allow-network 'nope'"):
        parse_networks(["nope"])


def test_a_delivery_goes_to_the_address_that_was_checked(
    server: Server, receiver: Receiver
) -> None:
    """DNS rebinding between the check and the connection: the request is pinned to the
    address the check saw. The name here resolves nowhere on this machine, so a client
    that looked it up again would fail; pinned, it reaches the checked loopback receiver
    with the name in its Host header."""
    hook = register(server, receiver, types=["backup.*"])
    port = receiver.url.split(":")[2].split("/")[0]
    with store_of(server).engine.begin() as conn:
        conn.execute(update(Webhook).values(url=f"http://hooks.rebind.invalid:{port}/x"))
    write_events(server, 1, plants=(SCOPED,))
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    d = Deliverer(store_of(server), policy=FAST, resolver=resolver, destinations=LOOPBACK)
    try:
        d.drain(idle_passes=2)
    finally:
        d.close()
    (row,) = [r for r in store_of(server).deliveries(hook) if r.plant == SCOPED]
    assert row.status == "delivered", row.last_error
    assert asked == ["hooks.rebind.invalid"]  # resolved once, by the checked resolver
    (got,) = receiver.accepted
    assert got.headers["host"] == f"hooks.rebind.invalid:{port}"


def test_pinned_urls_keep_the_name_for_tls() -> None:
    from plantops.webhooks.delivery import pinned

    assert pinned("https://hooks.example.com/x?a=1", "93.184.216.34") == (
        "https://93.184.216.34/x?a=1",
        {"sni_hostname": "hooks.example.com"},
    )
    assert pinned("http://h.example.com:8080/p", "2001:db8::1") == (
        "http://[2001:db8::1]:8080/p",
        {},
    )
    assert pinned("https://93.184.216.34/x", "93.184.216.34") == ("https://93.184.216.34/x", {})


# --- secret rotation --------------------------------------------------------------------


def rotate(server: Server, hook: str, **body: Any) -> dict[str, Any]:
    r = server.client.post(
        f"/api/webhooks/{hook}/rotate-secret",
        headers=server.as_role("platform-engineer"),
        json=body or None,
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def signatures(received: Received) -> list[str]:
    return received.headers["webhook-signature"].split(" ")


def verifies(secret: str, received: Received, at: float | None = None) -> bool:
    try:
        verify_signature(secret, received.headers, received.raw, now=at or time.time())
    except WebhookVerificationError:
        return False
    return True


def test_rotation_returns_a_new_secret_and_signs_with_both_during_the_overlap(
    server: Server, receiver: Receiver, deliverer: Deliverer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = register(server, receiver, types=["backup.*"])
    old = receiver.secret
    before = now()
    answer = rotate(server, hook)  # no body: 24 hours of overlap
    new = answer["secret"]
    assert new.startswith("whsec_") and new != old and answer["id"] == hook
    until = dt.datetime.fromisoformat(answer["previous_secret_until"])
    assert before + dt.timedelta(hours=24) <= until <= now() + dt.timedelta(hours=24)
    # shown this once: not listed, not at rest in the clear, not in the event or the log
    listed = server.client.get("/api/webhooks", headers=server.as_role("auditor"))
    (item,) = listed.json()["items"]
    assert item["previous_secret_until"] == answer["previous_secret_until"]
    assert "secret" not in item
    one = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("auditor"))
    with store_of(server).engine.connect() as conn:
        at_rest = conn.execute(text("SELECT secret, previous_secret FROM webhooks")).one()
    rotated = events(server)[-1]
    assert rotated["type"] == "webhook.secret-rotated" and rotated["subject"] == hook
    assert rotated["data"] == {"overlap_seconds": 86400, "previous_until": until.isoformat()}
    seen = listed.text + one.text + json.dumps(events(server)) + caplog.text + "".join(at_rest)
    for secret in (old, new):
        assert secret not in seen and secret.removeprefix("whsec_") not in seen

    # a receiver still on the old secret accepts every delivery of the overlap ...
    write_events(server, 3)
    drain_until(deliverer, lambda: len(receiver.accepted) == 3)
    # ... and one that switched to the new secret too
    receiver.secret = new
    write_events(server, 3)
    drain_until(deliverer, lambda: len(receiver.accepted) == 6)
    assert_once_in_order(receiver, 6)
    for got in receiver.accepted:
        assert len(signatures(got)) == 2 and all(v.startswith("v1,") for v in signatures(got))
        assert verifies(new, got) and verifies(old, got)
        # the new secret's signature first, then the old one's (webhook-signature's order)
        alone_new = sign_headers(new, got.id, int(got.headers["webhook-timestamp"]), got.raw)
        assert signatures(got)[0] == alone_new["webhook-signature"]


def test_after_the_overlap_only_the_new_secret_verifies(server: Server, receiver: Receiver) -> None:
    hook = register(server, receiver, types=["backup.*"])
    old = receiver.secret
    new = rotate(server, hook, overlap_hours=1)["secret"]
    # two hours later, on the sender's and the receiver's clocks alike
    later = dt.timedelta(hours=2)
    receiver.clock = lambda: time.time() + later.total_seconds()
    d = Deliverer(store_of(server), policy=FAST, destinations=LOOPBACK, clock=lambda: now() + later)
    try:
        write_events(server, 1, plants=(SCOPED,))
        report = d.deliver_due()  # the receiver still on the old secret refuses it
        assert report.failures == 1 and receiver.bad_signatures == 1 and not receiver.accepted
        receiver.secret = new
        drain_until(d, lambda: len(receiver.accepted) == 1)
    finally:
        d.close()
    (got,) = receiver.accepted
    at = receiver.clock()
    assert len(signatures(got)) == 1
    assert verifies(new, got, at) and not verifies(old, got, at)
    listed = server.client.get(f"/api/webhooks/{hook}", headers=server.as_role("auditor"))
    assert listed.json()["previous_secret_until"] is not None  # by the server's own clock


def test_a_second_rotation_in_the_overlap_keeps_two_secrets_and_zero_keeps_one(
    server: Server, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = register(server, receiver, types=["backup.*"])
    first = receiver.secret
    second = rotate(server, hook, overlap_hours=2)["secret"]
    third = rotate(server, hook, overlap_hours=168)["secret"]
    receiver.secret = third
    write_events(server, 1)
    drain_until(deliverer, lambda: len(receiver.accepted) == 1)
    got = receiver.accepted[-1]
    assert len(signatures(got)) == 2
    assert verifies(third, got) and verifies(second, got) and not verifies(first, got)
    # no overlap: the replaced secret stops at once
    answer = rotate(server, hook, overlap_hours=0)
    assert answer["previous_secret_until"] is None
    receiver.secret = answer["secret"]
    write_events(server, 1)
    drain_until(deliverer, lambda: len(receiver.accepted) == 2)
    got = receiver.accepted[-1]
    assert len(signatures(got)) == 1 and not verifies(third, got)
    assert receiver.bad_signatures == 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"overlap_hours": -1}, 422, "overlap_hours"),
        ({"overlap_hours": 169}, 422, "overlap_hours"),
        ({"overlap_hours": "24"}, 422, "overlap_hours"),
        ({"overlap_hours": 1.5}, 422, "overlap_hours"),
        ({"overlap_hours": True}, 422, "overlap_hours"),
        ({"overlap": 24}, 422, "overlap"),
        ([24], 422, "body"),
    ],
)
def test_a_bad_rotation_records_nothing(
    server: Server, receiver: Receiver, body: Any, status: int, words: str
) -> None:
    hook = register(server, receiver)
    with store_of(server).engine.connect() as conn:
        sealed = conn.execute(text("SELECT secret, previous_secret FROM webhooks")).one()
    before = events(server)
    r = server.client.post(
        f"/api/webhooks/{hook}/rotate-secret",
        headers=server.as_role("platform-engineer"),
        json=body,
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json" and words in r.text
    assert "whsec_" not in r.text
    unknown = server.client.post(
        "/api/webhooks/abcdef/rotate-secret", headers=server.as_role("platform-engineer")
    )
    assert unknown.status_code == 404 and "no webhook" in unknown.json()["detail"]
    assert unknown.headers["content-type"] == "application/problem+json"
    assert events(server) == before
    with store_of(server).engine.connect() as conn:
        assert conn.execute(text("SELECT secret, previous_secret FROM webhooks")).one() == sealed


def test_without_a_webhook_key_rotation_is_refused(server: Server, receiver: Receiver) -> None:
    hook = register(server, receiver)
    before = events(server)
    store = store_of(server)
    box, store.box = store.box, None
    try:
        r = server.client.post(
            f"/api/webhooks/{hook}/rotate-secret", headers=server.as_role("platform-engineer")
        )
    finally:
        store.box = box
    assert r.status_code == 409 and "PLANTOPS_WEBHOOK_KEY" in r.json()["detail"]
    assert events(server) == before


def upgrade_from_0007_and_deliver(url: str, receiver: Receiver) -> None:
    """A database made at 0007 with a webhook and an undelivered event: migrated to the
    head, the webhook still delivers (one signature), then rotates and signs with both;
    downgraded to 0007 again, the webhook and its outbox rows are all still there."""
    from alembic import command
    from alembic.config import Config

    from plantops.store.catalog import MIGRATIONS_DIR, make_engine
    from plantops.store.server import open_server_store
    from plantops.store.webhooks import SecretBox, new_secret, open_webhook_store
    from tests.server.conftest import WEBHOOK_KEY

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = make_engine(url)
    box = SecretBox(WEBHOOK_KEY)
    secret = new_secret()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO webhooks (id, url, types, secret, key_id, created_by,"
                    " created_at, disabled_reason) VALUES ('0a0b0c0d0e0f', :url, '[]',"
                    " :secret, :key_id, 'old', :t, '')"
                ),
                {"url": receiver.url, "secret": box.seal(secret), "key_id": box.key_id, "t": now()},
            )
        receiver.secret = secret
        store = open_webhook_store(url, box)  # migrates to the head
        log = open_server_store(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                    "0008"
                )
            (hook,) = store.list_webhooks()
            assert hook.id == "0a0b0c0d0e0f" and hook.previous_until is None
            log.append_event("backup.taken", plant=SCOPED, now=now())
            d = Deliverer(store, policy=FAST, destinations=LOOPBACK)
            try:
                drain_until(d, lambda: len(receiver.accepted) == 1)
                assert len(signatures(receiver.accepted[0])) == 1
                new, _ = store.rotate_secret(
                    hook.id, overlap=dt.timedelta(hours=1), now=now(), actor="test"
                )
                drain_until(d, lambda: len(receiver.accepted) == 2)  # its rotation event
            finally:
                d.close()
            got = receiver.accepted[1]
            assert got.type == "io.plantops.webhook.secret-rotated"
            assert verifies(new, got) and verifies(secret, got)
            assert receiver.bad_signatures == 0
            rows = len(store.deliveries())
        finally:
            store.close()
            log.close()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM webhooks")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar() == rows
            cols = {c["name"] for c in inspect(conn).get_columns("webhooks")}
            assert "previous_secret" not in cols
    finally:
        engine.dispose()


def test_0008_upgrades_a_0007_database_whose_webhook_still_delivers(
    tmp_path: Path, receiver: Receiver
) -> None:
    upgrade_from_0007_and_deliver(f"sqlite:///{tmp_path}/old.db", receiver)


def test_the_webhook_key_rotates_without_losing_a_secret(
    server: Server, receiver: Receiver
) -> None:
    """PLANTOPS_WEBHOOK_KEY changed, the old one in PLANTOPS_WEBHOOK_KEY_PREVIOUS: the
    store seals every secret (current and overlapping previous) again under the new key,
    deliveries go on signed with the same secrets, and the old key can then be dropped."""
    from plantops.errors import InfrastructureError
    from plantops.services.webhooks import open_store
    from plantops.store.webhooks import SecretBox
    from tests.server.conftest import WEBHOOK_KEY

    hook = register(server, receiver, types=["backup.*"])
    r = server.client.post(
        f"/api/webhooks/{hook}/rotate-secret",
        headers=server.as_role("platform-engineer"),
        json={"overlap_hours": 1},
    )
    assert r.status_code == 200, r.text
    receiver.secret = r.json()["secret"]
    url, new_key = server.settings.db_url, "the-new-webhook-key-0123456789"
    new_id = SecretBox(new_key).key_id

    def sealed_under() -> tuple[str, str | None]:
        with store_of(server).engine.begin() as conn:
            row = conn.execute(text("SELECT key_id, previous_key_id FROM webhooks")).one()
        return row[0], row[1]

    assert sealed_under() == (SecretBox(WEBHOOK_KEY).key_id,) * 2
    write_events(server, 1, plants=(SCOPED,))
    # the new key alone cannot open them, and says how to move them
    only_new = Deliverer(open_store(url, new_key), policy=FAST, destinations=LOOPBACK)
    try:
        with pytest.raises(InfrastructureError, match="PLANTOPS_WEBHOOK_KEY_PREVIOUS"):
            only_new.drain()
    finally:
        only_new.close()
    assert receiver.requests == 0 and sealed_under()[0] != new_id
    # the rotation: opened with the old key, sealed again under the new one
    rotated = Deliverer(
        open_store(url, new_key, (WEBHOOK_KEY,)), policy=FAST, destinations=LOOPBACK
    )
    try:
        assert sealed_under() == (new_id, new_id)
        drain_until(rotated, lambda: len(receiver.accepted) == 1)
    finally:
        rotated.close()
    assert open_store(url, new_key, (WEBHOOK_KEY,)).reseal() == 0  # nothing left to move
    # the old key dropped: deliveries still signed with the same secret
    write_events(server, 1, plants=(SCOPED,))
    after = Deliverer(open_store(url, new_key), policy=FAST, destinations=LOOPBACK)
    try:
        drain_until(after, lambda: len(receiver.accepted) == 2)
    finally:
        after.close()
    assert receiver.bad_signatures == 0
    with pytest.raises(UserError, match="needs PLANTOPS_WEBHOOK_KEY"):
        open_store(url, None, (WEBHOOK_KEY,))

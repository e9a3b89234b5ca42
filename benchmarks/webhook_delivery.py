"""Webhook delivery: N events through a loopback receiver that is down (HTTP 500) half
the time, in alternating phases; counts what the receiver accepted and asserts every
event arrived exactly once per receiver (the receiver keeps each ``webhook-id`` once)
and in order per plant.

    .venv/bin/python benchmarks/webhook_delivery.py --events 10000 --plants 20

The events are written first (each with its outbox rows, in its transaction); then one
delivery worker (as ``plantops serve`` runs it) drains the outbox with a short backoff
(``--base``/``--cap``), on SQLite by default or ``--db`` PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server.webhook_receiver import Receiver, running  # noqa: E402

from plantops.services.webhooks import Deliverer, RetryPolicy, open_store  # noqa: E402
from plantops.store.server import open_server_store  # noqa: E402
from plantops.webhooks.destinations import LOOPBACK  # noqa: E402

KEY = "benchmark-webhook-key-0123456789"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--plants", type=int, default=20)
    ap.add_argument("--receivers", type=int, default=1)
    ap.add_argument("--phase", type=float, default=0.5, help="seconds up, then down, ...")
    ap.add_argument("--base", type=float, default=0.05, help="first backoff, seconds")
    ap.add_argument("--cap", type=float, default=0.5, help="longest backoff, seconds")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--db", default="", help="a database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    # every refused attempt is a warning in the server log; not here
    logging.getLogger("plantops.webhooks").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/state.db"
        log = open_server_store(url)
        store = open_store(url, KEY)
        started = time.monotonic()

        def down_half_the_time(_doc: dict[str, Any]) -> str:
            return "fail" if int((time.monotonic() - started) / args.phase) % 2 else "ok"

        receivers = [Receiver(decide=down_half_the_time) for _ in range(args.receivers)]
        contexts = [running(r) for r in receivers]
        for c in contexts:
            c.__enter__()
        try:
            for r in receivers:
                r.secret, _ = store.add_webhook(
                    url=r.url, types=["backup.*"], now=dt.datetime.now(dt.UTC)
                )
            t0 = time.perf_counter()
            for i in range(args.events):
                log.append_event(
                    "backup.taken",
                    plant=f"plant-{i % args.plants:03d}",
                    subject=f"b{i}",
                    data={"i": i},
                    now=dt.datetime.now(dt.UTC),
                )
            write_s = time.perf_counter() - t0
            policy = RetryPolicy(
                base_seconds=args.base, cap_seconds=args.cap, max_attempts=10_000, timeout_seconds=5
            )
            worker = Deliverer(store, policy=policy, workers=args.workers, destinations=LOOPBACK)
            t1 = time.perf_counter()
            started = time.monotonic()  # the phases start with delivery
            passes = 0
            try:
                while sum(len(r.accepted) for r in receivers) < args.events * args.receivers:
                    passes += 1
                    if not worker.deliver_due().claimed:
                        time.sleep(0.005)
            finally:
                worker.close()
            deliver_s = time.perf_counter() - t1
        finally:
            for c in contexts:
                c.__exit__(None, None, None)
            log.close()
            store.close()

    for r in receivers:
        ids = [a.id for a in r.accepted]
        assert len(ids) == args.events and len(set(ids)) == args.events, "not exactly once"
        assert r.duplicates == 0, f"{r.duplicates} duplicates"
        assert r.bad_signatures == 0
        for plant, seqs in r.by_plant().items():
            assert seqs == sorted(seqs), f"out of order for {plant}"
        assert len(r.by_plant()) == min(args.plants, args.events)
    requests = sum(r.requests for r in receivers)
    accepted = sum(len(r.accepted) for r in receivers)
    print(
        f"events: {args.events} over {args.plants} plants, {args.receivers} receiver(s), "
        f"down half the time ({args.phase:g} s phases), db {url.split(':')[0]}"
    )
    print(f"write (event + outbox rows): {write_s:.1f} s ({args.events / write_s:.0f} events/s)")
    print(
        f"deliver: {deliver_s:.1f} s, {accepted} accepted exactly once and in order per plant "
        f"({accepted / deliver_s:.0f}/s), {requests} requests ({requests - accepted} refused "
        f"while down), 0 duplicates, {passes} passes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

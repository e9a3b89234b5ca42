"""A real webhook receiver on loopback (``http.server``, one thread per request) for the
webhook tests and the delivery benchmark.

It verifies every request with :func:`plantops.webhooks.signing.verify_signature` (a bad
one gets 400 and is counted), keeps each ``webhook-id`` once (a repeat is a duplicate,
answered 204 and not processed again), and can be told to answer 500 (``fail``), to
process the request but answer only after ``hang_seconds`` (``hang``: the sender times
out first, and its retry is a duplicate), or 410 (``gone``). ``decide`` overrides the
mode per request (the benchmark's "down half the time").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from plantops.webhooks.signing import WebhookVerificationError, verify_signature


@dataclass
class Received:
    id: str
    plant: str
    sequence: int
    type: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    secret: str = ""
    mode: str = "ok"  # ok | fail | hang | gone
    drip_body: bool = False  # answer with a 1 GiB body sent a byte every 0.1 s
    hang_seconds: float = 1.0
    decide: Callable[[dict[str, Any]], str] | None = None
    accepted: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    attempted_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    requests: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    clock: Callable[[], float] = time.time  # the receiver's Unix time (tests shift it)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests += 1
        try:
            msg_id = verify_signature(self.secret, headers, body, now=self.clock())
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 400
        doc = json.loads(body)
        mode = self.decide(doc) if self.decide is not None else self.mode
        with self.lock:
            self.attempted_ids.append(msg_id)
        if mode == "fail":
            return 500
        if mode == "gone":
            return 410
        with self.lock:
            if msg_id in self.seen:
                self.duplicates += 1
                return 204
            self.seen.add(msg_id)
            self.accepted.append(
                Received(
                    msg_id,
                    doc.get("plant", ""),
                    int(doc["sequence"]),
                    doc["type"],
                    doc,
                    body,
                    headers,
                )
            )
        if mode == "hang":
            time.sleep(self.hang_seconds)
        return 204

    def by_plant(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for r in self.accepted:
            out.setdefault(r.plant, []).append(r.sequence)
        return out


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            if receiver.drip_body and status == 204:
                status = 200  # a 204 has no body: a client would not read one anyway
            try:
                self.send_response(status)
                self.send_header("content-length", str(1 << 30 if receiver.drip_body else 0))
                self.end_headers()
                for _ in range(100 if receiver.drip_body else 0):  # ~10 s, then hang up
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
                if receiver.drip_body:
                    self.close_connection = True
            except OSError:  # the sender gave up (timed out, or read no body) meanwhile
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

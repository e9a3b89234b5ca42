"""Delivering the outbox to webhooks (the I/O edge of the event stream).

One pass (:meth:`Deliverer.deliver_due`) leases due deliveries as runs
(``WebhookStore.claim``: the head of each (webhook, plant) queue and the events after
it, under a lease that expires; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends the
runs at once on a thread pool, each run in order, stopping a run at its first failure,
and records every outcome in one transaction. A 2xx marks the row delivered; anything
else is a failed attempt: ``RetryPolicy.delay`` doubles from ``base_seconds`` up to
``cap_seconds`` with jitter (between half and all of it), or the receiver's
``Retry-After`` when that is longer; after ``max_attempts`` the row is ``dead`` and holds
its queue until redriven. ``410 Gone`` disables the webhook (Standard Webhooks,
"Delivery success and failure"). Redirects are not followed (a failure naming it).

While a rotated webhook's previous secret has not expired, each request is signed with
both (``webhook-signature: v1,<new> v1,<old>``); the claim decides, at the pass's clock.

Every attempt of one event carries the same ``webhook-id`` (the CloudEvents id), the
receiver's idempotency key; a worker that dies after the receiver's 2xx but before the
record commits leaves leases that expire, and the event is sent again with that id.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from plantops import __version__
from plantops.errors import InfrastructureError
from plantops.store.webhooks import Job, Result, WebhookStore
from plantops.webhooks.destinations import Destinations, Resolver, resolve
from plantops.webhooks.envelope import envelope
from plantops.webhooks.signing import sign_headers

log = logging.getLogger("plantops.webhooks")
USER_AGENT = f"plantops/{__version__} (webhooks)"
PRUNE_EVERY_SECONDS = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    max_attempts: int = 12  # about 4.5 hours of retries with the defaults, then dead
    timeout_seconds: float = 15.0  # per request (Standard Webhooks: 15 to 30 s)

    @property
    def lease_seconds(self) -> float:
        """How long a claim is held: several requests of a run, then recording them; a
        worker that dies holds its rows this long at most."""
        return self.timeout_seconds * 4 + 10

    def delay(self, attempts: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds before the next attempt after ``attempts`` failed (``rand`` in [0, 1))."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        delay = ceiling / 2 + ceiling / 2 * rand
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_seconds))
        return delay


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""
    gone: bool = False
    retry_after: float | None = None


def outcome_of(status: int, headers: httpx.Headers) -> Outcome:
    """What a receiver's answer means (pure)."""
    if 200 <= status < 300:
        return Outcome(True, status)
    retry_after = None
    raw = headers.get("retry-after", "").strip()
    if raw.isdigit():
        retry_after = float(raw)
    what = "a redirect (not followed: update the URL)" if 300 <= status < 400 else "not a 2xx"
    return Outcome(
        False, status, f"HTTP {status}: {what}", gone=status == 410, retry_after=retry_after
    )


@dataclass
class DeliveryReport:
    """What passes did: deliveries acknowledged, failed attempts, rows given up (dead)."""

    delivered: int = 0
    failures: int = 0
    dead: int = 0
    claimed: int = 0

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.failures += other.failures
        self.dead += other.dead
        self.claimed += other.claimed


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pinned(url: str, address: str) -> tuple[str, dict[str, Any]]:
    """``url`` with its host replaced by ``address`` (already checked), and the request
    extensions that keep TLS honest: httpcore sends ``sni_hostname`` as the TLS server
    name and verifies the certificate against it (``httpcore._async.connection``,
    ``server_hostname = sni_hostname or origin.host``), so an https receiver is still
    proved to be the named host. An IP literal URL is sent as it is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return url, {}
    except ValueError:
        pass
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    if parts.username or parts.password:
        return url, {}  # credentials in a webhook URL are refused at registration
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), extensions


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host if parts.port is None else f"{host}:{parts.port}"


class Deliverer:
    """Sends one store's outbox. ``owner`` names this worker in the leases (unique per
    instance); ``workers`` requests go out at once, each to a different queue."""

    def __init__(
        self,
        store: WebhookStore,
        *,
        policy: RetryPolicy | None = None,
        workers: int = 8,
        batch: int = 100,
        run_length: int = 50,
        keep_delivered: dt.timedelta = dt.timedelta(days=7),
        clock: Callable[[], dt.datetime] = utcnow,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
        destinations: Destinations | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.store = store
        # public addresses only unless networks are allowed (webhooks/destinations.py)
        self.destinations = destinations or Destinations()
        self.resolver = resolver
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self.run_length = max(run_length, 1)
        self.keep_delivered = keep_delivered  # delivered rows older than this are pruned
        self.clock = clock
        self.rng = rng
        self.owner = f"worker-{secrets.token_hex(6)}"
        self.client = httpx.Client(
            timeout=self.policy.timeout_seconds,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
            limits=httpx.Limits(max_connections=max(workers, 1) * 2),
        )
        self.pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="plantops-webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        try:
            self.store.release(self.owner)
        except InfrastructureError as exc:  # the leases expire by themselves
            log.warning("webhook delivery: leases not released: %s", exc)
        self.client.close()

    # --- one pass -------------------------------------------------------------------
    def deliver_due(self) -> DeliveryReport:
        """Lease what is due, send each run (one queue's next events, in order) on the
        pool, and record every outcome of the pass in one transaction."""
        claimed_at = time.monotonic()
        runs = self.store.claim(
            self.owner,
            now=self.clock(),
            lease_seconds=self.policy.lease_seconds,
            limit=self.batch,
            run=self.run_length,
        )
        report = DeliveryReport(claimed=sum(len(r) for r in runs))
        if not runs:
            return report
        # the last request of a run starts early enough to end, and be recorded, in the lease
        start_by = claimed_at + self.policy.lease_seconds - self.policy.timeout_seconds - 5
        results: list[Result] = []
        for part in self.pool.map(lambda run: self._send_run(run, start_by), runs):
            results += part
        self.store.record(self.owner, results, now=self.clock())
        for r in results:
            report.delivered += r.ok
            report.failures += not r.ok and not r.unsent
            report.dead += not r.ok and not r.unsent and r.retry_at is None
        return report

    def _send_run(self, run: list[Job], start_by: float) -> list[Result]:
        results: list[Result] = []
        for i, job in enumerate(run):
            if time.monotonic() > start_by:
                return results + [Result(j.delivery_id, j.webhook_id, unsent=True) for j in run[i:]]
            outcome = self.send(job)
            if outcome.ok:
                results.append(
                    Result(job.delivery_id, job.webhook_id, ok=True, status=outcome.status)
                )
                continue
            results.append(self._failure(job, outcome))
            # the rest of the queue waits for this one (order per plant)
            return results + [
                Result(j.delivery_id, j.webhook_id, unsent=True) for j in run[i + 1 :]
            ]
        return results

    def _failure(self, job: Job, outcome: Outcome) -> Result:
        attempts = job.attempts + 1
        dead = attempts >= self.policy.max_attempts
        error = f"event {job.event.id}: {outcome.error}"
        retry_at = None
        if not dead:
            delay = self.policy.delay(attempts, self.rng(), outcome.retry_after)
            retry_at = self.clock() + dt.timedelta(seconds=delay)
        # the URL may carry a token in its query: log the webhook id only
        log.warning(
            "webhook %s: %s; attempt %d of %d failed%s",
            job.webhook_id, error, attempts, self.policy.max_attempts,
            ", giving up (dead)" if dead else f", next at {retry_at:%H:%M:%S.%f}",
        )  # fmt: skip
        return Result(
            job.delivery_id,
            job.webhook_id,
            status=outcome.status,
            error=error,
            retry_at=retry_at,
            gone=outcome.gone,
        )

    def send(self, job: Job) -> Outcome:
        env = envelope(job.event)
        timestamp = int(self.clock().timestamp())
        headers = {**env.headers, **sign_headers(job.secrets, env.id, timestamp, env.body)}
        refused, address = self._checked_address(job.url)
        if refused:
            return Outcome(False, error=refused)
        url, extensions = pinned(job.url, address)
        if url != job.url:
            headers["Host"] = _host_header(job.url)
        try:
            # the status and headers are the answer: the body is never read, so a
            # receiver answering with gigabytes (or dripping them) costs nothing here
            with self.client.stream(
                "POST", url, content=env.body, headers=headers, extensions=extensions
            ) as r:
                return outcome_of(r.status_code, r.headers)
        except httpx.TimeoutException:
            return Outcome(False, error=f"timed out after {self.policy.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:300])

    def _checked_address(self, url: str) -> tuple[str, str]:
        """Why ``url``'s host may not be sent to now (what it resolves to), or "" and the
        address the request must go to: the one just checked. Connecting by the name
        would resolve it again, and a DNS answer that changed in between (rebinding, a
        TTL of 0) would reach an address nobody checked."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolver(parts.hostname or "", port)
        except OSError as exc:
            return f"cannot resolve the receiver's host: {exc.strerror or exc}", ""
        refused = self.destinations.check_resolved(addresses)
        return refused, ("" if refused else addresses[0])

    # --- loops --------------------------------------------------------------------------
    def drain(self, *, idle_passes: int = 1, max_passes: int = 1_000_000) -> DeliveryReport:
        """Passes until one claims nothing (caught up, or everything backing off)."""
        total = DeliveryReport()
        idle = 0
        for _ in range(max_passes):
            report = self.deliver_due()
            total.add(report)
            idle = idle + 1 if not report.claimed else 0
            if idle >= idle_passes:
                break
        return total

    def run(self, stop: threading.Event, *, poll_seconds: float = 0.5) -> DeliveryReport:
        """Deliver until ``stop`` is set, looking for due rows every ``poll_seconds`` when
        a pass found none."""
        total = DeliveryReport()
        pruned_at = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - pruned_at > PRUNE_EVERY_SECONDS:
                    pruned_at = time.monotonic()
                    self.store.prune(before=self.clock() - self.keep_delivered)
                report = self.deliver_due()
            except InfrastructureError as exc:
                log.warning("webhook delivery: %s", exc)
                stop.wait(max(poll_seconds, 1.0))
                continue
            total.add(report)
            if not report.claimed:
                stop.wait(poll_seconds)
        return total

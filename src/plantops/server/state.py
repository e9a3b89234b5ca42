"""What one server process holds: its settings, the store and a cached fleet snapshot.

The snapshot (``fleetview.fleet_snapshot``) is rebuilt when a file of the fleet
repository changes (size or mtime), checked at most once per ``RECHECK_SECONDS``; the
policy result likewise. Every process holds its own cache: nothing here is shared
state, so any number of processes may serve one database.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from plantops import services
from plantops.services import fleetview
from plantops.services import webhooks as webhook_services
from plantops.services.webhooks import BackgroundDelivery, RetryPolicy
from plantops.store import Catalog
from plantops.store.catalog import make_engine
from plantops.store.server import ServerStore, open_server_store

RECHECK_SECONDS = 2.0
log = logging.getLogger("plantops.server")
# Event and ledger ids are 64-bit integers in both databases: cursors stop there.
MAX_CURSOR = 2**63 - 1
T = TypeVar("T")


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    role_claim: str = "plantops_role"
    plants_claim: str = "plantops_plants"


@dataclass(frozen=True)
class ServerSettings:
    fleet: Path
    db_url: str
    out: Path
    session_secret: str
    oidc: OidcSettings | None = None
    secure_cookies: bool = True
    page_size: int = 50
    locks: Path | None = None  # release locks (`--locks`); default: next to ``out``
    # seals webhook signing secrets at rest (PLANTOPS_WEBHOOK_KEY; the same on every
    # process of one database); without it webhooks cannot be registered or delivered
    webhook_key: str | None = None
    # keys the secrets may still be sealed under (PLANTOPS_WEBHOOK_KEY_PREVIOUS): opened,
    # and sealed again under webhook_key at start — a key rotation
    webhook_previous_keys: tuple[str, ...] = ()
    deliver_webhooks: bool = True  # run the webhook delivery loop in this process
    webhook_retry: RetryPolicy | None = None  # default: RetryPolicy()
    webhook_poll_seconds: float = 0.5
    # networks webhooks may be delivered to besides public addresses (CIDRs; loopback,
    # private and link-local are refused otherwise: webhooks/destinations.py)
    webhook_allow_networks: tuple[str, ...] = ()
    # The fleet page starts ``plantops check`` in the background when its result is not
    # current; False leaves that to GET /api/policy (tests that must not spend minutes).
    background_policy: bool = True

    @property
    def locks_dir(self) -> Path:
        return self.locks if self.locks is not None else self.out.parent / "locks"


def fleet_fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of every YAML file of the fleet repository."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.endswith((".yaml", ".yml")):
                st = Path(dirpath, name).stat()
                found.append((str(Path(dirpath, name)), st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


@dataclass
class Cached(Generic[T]):
    """One value computed from the fleet repository, recomputed when it changes."""

    root: Path
    compute: Callable[[dt.date], T]
    _value: T | None = None
    _key: object = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _worker: threading.Thread | None = None

    def get(self, today: dt.date) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is not None and now - self._checked < RECHECK_SECONDS:
                return self._value
            key = (today, fleet_fingerprint(self.root))
            self._checked = now
            if self._value is None or key != self._key:
                self._value = self.compute(today)
                self._key = key
            return self._value

    def peek(self, today: dt.date, *, start: bool = True) -> T | None:
        """The value if it is computed and current, else None — and then (``start``) it
        is computed in the background, one thread at a time, so a page never waits."""
        if not self._lock.acquire(blocking=False):
            return None  # being computed (``get`` holds the lock meanwhile)
        try:
            now = time.monotonic()
            fresh = self._value is not None and now - self._checked < RECHECK_SECONDS
            if not fresh and self._value is not None:
                # one walk of the fleet per RECHECK_SECONDS, not one per page view
                fresh = self._key == (today, fleet_fingerprint(self.root))
                if fresh:
                    self._checked = now
            if fresh:
                return self._value
            if start and (self._worker is None or not self._worker.is_alive()):
                self._worker = threading.Thread(
                    target=self._background, args=(today,), name="plantops-cache", daemon=True
                )
                self._worker.start()
            return None
        finally:
            self._lock.release()

    def _background(self, today: dt.date) -> None:
        try:
            self.get(today)
        except Exception:  # the route that needs it (GET /api/policy) reports the error
            log.exception("computing a cached view of %s failed", self.root)


class AnswerCache:
    """Serialized answers (response bodies) of the current fleet snapshot, by request key.

    The key is the caller's: query parameters and the principal's plant scope, so two
    callers share an entry only if they are entitled to the same answer. Bounded by
    entries and by bytes (least recently used out first) and emptied when a request
    brings another snapshot: an answer is never served from an older snapshot than the
    one the request read.
    """

    def __init__(self, size: int = 256, max_bytes: int = 32 * 2**20) -> None:
        self.size = size  # entries
        self.max_bytes = max_bytes  # bodies together (a 1,000-row page is ~320 KB)
        self._snapshot: object = None
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, snapshot: object, key: Hashable, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            if snapshot is self._snapshot:
                hit = self._answers.get(key)
                if hit is not None:
                    self._answers.move_to_end(key)
                    return hit
        body = render()  # outside the lock: other keys are not held up
        with self._lock:
            if snapshot is not self._snapshot:
                self._snapshot = snapshot  # one snapshot at a time is current
                self._answers.clear()
                self._bytes = 0
            if len(body) > self.max_bytes:
                return body  # sent, not kept
            self._bytes += len(body) - len(self._answers.pop(key, b""))
            self._answers[key] = body
            while len(self._answers) > self.size or self._bytes > self.max_bytes:
                self._bytes -= len(self._answers.popitem(last=False)[1])
        return body

    def __len__(self) -> int:
        return len(self._answers)


class ServerState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.store: ServerStore = open_server_store(settings.db_url)
        self.catalog = Catalog(make_engine(settings.db_url))
        self.webhooks = webhook_services.open_store(
            settings.db_url, settings.webhook_key, settings.webhook_previous_keys
        )
        self.destinations = webhook_services.destinations(settings.webhook_allow_networks)
        self.delivery: BackgroundDelivery | None = None
        root = settings.fleet
        self.snapshot: Cached[fleetview.FleetSnapshot] = Cached(
            root, lambda today: fleetview.fleet_snapshot(root, today=today)
        )
        self.answers = AnswerCache()
        # typed by inference: the server names no check module (import contract)
        self.policy = Cached(root, lambda today: self._check_and_record(root, today))

    def _check_and_record(self, root: Path, today: dt.date) -> Any:
        """``plantops check`` on the fleet, then a ``policy.checked`` event (the policy
        result, for the feed and webhooks): counts in force and failing, per plant and
        environment. Recorded each time the check runs, i.e. when the fleet changed."""
        result = services.check_target(root, today=today)
        per: dict[str, dict[str, list[int]]] = {}
        failing = {id(f) for f in result.failing}
        for f in result.findings:
            counts = per.setdefault(f.plant, {}).setdefault(f.environment, [0, 0])
            counts[0] += 1
            counts[1] += id(f) in failing
        self.store.append_event(
            "policy.checked",
            subject=today.isoformat(),  # the date exceptions were judged against
            data={
                "ok": result.ok,
                "findings": len(result.findings),
                "failing": len(result.failing),
                "suppressed": len(result.suppressed),
                "rules": len(result.rules),
                "objects": result.objects,
                "units": {
                    unit: {env: {"open": c[0], "failing": c[1]} for env, c in sorted(e.items())}
                    for unit, e in sorted(per.items())
                },
            },
            now=utcnow(),
        )
        return result

    def start_delivery(self) -> None:
        """The webhook delivery loop, on its own thread (started in the app lifespan)."""
        if self.settings.deliver_webhooks and self.webhooks.box and self.delivery is None:
            self.delivery = BackgroundDelivery(
                self.webhooks,
                policy=self.settings.webhook_retry,
                poll_seconds=self.settings.webhook_poll_seconds,
                allowed=self.destinations,
            )
            self.delivery.start()

    def close(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None
        self.store.close()
        self.catalog.close()
        self.webhooks.close()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    return utcnow().date()

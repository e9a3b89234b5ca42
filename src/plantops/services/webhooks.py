"""Webhooks of the platform event stream: the server's ``/api/webhooks`` and its
background delivery (docs/server.md, "Webhooks").

The delivery loop (:class:`BackgroundDelivery`) is what ``plantops serve`` starts in its
lifespan; :func:`deliver` drains the outbox once (the benchmark and tests use it).
"""

from __future__ import annotations

import logging
import threading

from plantops.errors import UserError
from plantops.store.webhooks import (
    DeliveryRecord,
    SecretBox,
    WebhookRecord,
    WebhookStore,
    open_webhook_store,
)
from plantops.webhooks.delivery import Deliverer, DeliveryReport, RetryPolicy
from plantops.webhooks.destinations import Destinations, parse_networks
from plantops.webhooks.signing import WebhookVerificationError, verify_signature

__all__ = [
    "BackgroundDelivery",
    "Deliverer",
    "DeliveryRecord",
    "DeliveryReport",
    "Destinations",
    "RetryPolicy",
    "SecretBox",
    "WebhookRecord",
    "WebhookStore",
    "WebhookVerificationError",
    "deliver",
    "destinations",
    "open_store",
    "verify_signature",
]
log = logging.getLogger("plantops.webhooks")


def open_store(
    db_url: str, webhook_key: str | None, previous_keys: tuple[str, ...] = ()
) -> WebhookStore:
    """The webhook store of the state database at ``db_url`` (migrated); without a
    ``webhook_key`` webhooks can be listed and removed, not registered or delivered.
    With ``previous_keys`` (a key rotation), secrets sealed under them are sealed again
    under ``webhook_key`` now."""
    if previous_keys and not webhook_key:
        raise UserError("PLANTOPS_WEBHOOK_KEY_PREVIOUS needs PLANTOPS_WEBHOOK_KEY (the new key)")
    box = SecretBox(webhook_key, previous_keys) if webhook_key else None
    store = open_webhook_store(db_url, box)
    if box is not None and box.previous_ids:
        moved = store.reseal()
        log.info("webhook key rotation: %d webhook(s) sealed again under key %s", moved, box.key_id)
    return store


def destinations(allow_networks: tuple[str, ...] = ()) -> Destinations:
    """Where webhooks may go: public addresses, plus ``allow_networks`` (CIDRs)."""
    return Destinations(parse_networks(allow_networks))


def deliver(
    store: WebhookStore,
    *,
    policy: RetryPolicy | None = None,
    workers: int = 8,
    allowed: Destinations | None = None,
) -> DeliveryReport:
    """Send what is due until a pass finds nothing (caught up, or all backing off)."""
    deliverer = Deliverer(store, policy=policy, workers=workers, destinations=allowed)
    try:
        return deliverer.drain()
    finally:
        deliverer.close()


class BackgroundDelivery:
    """The delivery loop on a thread of its own (``plantops serve`` starts one per
    process; leases keep two processes from sending one delivery at once)."""

    def __init__(
        self,
        store: WebhookStore,
        *,
        policy: RetryPolicy | None = None,
        poll_seconds: float = 0.5,
        workers: int = 8,
        allowed: Destinations | None = None,
    ) -> None:
        self.deliverer = Deliverer(store, policy=policy, workers=workers, destinations=allowed)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="plantops-webhook-delivery", daemon=True
        )

    def _run(self) -> None:
        try:
            self.deliverer.run(self._stop, poll_seconds=self.poll_seconds)
        except Exception:  # the server keeps serving; the log says why delivery stopped
            log.exception("webhook delivery stopped")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.deliverer.close()

"""An event of the log as a CloudEvents 1.0 structured-mode JSON request (pure).

Built with the ``cloudevents`` SDK (``cloudevents.core.v1.event.CloudEvent`` and
``cloudevents.core.bindings.http.to_structured_event``). The CloudEvents ``id`` is
derived from the event row alone, so every redelivery of an event carries the same id;
it is also the ``webhook-id`` header, the receiver's idempotency key. ``sequence`` (the
CloudEvents Sequence extension) is the database id zero-padded, so it orders as text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from plantops.store.server import EventRecord

TYPE_PREFIX = "io.plantops."
SOURCE = "/plantops"


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    body: bytes
    headers: dict[str, str]


def message_id(event: EventRecord) -> str:
    """``evt_<db id>_<digest>``: the digest of the row's immutable fields keeps ids of two
    databases (a rebuilt one, say) from colliding at a receiver that remembers them."""
    seed = f"{event.id}|{event.type}|{event.time.isoformat()}|{event.subject}|{event.plant}"
    return f"evt_{event.id}_{hashlib.sha256(seed.encode()).hexdigest()[:12]}"


def source_of(event: EventRecord) -> str:
    return f"{SOURCE}/plants/{event.plant}" if event.plant else SOURCE


def cloud_event(event: EventRecord) -> CloudEvent:
    attributes: dict[str, object] = {
        "specversion": "1.0",
        "id": message_id(event),
        "source": source_of(event),
        "type": TYPE_PREFIX + event.type,
        "time": event.time,
        "datacontenttype": "application/json",
        "sequence": f"{event.id:020d}",
    }
    if event.subject:
        attributes["subject"] = event.subject
    if event.plant:
        attributes["plant"] = event.plant
    if event.actor:
        attributes["actor"] = event.actor
    return CloudEvent(attributes, dict(event.data))


def envelope(event: EventRecord) -> Envelope:
    message = to_structured_event(cloud_event(event))
    return Envelope(message_id(event), TYPE_PREFIX + event.type, message.body, message.headers)

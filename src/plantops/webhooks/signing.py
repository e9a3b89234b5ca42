"""Standard Webhooks signatures (pure): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``, keyed
by the base64-decoded part of the ``whsec_`` secret (spec/standard-webhooks.md,
"Signature scheme" and "Webhook headers", standard-webhooks/standard-webhooks).

:func:`verify_signature` is what a receiver runs: every ``v1`` signature of the
space-separated header is compared in constant time, and a timestamp outside the
tolerance (either way) is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request is not a valid, fresh signed webhook (the message says which part)."""


def secret_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' and base64") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(
    secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers, signed with ``secret`` or with each of several (a rotation's
    overlap: the new one first, then the old): the spec's ``webhook-signature`` is a
    space-delimited list, and a receiver accepts any signature that verifies with its
    secret (spec/standard-webhooks.md, "Verifying webhook authenticity")."""
    keys = (secret,) if isinstance(secret, str) else tuple(secret)
    if not keys:
        raise ValueError("a webhook is signed with at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
    }


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """The verified ``webhook-id`` of a request (``headers`` looked up lower-case), or
    :class:`WebhookVerificationError`. ``now`` is the receiver's Unix time."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "")
    raw_ts = lower.get("webhook-timestamp", "")
    sent = lower.get("webhook-signature", "")
    if not msg_id or not raw_ts or not sent:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        raise WebhookVerificationError(f"webhook-timestamp {raw_ts[:20]!r} is not Unix seconds")
    timestamp = int(raw_ts)
    if timestamp < now - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(now - timestamp)} s old (tolerance {tolerance} s): "
            "a replay, or a clock off"
        )
    if timestamp > now + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(timestamp - now)} s in the future (tolerance {tolerance} s)"
        )
    expected = signature(secret, msg_id, timestamp, body).encode()
    for candidate in sent.split():
        version, _, _value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no v1 signature matches the body")

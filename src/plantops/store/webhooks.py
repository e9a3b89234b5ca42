"""Registered webhooks and their outbox of deliveries (the event stream, docs/server.md).

The outbox: every event row is written with one ``webhook_deliveries`` row per enabled
webhook that wants its type, in the same transaction (:func:`plantops.store.events.
fan_out`), so a delivery exists exactly when its event committed. The delivery worker
:meth:`WebhookStore.claim`\\ s due rows under a lease (``lease_owner``,
``lease_expires_at``), sends them, and marks each ``delivered`` after a 2xx, or records
the failed attempt (``pending`` again at ``next_attempt_at``, or ``dead`` after the last
attempt). A lease that expires (its worker died) makes the row claimable again, so a
restarted or second server picks it up; the receiver sees the same ``webhook-id`` and
drops the duplicate.

Order: a row is claimable only when every earlier row of its queue (same webhook, same
plant) is ``delivered``, so a receiver never gets event N+1 of a plant before N was
acknowledged, and a ``dead`` row holds its queue until it is redriven. On PostgreSQL the
claim is ``SELECT … FOR UPDATE SKIP LOCKED``, so two server processes never lease one
row; SQLite serialises writers itself.

The signing secret must be recoverable to sign, so it cannot be hashed like an API
token: it is stored encrypted (Fernet, keyed by HKDF-SHA256 of the server's webhook key,
:class:`SecretBox`), returned once by :meth:`WebhookStore.add_webhook` and never in a
:class:`WebhookRecord`. Secrets are Standard Webhooks secrets: ``whsec_`` and the base64
of 32 random bytes (the key is the decoded part).

Rotation (:meth:`WebhookStore.rotate_secret`) seals a new secret and keeps the one it
replaces, sealed too, until ``previous_until``; until then :meth:`WebhookStore.claim`
hands the worker both, and every delivery carries both signatures.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from plantops.errors import InfrastructureError, NotFound, UserError
from plantops.store.catalog import SessionRepository, make_engine, migrate
from plantops.store.events import Event, event_order_lock, event_row, wants
from plantops.store.models import Base
from plantops.store.server import EVENT_TYPES, EventRecord, event_record

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: at least 24 bytes, at most 64
MAX_URL = 2000
MAX_TYPES = 50
STATUSES = ("pending", "delivered", "dead")
OPEN = ("pending", "dead")  # not delivered: such a row holds the rows after it


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(Text)  # Fernet token of the whsec_ secret
    key_id: Mapped[str] = mapped_column(String(16))  # which webhook key sealed it
    # the secret before the last rotation, still signed with until ``previous_until``
    previous_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")


class Delivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    plant: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fernet_and_id(key: str) -> tuple[Fernet, str]:
    if len(key) < 16:
        raise UserError("the webhook key (PLANTOPS_WEBHOOK_KEY) needs at least 16 characters")
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"plantops webhook secrets"
    ).derive(key.encode())
    return Fernet(base64.urlsafe_b64encode(raw)), hashlib.sha256(
        b"plantops key id" + raw
    ).hexdigest()[:16]


class SecretBox:
    """Seals webhook secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key
    derived from the server's webhook key (``PLANTOPS_WEBHOOK_KEY``) by HKDF-SHA256.
    ``key_id`` names the key (a digest, not the key), so a server started with another
    key says so instead of failing every signature.

    Rotating the key: start the servers with the new key and the old one in
    ``previous`` (``PLANTOPS_WEBHOOK_KEY_PREVIOUS``). Secrets sealed under a previous
    key still open, and :meth:`WebhookStore.reseal` seals them again under the new key
    (the server does it at start), after which the old key may be dropped."""

    def __init__(self, key: str, previous: tuple[str, ...] = ()) -> None:
        self._fernet, self.key_id = _fernet_and_id(key)
        self._previous: dict[str, Fernet] = {}
        for old in previous:
            fernet, key_id = _fernet_and_id(old)
            if key_id != self.key_id:
                self._previous[key_id] = fernet

    @property
    def previous_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._previous))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str, key_id: str) -> str:
        fernet = self._fernet if key_id == self.key_id else self._previous.get(key_id)
        if fernet is None:
            raise InfrastructureError(
                f"the webhook secret was sealed with key {key_id}, this server has key "
                f"{self.key_id}: start it with the PLANTOPS_WEBHOOK_KEY it was registered "
                "under, or with that key in PLANTOPS_WEBHOOK_KEY_PREVIOUS to move it to the new one"
            )
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise InfrastructureError("a webhook secret does not decrypt (altered?)") from exc


@dataclass(frozen=True)
class WebhookRecord:
    """A webhook without its secret (what lists and logs may show), with its outbox
    counts by status."""

    id: str
    url: str
    types: tuple[str, ...]
    created_by: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str
    previous_until: datetime | None = None  # the previous secret signs too until then
    pending: int = 0
    delivered: int = 0
    dead: int = 0

    def wants(self, event_type: str) -> bool:
        return wants(self.types, event_type)


@dataclass(frozen=True)
class Job:
    """A delivery leased to a worker: where to send which event, signed with what."""

    delivery_id: int
    webhook_id: str
    url: str
    secrets: tuple[str, ...]  # sign with each: the current one first, then the previous
    attempts: int
    event: EventRecord


@dataclass(frozen=True)
class Result:
    """What became of a leased delivery: acknowledged (``ok``), failed (``retry_at``, or
    None when that was the last attempt; ``gone`` for a 410), or ``unsent`` (its run
    stopped before it)."""

    delivery_id: int
    webhook_id: str
    ok: bool = False
    status: int | None = None
    error: str = ""
    retry_at: datetime | None = None
    gone: bool = False
    unsent: bool = False


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    webhook_id: str
    event_id: int
    plant: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str
    delivered_at: datetime | None


def _record(w: Webhook, counts: dict[str, int] | None = None) -> WebhookRecord:
    c = counts or {}
    return WebhookRecord(
        id=w.id,
        url=w.url,
        types=tuple(w.types or ()),
        created_by=w.created_by,
        created_at=_utc(w.created_at) or w.created_at,
        disabled_at=_utc(w.disabled_at),
        disabled_reason=w.disabled_reason,
        previous_until=_utc(w.previous_until) if w.previous_secret else None,
        pending=c.get("pending", 0),
        delivered=c.get("delivered", 0),
        dead=c.get("dead", 0),
    )


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host and no credentials."""
    if len(url) > MAX_URL:
        raise UserError(f"webhook URL is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UserError("webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise UserError(f"webhook URL {url[:100]!r} is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"webhook URL {url[:100]!r}: give an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UserError(
            "webhook URL must not carry credentials (user:password@); receivers verify "
            "the webhook-signature header instead"
        )
    if parts.fragment:
        raise UserError(f"webhook URL {url[:100]!r} has a #fragment, which is never sent")
    return url


def check_types(types: Sequence[str]) -> list[str]:
    """Event types a webhook receives: known types (``backup.taken``, or the CloudEvents
    form ``io.plantops.backup.taken``) or families (``backup.*``); none means all."""
    if len(types) > MAX_TYPES:
        raise UserError(f"a webhook takes at most {MAX_TYPES} event types")
    families = {t.split(".", 1)[0] for t in EVENT_TYPES}
    out = set()
    for raw in types:
        t = raw.strip().removeprefix("io.plantops.")
        family = t[:-2] if t.endswith(".*") else None
        if t not in EVENT_TYPES and family not in families:
            known = ", ".join(EVENT_TYPES)
            raise UserError(
                f"event type {raw[:80]!r} is not one plantops writes; use one of {known}, "
                "or a family such as backup.*"
            )
        out.add(t)
    return sorted(out)


def signing_secrets(box: SecretBox, w: Webhook, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery to ``w`` is signed with at ``now``: the current one, and the
    previous one while its overlap lasts (Standard Webhooks lets ``webhook-signature``
    list several, space-delimited; a receiver accepts any that verifies)."""
    current = box.open(w.secret, w.key_id)
    until = _utc(w.previous_until)
    if w.previous_secret and w.previous_key_id and until is not None and now < until:
        return current, box.open(w.previous_secret, w.previous_key_id)
    return (current,)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _wanted_ids(types: Sequence[str]) -> Select[int]:
    """The ids of the events a type filter takes (as :func:`plantops.store.events.wants`)."""
    q = select(Event.id)
    if types:
        conds = [
            Event.type.startswith(t[:-1]) if t.endswith(".*") else Event.type == t for t in types
        ]
        q = q.where(or_(*conds))
    return q


def _not_found(webhook_id: str) -> NotFound:
    return NotFound(f"no webhook with id {webhook_id[:40]!r}; see GET /api/webhooks")


class WebhookStore(SessionRepository):
    """Repository over ``webhooks`` and ``webhook_deliveries`` (and reads of ``events``).

    ``box`` seals and opens signing secrets; without one, webhooks can be listed and
    removed but not registered or delivered to."""

    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        super().__init__(engine)
        self.box = box

    def _box(self) -> SecretBox:
        if self.box is None:
            raise UserError(
                "webhooks need a webhook key to seal their signing secrets: start the "
                "server with PLANTOPS_WEBHOOK_KEY set (the same on every server process)"
            )
        return self.box

    # --- registration -------------------------------------------------------------------
    def add_webhook(
        self,
        *,
        url: str,
        types: Sequence[str] = (),
        now: datetime,
        actor: str = "",
        replay: bool = False,
    ) -> tuple[str, WebhookRecord]:
        """A new webhook: (its signing secret, shown once; its record). It receives the
        events committed from now on, starting with its own ``webhook.created``; with
        ``replay`` the whole log before it too."""
        box = self._box()
        webhook_id = secrets.token_hex(6)
        secret = new_secret()
        hook = Webhook(
            id=webhook_id,
            url=check_url(url),
            types=check_types(types),
            secret=box.seal(secret),
            key_id=box.key_id,
            created_by=actor,
            created_at=now,
            disabled_at=None,
            disabled_reason="",
        )
        with self._session() as s:
            # under the event order lock no event id is allocated but uncommitted: the
            # replayed ones are exactly the committed log, and later ones fan out to it
            event_order_lock(s)
            s.add(hook)
            s.flush()
            if replay:
                picked = select(
                    literal(webhook_id),
                    Event.id,
                    Event.plant,
                    literal("pending"),
                    literal(0),
                    literal(now, DateTime(timezone=True)),
                    literal(""),
                ).where(Event.id.in_(_wanted_ids(hook.types)))
                s.execute(
                    insert(Delivery).from_select(
                        [
                            "webhook_id",
                            "event_id",
                            "plant",
                            "status",
                            "attempts",
                            "next_attempt_at",
                            "last_error",
                        ],
                        picked,
                    )
                )
            data = {"url": hook.url, "types": hook.types}
            s.add(event_row("webhook.created", "", webhook_id, actor, now, data))
        return secret, _record(hook)

    def remove_webhook(self, webhook_id: str, *, now: datetime, actor: str = "") -> WebhookRecord:
        """Delete a webhook and its outbox rows (pending ones are not sent)."""
        with self._session() as s:
            w = s.get(Webhook, webhook_id)
            if w is None:
                raise _not_found(webhook_id)
            record = _record(w)
            event_order_lock(s)
            s.query(Delivery).filter(Delivery.webhook_id == webhook_id).delete()
            s.delete(w)
            s.flush()
            s.add(event_row("webhook.removed", "", webhook_id, actor, now, {"url": record.url}))
            return record

    def rotate_secret(
        self, webhook_id: str, *, overlap: timedelta, now: datetime, actor: str = ""
    ) -> tuple[str, WebhookRecord]:
        """A new signing secret for a webhook: (the secret, shown once; its record). The
        one it replaces keeps signing too until now + ``overlap`` (none: it stops now),
        so receivers can switch without a failed delivery. Rotating again during an
        overlap drops the older one: at most two secrets are ever live."""
        box = self._box()
        if overlap < timedelta(0):
            raise UserError("a secret rotation's overlap cannot be negative")
        secret = new_secret()
        with self._session() as s:
            # the event order lock first, as remove_webhook takes it before it deletes
            # the row: the same order everywhere, so no deadlock between the two
            event_order_lock(s)
            # two rotations at once (two servers): the second waits for the first and
            # replaces its secret, rather than both demoting the same one and one new
            # secret, already shown to its caller, being lost (PostgreSQL SELECT … FOR
            # UPDATE; SQLite serialises writers itself)
            w = s.get(Webhook, webhook_id, with_for_update=True)
            if w is None:
                raise _not_found(webhook_id)
            if overlap:
                w.previous_secret, w.previous_key_id = w.secret, w.key_id
                w.previous_until = now + overlap
            else:
                w.previous_secret = w.previous_key_id = w.previous_until = None
            w.secret, w.key_id = box.seal(secret), box.key_id
            s.flush()
            until = w.previous_until
            data = {
                "overlap_seconds": int(overlap.total_seconds()),
                "previous_until": until.isoformat() if until is not None else None,
            }
            s.add(event_row("webhook.secret-rotated", "", webhook_id, actor, now, data))
            return secret, _record(w, self._counts(s, webhook_id).get(webhook_id))

    def reseal(self) -> int:
        """Seal again under the current key every secret (current or previous) sealed
        under one of the box's previous keys; the number of webhooks changed. One
        transaction, under the same locks as a rotation, so a concurrent rotation or a
        second server doing the same never loses a secret; a secret under a key this
        server does not know is left as it is (its deliveries say which key it needs)."""
        box = self._box()
        old = set(box.previous_ids)
        if not old:
            return 0
        changed = 0
        with self._session() as s:
            event_order_lock(s)
            rows = s.scalars(
                select(Webhook)
                .where(or_(Webhook.key_id.in_(old), Webhook.previous_key_id.in_(old)))
                .with_for_update()
            ).all()
            for w in rows:
                if w.key_id in old:
                    w.secret, w.key_id = box.seal(box.open(w.secret, w.key_id)), box.key_id
                if w.previous_secret and w.previous_key_id in old:
                    opened = box.open(w.previous_secret, w.previous_key_id)
                    w.previous_secret, w.previous_key_id = box.seal(opened), box.key_id
                changed += 1
        return changed

    def _counts(self, s: Session, webhook_id: str | None = None) -> dict[str, dict[str, int]]:
        q = select(Delivery.webhook_id, Delivery.status, func.count()).group_by(
            Delivery.webhook_id, Delivery.status
        )
        if webhook_id is not None:
            q = q.where(Delivery.webhook_id == webhook_id)
        out: dict[str, dict[str, int]] = {}
        for hook, status, n in s.execute(q):
            out.setdefault(hook, {})[status] = int(n)
        return out

    def list_webhooks(self) -> list[WebhookRecord]:
        with self._session() as s:
            counts = self._counts(s)
            q = select(Webhook).order_by(Webhook.created_at, Webhook.id)
            return [_record(w, counts.get(w.id)) for w in s.scalars(q)]

    def get_webhook(self, webhook_id: str) -> WebhookRecord:
        with self._session() as s:
            w = s.get(Webhook, webhook_id)
            if w is None:
                raise _not_found(webhook_id)
            return _record(w, self._counts(s, webhook_id).get(webhook_id))

    def redrive(self, webhook_id: str, *, now: datetime) -> WebhookRecord:
        """Enable a webhook again (disabled by a 410) and give its dead deliveries a
        fresh set of attempts, now, in their order."""
        with self._session() as s:
            w = s.get(Webhook, webhook_id)
            if w is None:
                raise _not_found(webhook_id)
            w.disabled_at = None
            w.disabled_reason = ""
            s.execute(
                update(Delivery)
                .where(Delivery.webhook_id == webhook_id, Delivery.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now)
            )
            s.flush()
            return _record(w, self._counts(s, webhook_id).get(webhook_id))

    def deliveries(
        self,
        webhook_id: str | None = None,
        *,
        statuses: Sequence[str] = (),
        after: int = 0,
        limit: int | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows in id order (a webhook's, of some statuses, after a row id)."""
        with self._session() as s:
            q = select(Delivery).where(Delivery.id > after).order_by(Delivery.id)
            if webhook_id is not None:
                q = q.where(Delivery.webhook_id == webhook_id)
            if statuses:
                q = q.where(Delivery.status.in_(list(statuses)))
            if limit is not None:
                q = q.limit(limit)
            return [
                DeliveryRecord(
                    d.id,
                    d.webhook_id,
                    d.event_id,
                    d.plant,
                    d.status,
                    d.attempts,
                    _utc(d.next_attempt_at) or d.next_attempt_at,
                    d.last_status,
                    d.last_error,
                    _utc(d.delivered_at),
                )
                for d in s.scalars(q)
            ]

    def prune(self, *, before: datetime) -> int:
        """Delete rows delivered before ``before`` (the order needs only the open rows);
        how many."""
        with self._session() as s:
            result = s.execute(
                delete(Delivery).where(
                    Delivery.status == "delivered", Delivery.delivered_at < before
                ),
                execution_options={"synchronize_session": False},
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # --- the worker's side ----------------------------------------------------------------
    def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_seconds: float,
        limit: int = 50,
        run: int = 1,
    ) -> list[list[Job]]:
        """Lease due deliveries to ``owner`` until now + ``lease_seconds``, as runs: for up
        to ``limit`` queues (webhook, plant) whose head is due and has every earlier row
        delivered, the head and up to ``run - 1`` rows after it, oldest event first. Runs
        are of different queues, so they may be sent at once, each in its order."""
        box = self._box()
        # each queue's head: its oldest row not yet delivered (one pass over the open
        # rows, which the status index finds), then only heads that are due and free
        open_rows = Delivery.status.in_(OPEN)
        heads_q = (
            select(
                Delivery.webhook_id.label("webhook_id"),
                Delivery.plant.label("plant"),
                func.min(Delivery.event_id).label("first"),
            )
            .where(open_rows)
            .group_by(Delivery.webhook_id, Delivery.plant)
            .subquery("heads")
        )
        free = or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at <= now)
        q = (
            select(Delivery)
            .join(
                heads_q,
                (heads_q.c.webhook_id == Delivery.webhook_id)
                & (heads_q.c.plant == Delivery.plant)
                & (heads_q.c.first == Delivery.event_id),
            )
            .join(Webhook, Webhook.id == Delivery.webhook_id)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                free,
                Webhook.disabled_at.is_(None),
            )
            .order_by(Delivery.event_id, Delivery.id)
            .limit(limit)
        )
        pg = self.engine.dialect.name == "postgresql"
        if pg:
            # two servers against one database: a row another transaction is leasing is
            # skipped, not waited for (PostgreSQL SELECT, "The Locking Clause")
            q = q.with_for_update(skip_locked=True, of=Delivery)
        with self._session() as s:
            heads = list(s.scalars(q))
            if not heads:
                return []
            runs: list[list[Delivery]] = []
            for head in heads:
                rows = [head]
                if run > 1:
                    after = (
                        select(Delivery)
                        .where(
                            Delivery.webhook_id == head.webhook_id,
                            Delivery.plant == head.plant,
                            Delivery.event_id > head.event_id,
                            open_rows,
                        )
                        .order_by(Delivery.event_id)
                        .limit(run - 1)
                    )
                    # not SKIP LOCKED: a skipped row would leave a gap in the run. No
                    # other worker takes rows of this queue while its head is ours.
                    for d in s.scalars(after):
                        # a run is contiguous: it ends at the first row not ready to send
                        ok = d.status == "pending" and (_utc(d.next_attempt_at) or now) <= now
                        lease = _utc(d.lease_expires_at)
                        if not ok or (lease is not None and lease > now):
                            break
                        rows.append(d)
                runs.append(rows)
            until = now + timedelta(seconds=lease_seconds)
            every = [d for r in runs for d in r]
            s.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in every]))
                .values(lease_owner=owner, lease_expires_at=until),
                execution_options={"synchronize_session": False},
            )
            hooks = {
                w.id: w
                for w in s.scalars(
                    select(Webhook).where(Webhook.id.in_({d.webhook_id for d in every}))
                )
            }
            events = {
                e.id: event_record(e)
                for e in s.scalars(select(Event).where(Event.id.in_({d.event_id for d in every})))
            }
            secrets_ = {hid: signing_secrets(box, w, now) for hid, w in hooks.items()}
            return [
                [
                    Job(
                        d.id,
                        d.webhook_id,
                        hooks[d.webhook_id].url,
                        secrets_[d.webhook_id],
                        d.attempts,
                        events[d.event_id],
                    )
                    for d in r
                ]
                for r in runs
            ]

    def record(self, owner: str, results: Sequence[Result], *, now: datetime) -> None:
        """The outcomes of a pass, in one transaction: a 2xx marks its row delivered; a
        failure is an attempt (pending again at ``retry_at``, or ``dead`` without one),
        kept only while ``owner`` still holds the row; ``unsent`` rows are let go; a
        ``gone`` failure disables its webhook."""
        acked: dict[int | None, list[int]] = {}
        for r in results:
            if r.ok:
                acked.setdefault(r.status, []).append(r.delivery_id)
        with self._session() as s:
            for status, ids in acked.items():  # one statement per answer code
                s.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        status="delivered",
                        attempts=Delivery.attempts + 1,
                        delivered_at=now,
                        last_status=status,
                        last_error="",
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                )
            for r in results:
                if r.ok:
                    continue
                mine = (
                    Delivery.id == r.delivery_id,
                    Delivery.lease_owner == owner,
                    Delivery.status == "pending",
                )
                if r.unsent:
                    s.execute(
                        update(Delivery)
                        .where(*mine)
                        .values(lease_owner=None, lease_expires_at=None)
                    )
                    continue
                values: dict[str, object] = {
                    "attempts": Delivery.attempts + 1,
                    "last_error": r.error[:500],
                    "last_status": r.status,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
                if r.retry_at is None:
                    values["status"] = "dead"
                else:
                    values["next_attempt_at"] = r.retry_at
                s.execute(update(Delivery).where(*mine).values(**values))
                if r.gone:
                    w = s.get(Webhook, r.webhook_id)
                    if w is not None and w.disabled_at is None:
                        w.disabled_at = now
                        w.disabled_reason = f"the receiver answered {r.error}"[:500]

    def release(self, owner: str) -> None:
        """Give back ``owner``'s unfinished leases (a worker stopping)."""
        with self._session() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.lease_owner == owner, Delivery.status == "pending")
                .values(lease_owner=None, lease_expires_at=None)
            )


def open_webhook_store(url: str, box: SecretBox | None = None) -> WebhookStore:
    engine = make_engine(url)
    migrate(engine)
    return WebhookStore(engine, box)

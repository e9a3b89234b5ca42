"""``/api/webhooks``: register, list, redrive, rotate the secret of and remove the webhooks
the event stream is delivered to (platform-engineer; the auditor may list, as it reads
everything). A signing secret is in the answer to registration or rotation only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from plantops.server.auth import Principal, require, state_of
from plantops.server.problems import COMMON_PROBLEMS, WRITE_PROBLEMS, ProblemError
from plantops.server.state import utcnow
from plantops.services.webhooks import WebhookRecord

router = APIRouter(prefix="/api", tags=["webhooks"], responses=COMMON_PROBLEMS)
Admin = Annotated[Principal, Depends(require("webhook.admin"))]
Auditor = Annotated[Principal, Depends(require("read.audit"))]
MAX_OVERLAP_HOURS = 168  # a week, Svix's longest
WebhookId = Annotated[str, Path(min_length=1, max_length=16, pattern="^[0-9a-f]+$")]


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2000, description="http:// or https://, no user:password@"
    )
    types: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default_factory=list,
        max_length=50,
        description="event types (backup.taken, io.plantops.backup.taken) or families "
        "(backup.*); none: every type",
    )
    replay: bool = Field(False, description="also deliver the log written before it")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: int = Field(
        24,
        ge=0,
        le=MAX_OVERLAP_HOURS,
        strict=True,
        description="how long the replaced secret keeps signing deliveries next to the "
        "new one (0: it stops at once)",
    )


def webhook_dict(w: WebhookRecord, now: datetime | None = None) -> dict[str, Any]:
    until = w.previous_until
    live = until is not None and until > (now or utcnow())
    return {
        "id": w.id,
        "url": w.url,
        "types": list(w.types),
        "created_by": w.created_by,
        "created_at": w.created_at.isoformat(),
        "state": "disabled" if w.disabled_at else ("blocked" if w.dead else "active"),
        "disabled_at": w.disabled_at.isoformat() if w.disabled_at else None,
        "disabled_reason": w.disabled_reason,
        # while set, deliveries carry a signature with the replaced secret too
        "previous_secret_until": until.isoformat() if live and until is not None else None,
        "deliveries": {"pending": w.pending, "delivered": w.delivered, "dead": w.dead},
    }


@router.get("/webhooks")
def webhooks(request: Request, who: Auditor) -> dict[str, Any]:
    """Registered webhooks with their outbox counts (never a secret)."""
    return {"items": [webhook_dict(w) for w in state_of(request).webhooks.list_webhooks()]}


@router.get("/webhooks/{webhook_id}")
def webhook(request: Request, who: Auditor, webhook_id: WebhookId) -> dict[str, Any]:
    return webhook_dict(state_of(request).webhooks.get_webhook(webhook_id))


@router.get("/webhooks/{webhook_id}/deliveries")
def webhook_deliveries(
    request: Request,
    who: Auditor,
    webhook_id: WebhookId,
    status: Annotated[
        list[Literal["pending", "delivered", "dead"]] | None,
        Query(description="only these statuses (repeat the parameter)"),
    ] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A webhook's outbox rows in order, cursor-paged (``next_after``): attempts, the
    last answer or error, when the next attempt is due."""
    store = state_of(request).webhooks
    store.get_webhook(webhook_id)  # 404 for an unknown one
    found = store.deliveries(webhook_id, statuses=status or (), after=after, limit=limit)
    items = [
        {
            "id": d.id,
            "event_id": d.event_id,
            "plant": d.plant,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        }
        for d in found
    ]
    return {"items": items, "next_after": found[-1].id if found else after}


def need_box(box: object) -> None:
    if box is None:
        raise ProblemError(
            409,
            "this server has no webhook key to seal signing secrets with: start it with "
            "PLANTOPS_WEBHOOK_KEY set (the same on every server process)",
            slug="webhooks-off",
        )


@router.post("/webhooks", status_code=201, responses=WRITE_PROBLEMS)
def post_webhook(request: Request, body: WebhookRequest, who: Admin) -> dict[str, Any]:
    """Register a webhook; ``secret`` (``whsec_…``, Standard Webhooks) is in this answer
    only: keep it where the receiver verifies signatures."""
    store = state_of(request).webhooks
    need_box(store.box)
    state_of(request).destinations.check_literal(body.url)  # 400: an internal IP literal
    secret, record = store.add_webhook(
        url=body.url, types=body.types, replay=body.replay, actor=who.subject, now=utcnow()
    )
    return {"secret": secret, **webhook_dict(record)}


@router.post("/webhooks/{webhook_id}/redrive", responses=WRITE_PROBLEMS)
def redrive_webhook(request: Request, who: Admin, webhook_id: WebhookId) -> dict[str, Any]:
    """Enable a webhook a 410 disabled, and retry its dead deliveries (in order)."""
    return webhook_dict(state_of(request).webhooks.redrive(webhook_id, now=utcnow()))


@router.post("/webhooks/{webhook_id}/rotate-secret", responses=WRITE_PROBLEMS)
def rotate_webhook_secret(
    request: Request,
    who: Admin,
    webhook_id: WebhookId,
    body: Annotated[RotateRequest | None, Body()] = None,
) -> dict[str, Any]:
    """A new signing secret (``secret``, ``whsec_…``, in this answer only). The replaced
    one keeps signing deliveries next to it for ``overlap_hours`` (24 unless given), so
    receivers verify with either until they switch; rotating again during an overlap
    drops the oldest (two live secrets at most)."""
    store = state_of(request).webhooks
    need_box(store.box)
    overlap = timedelta(hours=(body or RotateRequest()).overlap_hours)
    now = utcnow()
    secret, record = store.rotate_secret(webhook_id, overlap=overlap, now=now, actor=who.subject)
    return {"secret": secret, **webhook_dict(record, now)}


@router.delete("/webhooks/{webhook_id}", responses=WRITE_PROBLEMS)
def delete_webhook(request: Request, who: Admin, webhook_id: WebhookId) -> dict[str, Any]:
    """Remove a webhook and its undelivered outbox rows."""
    record = state_of(request).webhooks.remove_webhook(webhook_id, now=utcnow(), actor=who.subject)
    return webhook_dict(record)

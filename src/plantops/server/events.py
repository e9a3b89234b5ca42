"""``GET /events``: the platform event log as Server-Sent Events.

Each event is sent with its database id as the SSE ``id``; a client that reconnects
sends ``Last-Event-ID`` (or ``?after=``) and resumes after it. The log is polled
(every ``POLL_SECONDS``), so events written by any server process, the CLI or a backup
run appear; a comment line every ``KEEPALIVE_SECONDS`` keeps proxies from closing an
idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from plantops.server.auth import Principal, require, state_of
from plantops.server.problems import COMMON_PROBLEMS, ProblemError
from plantops.server.state import MAX_CURSOR

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
router = APIRouter(responses=COMMON_PROBLEMS)


def _start_after(request: Request, after: int | None) -> int:
    if after is not None:
        return after
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 18:
        raise ProblemError(400, f"Last-Event-ID {raw[:40]!r} is not an event id (an integer)")
    return int(raw)


@router.get(
    "/events",
    tags=["events"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    who: Annotated[Principal, Depends(require("read"))],
    after: Annotated[int | None, Query(ge=0, le=MAX_CURSOR)] = None,
    plant: Annotated[str, Query(max_length=64)] = "",
    once: Annotated[bool, Query(description="send what is there, then close")] = False,
) -> StreamingResponse:
    cursor = _start_after(request, after)
    store = state_of(request).store

    async def gen() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        idle = 0.0
        while True:
            batch = await run_in_threadpool(
                store.events_after, cursor, limit=500, plant=plant or None
            )
            for e in batch:
                cursor = e.id
                if e.plant and not who.may_touch(e.plant):
                    continue
                yield f"id: {e.id}\nevent: {e.type}\ndata: {json.dumps(e.as_dict(), sort_keys=True)}\n\n"
            if once and len(batch) < 500:
                return
            if batch:
                idle = 0.0
                continue
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)
            idle += POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

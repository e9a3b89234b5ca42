"""Server-rendered pages (Jinja2, autoescaped): fleet overview, plant, releases, the
promotion matrix and the ledger browser.

Each page reads the same view functions as the API; forms post with the session's
CSRF token. Assets are served from ``/static``: no CDN, pages work offline.
"""

from __future__ import annotations

import time
from math import ceil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from plantops.server import ledger
from plantops.server.api import run_plan
from plantops.server.auth import (
    Principal,
    check_csrf_form,
    csrf_token,
    principal_or_none,
    state_of,
)
from plantops.server.matrix import CELL_STATES, stage_names
from plantops.server.problems import ProblemError
from plantops.server.state import MAX_CURSOR, today, utcnow
from plantops.server.svg import bar_chart, budget_chart
from plantops.server.views import (
    backup_dict,
    facets,
    fleet_status,
    fleet_summary,
    newest_verified,
    plant_detail,
    plant_findings,
    plant_history,
    plant_rows,
    plant_slos,
    plant_windows,
    snapshot_of,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _page(request: Request, name: str, who: Principal | None, **context: Any) -> HTMLResponse:
    started = time.perf_counter()
    response = templates.TemplateResponse(
        request,
        name,
        {
            "who": who,
            "csrf": csrf_token(request) if "session" in request.scope else "",
            "oidc": state_of(request).settings.oidc is not None,
            **context,
        },
    )
    response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in(request: Request) -> Principal | None:
    return principal_or_none(request)


@router.get("/", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    tier: Annotated[str, Query(max_length=64)] = "",
    pattern: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    who = _signed_in(request)
    if who is None:
        return _page(request, "signin.html", None)
    snap = snapshot_of(request)
    rows = plant_rows(snap, q=q, tier=tier, pattern=pattern)
    size = state_of(request).settings.page_size
    pages = max(1, ceil(len(rows) / size))
    page = min(page, pages)
    shown = rows[(page - 1) * size : page * size]
    state = state_of(request)
    policy = state.policy.peek(today(), start=state.settings.background_policy)
    status = fleet_status(
        state,
        snap,
        shown,
        now=utcnow(),
        findings=policy.findings if policy is not None else None,
    )
    chart = bar_chart(
        [(r["code"], r["monthly_cost"]) for r in sorted(shown, key=lambda r: -r["monthly_cost"])][
            :20
        ],
        title=f"Monthly cost per plant ({snap.cost.currency}), this page's top 20",
        unit=snap.cost.currency,
    )
    return _page(
        request,
        "fleet.html",
        who,
        rows=shown,
        status=status,
        policy_ready=policy is not None,
        policy_background=state.settings.background_policy,
        total=len(rows),
        plants=len(snap.fleet.plants),
        page=page,
        pages=pages,
        q=q,
        tier=tier,
        pattern=pattern,
        facets=facets(snap),
        environments=[e.name for e in snap.fleet.environments],
        cost_total=fleet_summary(snap)["monthly_cost"],
        currency=snap.cost.currency,
        chart=chart,
    )


@router.get("/plants/{code}", response_class=HTMLResponse)
def plant_page(request: Request, code: str, done: str = "") -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    snap = snapshot_of(request)
    detail = plant_detail(snap, code)
    state = state_of(request)
    records = state.catalog.list_backups(plant=code)
    now = utcnow()
    ages = []
    for env in detail["environments"]:
        newest = newest_verified([b for b in records if b.env == env])
        if newest is not None:
            at = newest.finished_at or newest.started_at
            ages.append((env, (now - at).total_seconds() / 3600))
    chart = (
        bar_chart(
            ages,
            title="Newest verified backup age (hours)",
            unit="h",
            limit=24.0,
            limit_label="24 h",
        )
        if ages
        else ""
    )
    slos = [
        {**row, "chart": budget_chart(row["points"], title=row["chart_title"])}
        for row in plant_slos(state, snap, code, detail["environments"], now=now)
    ]
    return _page(
        request,
        "plant.html",
        who,
        slos=slos,
        plant=detail,
        backups=[backup_dict(b) for b in records[:50]],
        chart=chart,
        may_plan=who.may("plan.write") and who.may_touch(code),
        done=done[:200],
        history=plant_history(state, who, snap, code),
        windows=plant_windows(snap, code, now=now),
        **plant_findings(state, snap, code),
    )


@router.post("/plants/{code}/plan")
async def plant_plan(request: Request, code: str) -> Response:
    who, _ = await _form_caller(request, "plan.write")
    summary = await run_in_threadpool(run_plan, request, who, [code])
    return RedirectResponse(
        f"/plants/{code}?done=planned: {summary['written']} file(s) written", status_code=303
    )


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    events = state_of(request).store.events_after(0, limit=10_000)
    events = [e for e in events if not e.plant or who.may_touch(e.plant)]
    return _page(
        request,
        "releases.html",
        who,
        releases=[e for e in events if e.type.startswith("release.")],
        events=list(reversed(events))[:200],
    )


@router.get("/promotions", response_class=HTMLResponse)
def promotions_page(request: Request, done: str = "") -> Response:
    """Releases × stages × waves: promoted, partial, blocked (with the failed gates),
    ready or pending; the approvals per stage and an Approve form for who may."""
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    rows, missing = ledger.matrix_rows(state_of(request), who)
    return _page(
        request,
        "promotions.html",
        who,
        rows=rows,
        stages=stage_names(rows),
        missing=missing,
        states=CELL_STATES,
        done=done[:200],
    )


def _form_text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _form_stage(form: dict[str, Any]) -> str:
    stage = _form_text(form, "stage")
    if not stage or len(stage) > 64:
        raise ProblemError(422, "the form needs a stage (1 to 64 characters)", slug="bad-input")
    return stage


async def _form_caller(request: Request, action: str) -> tuple[Principal, dict[str, Any]]:
    """A page form's caller and fields: signed in (401), the session's CSRF token (403),
    allowed to ``action`` (403) — what ``require`` checks for the API's writes."""
    who = _signed_in(request)
    if who is None:
        raise ProblemError(401, "sign in first", slug="unauthorized")
    form = dict(await request.form())
    if who.via == "session":
        check_csrf_form(request, form)
    if not who.may(action):
        raise ProblemError(403, f"role {who.role} may not {action}", slug="forbidden")
    return who, form


@router.post("/promotions/{release_id}/approvals")
async def approve_form(request: Request, release_id: str) -> Response:
    """The matrix's Approve button: ``POST /api/releases/{id}/approvals`` from a form."""
    who, form = await _form_caller(request, "release.approve")
    stage = _form_stage(form)
    body = ledger.ApprovalRequest(stage=stage, comment=_form_text(form, "comment")[:2000])
    entry = await run_in_threadpool(ledger.approve, state_of(request), who, release_id, body)
    return RedirectResponse(
        f"/promotions?done=approved {entry.stage} (ledger entry {entry.seq})", status_code=303
    )


@router.post("/promotions/{release_id}/promotions")
async def promote_form(request: Request, release_id: str) -> Response:
    """The matrix's Promote button: ``POST /api/releases/{id}/promotions`` from a form
    (the stage's next wave; the verdicts are on the matrix after the redirect)."""
    who, form = await _form_caller(request, "release.promote")
    stage = _form_stage(form)
    body = ledger.PromotionRequest(stage=stage)
    doc = await run_in_threadpool(ledger.promote, state_of(request), who, release_id, body)
    promoted = doc.get("promoted") or []
    blocked = sum(1 for v in doc.get("plants", []) if not v.get("ok"))
    done = (
        doc.get("message")
        or f"{stage} wave {doc.get('wave')}: {len(promoted)} promoted, {blocked} blocked"
    )
    return RedirectResponse(f"/promotions?done={quote(str(done)[:200])}", status_code=303)


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_CURSOR)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """The ledger, page by page, under the live ``ledger verify`` result."""
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    state = state_of(request)
    return _page(
        request,
        "ledger.html",
        who,
        verify=ledger.verify(state),
        page=ledger.ledger_page(state, who, after, limit),
        after=after,
        limit=limit,
    )

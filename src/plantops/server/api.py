"""The JSON API: each route calls one use case of ``plantops.services`` (or reads the
store) and returns its data. No route computes what the CLI would compute differently.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from plantops import services
from plantops.server.auth import Principal, require, require_plants, state_of
from plantops.server.problems import COMMON_PROBLEMS, WRITE_PROBLEMS, ProblemError
from plantops.server.state import MAX_CURSOR, today, utcnow
from plantops.server.views import (
    backup_dict,
    deployment_dict,
    fleet_summary,
    plant_detail,
    plant_findings,
    plant_history,
    plant_rows,
    plant_slos,
    plant_windows,
    snapshot_of,
)
from plantops.services import release as release_services
from plantops.store.server import ROLES, TokenRecord

router = APIRouter(prefix="/api", responses=COMMON_PROBLEMS)
Reader = Annotated[Principal, Depends(require("read"))]
Auditor = Annotated[Principal, Depends(require("read.audit"))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanRequest(Strict):
    plants: list[str] = Field(default_factory=list, max_length=10_000)


class ReleaseRequest(Strict):
    image: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^\S+@sha256:[0-9a-f]{64}$",
        description="pinned by digest: REPOSITORY[:TAG]@sha256:<64 hex>",
    )
    addons_paths: list[str] = Field(min_length=1, max_length=50)


class TokenRequest(Strict):
    role: str = Field(json_schema_extra={"enum": list(ROLES)})
    plants: list[str] = Field(default_factory=list, max_length=1000)
    expires: dt.date | None = None


@router.get("/health", tags=["meta"])
def health() -> dict[str, str]:
    """Liveness: answers without touching the fleet or the database."""
    return {"status": "ok"}


JSON = "application/json"


def scope_key(who: Principal) -> frozenset[str] | None:
    """The part of a cached answer's key that says what the caller may see: a plant-it's
    plants, None for the roles that see every plant."""
    return who.plants if who.plant_scoped else None


def native_json(doc: dict[str, Any]) -> Response:
    """A document of JSON-native values (str, numbers, lists, dicts) rendered as it is:
    FastAPI's ``jsonable_encoder`` walks every value first, ~3.5 ms for a page of 100
    plants against ~0.6 ms for ``json.dumps`` (fastapi/routing.py serialize_response:
    a returned Response is sent unchanged)."""
    return JSONResponse(doc)


@router.get("/fleet", tags=["fleet"], response_model=dict[str, Any])
def fleet(request: Request, who: Reader) -> Response:
    return native_json(fleet_summary(snapshot_of(request)))


@router.get("/plants", tags=["fleet"], response_model=dict[str, Any])
def plants(
    request: Request,
    who: Reader,
    q: Annotated[str, Query(max_length=200)] = "",
    tier: Annotated[str, Query(max_length=64)] = "",
    pattern: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The fleet overview, one page of plant rows. The body is rendered once per snapshot
    and request key (the query, the caller's plant scope) and then sent as cached bytes
    (``ServerState.answers``) until the fleet changes."""
    snap = snapshot_of(request)

    def render() -> bytes:
        rows = plant_rows(snap, q=q, tier=tier, pattern=pattern)
        doc = {"total": len(rows), "offset": offset, "items": rows[offset : offset + limit]}
        return bytes(native_json(doc).body)

    key = ("plants", q, tier, pattern, offset, limit, scope_key(who))
    return Response(state_of(request).answers.get(snap, key, render), media_type=JSON)


@router.get("/plants/{code}", tags=["fleet"])
def plant(request: Request, code: str, who: Reader) -> dict[str, Any]:
    detail = plant_detail(snapshot_of(request), code)
    detail["backups"] = [backup_dict(b) for b in state_of(request).catalog.list_backups(plant=code)]
    return detail


@router.get("/plants/{code}/status", tags=["fleet"])
def plant_status(request: Request, code: str, who: Reader) -> dict[str, Any]:
    """What the plant page shows beside the plan: the release history (None for a
    plant-it outside its plants), the next allowed window per stage in the plant's
    timezone, the open policy findings (None while ``plantops check`` runs in the
    background) and the probe SLO per environment with its daily error budget."""
    snap = snapshot_of(request)
    detail = plant_detail(snap, code)  # 404 for an unknown plant
    state = state_of(request)
    now = utcnow()
    return {
        "code": code,
        "history": plant_history(state, who, snap, code),
        "windows": plant_windows(snap, code, now=now),
        **plant_findings(state, snap, code),
        "slos": [
            {k: v for k, v in row.items() if k != "chart_title"}
            for row in plant_slos(state, snap, code, detail["environments"], now=now)
        ],
    }


@router.get("/plants/{code}/classification", tags=["fleet"])
def classification(request: Request, code: str, who: Reader) -> dict[str, Any]:
    detail = plant_detail(snapshot_of(request), code)
    return {k: detail[k] for k in ("code", "tier", "pattern", "production_sync", "reasons")}


@router.get("/deployments", tags=["plan"])
def deployments(
    request: Request, who: Reader, plant: Annotated[str, Query(max_length=64)] = ""
) -> dict[str, Any]:
    snap = snapshot_of(request)
    deps = snap.plan.for_plant(plant) if plant else snap.plan.deployments
    if plant and not deps:
        plant_detail(snap, plant)  # 404 for an unknown plant
    return {"total": len(deps), "items": [deployment_dict(d) for d in deps]}


@router.get("/plan", tags=["plan"])
def plan_summary(request: Request, who: Reader) -> dict[str, Any]:
    """What ``plantops plan`` would write: deployments by pattern, tier, runtime."""
    snap = snapshot_of(request)
    by: dict[str, dict[str, int]] = {"pattern": {}, "tier": {}, "runtime": {}, "environment": {}}
    for d in snap.plan.deployments:
        for key, value in (
            ("pattern", d.pattern),
            ("tier", d.tier),
            ("runtime", d.runtime),
            ("environment", d.environment.name),
        ):
            by[key][value] = by[key].get(value, 0) + 1
    return {
        "deployments": len(snap.plan.deployments),
        "by": {k: dict(sorted(v.items())) for k, v in by.items()},
        "warnings": [w.render() for w in snap.plan.warnings],
    }


@router.get("/cost", tags=["plan"])
def cost(
    request: Request,
    who: Reader,
    by: Annotated[str, Query(pattern="^(plant|env|service|kind|cluster)$")] = "plant",
) -> dict[str, Any]:
    snap = snapshot_of(request)
    return {
        "currency": snap.cost.currency,
        "total_month": round(snap.cost.total_month, 2),
        "platform_month": round(snap.cost.platform_month, 2),
        "by": by,
        "items": {k: round(v, 2) for k, v in snap.cost.by(by).items()},
    }


@router.get("/policy", tags=["policy"])
def policy(request: Request, who: Reader) -> dict[str, Any]:
    """``plantops check`` on the fleet: the findings in force and whether the gate passes."""
    result = state_of(request).policy.get(today())
    return {
        "ok": result.ok,
        "objects": result.objects,
        "files": result.files,
        "failing": len(result.failing),
        "findings": [
            {
                "plant": f.plant,
                "environment": f.environment,
                "rule": f.rule,
                "severity": str(f.severity.name).lower(),
                "kind": f.kind,
                "namespace": f.namespace,
                "name": f.name,
                "message": f.message,
                "remediation": f.remediation,
                "file": f.file,
                "line": f.line,
                "spec_location": f.spec_location,
            }
            for f in result.findings
        ],
        "suppressed": len(result.suppressed),
    }


@router.get("/backups", tags=["backups"])
def backups(
    request: Request,
    who: Reader,
    plant: Annotated[str, Query(max_length=64)] = "",
    env: Annotated[str, Query(max_length=64)] = "",
) -> dict[str, Any]:
    found = state_of(request).catalog.list_backups(plant=plant or None, env=env or None)
    return {"total": len(found), "items": [backup_dict(b) for b in found]}


@router.get("/releases", tags=["releases"])
def releases(request: Request, who: Reader) -> dict[str, Any]:
    """Releases the server has seen created (the release ledger plugs in here)."""
    events = [
        e
        for e in state_of(request).store.events_after(0, limit=10_000)
        if e.type.startswith("release.")
    ]
    return {"total": len(events), "items": [e.as_dict() for e in events]}


@router.get("/events", tags=["events"])
def events(
    request: Request,
    who: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_CURSOR)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    plant: Annotated[str, Query(max_length=64)] = "",
) -> dict[str, Any]:
    """The platform event log, cursor-paged: pass the last ``id`` seen as ``after``."""
    found = state_of(request).store.events_after(after, limit=limit, plant=plant or None)
    items = [e.as_dict() for e in found if who.may_touch(e.plant) or not e.plant]
    return {"items": items, "next_after": found[-1].id if found else after}


# --- writes -------------------------------------------------------------------------------


def run_plan(request: Request, who: Principal, plants: list[str]) -> dict[str, Any]:
    """``plantops plan`` into the server's ``--out`` tree, then a ``plan.written`` event."""
    state = state_of(request)
    known = {p.code for p in snapshot_of(request).fleet.plants}
    unknown = sorted(set(plants) - known)
    if unknown:
        raise ProblemError(404, f"unknown plant(s): {', '.join(unknown)}", slug="unknown-plant")
    if who.role == "plant-it" and not plants:
        raise ProblemError(
            403, "plant-it must name its plants: {'plants': [...]}", slug="forbidden"
        )
    require_plants(who, plants)
    result = services.plan_fleet(
        state.settings.fleet, state.settings.out, today=today(), plants=plants
    )
    summary = {
        "deployments": len(result.plan.deployments),
        "rendered": result.tree.rendered,
        "reused": result.tree.reused,
        "files": result.tree.files,
        "written": result.tree.written,
    }
    for plant in plants or [""]:
        state.store.append_event(
            "plan.written", plant=plant, actor=who.subject, data=summary, now=utcnow()
        )
    return summary


@router.post("/plan", tags=["plan"], status_code=200, responses=WRITE_PROBLEMS)
def post_plan(
    request: Request,
    body: PlanRequest,
    who: Annotated[Principal, Depends(require("plan.write"))],
) -> dict[str, Any]:
    """Render and write the tree (all plants, or the ones named)."""
    return run_plan(request, who, body.plants)


@router.post("/releases", tags=["releases"], status_code=201, responses=WRITE_PROBLEMS)
def post_release(
    request: Request,
    body: ReleaseRequest,
    who: Annotated[Principal, Depends(require("release.create"))],
) -> dict[str, Any]:
    """Build a release lock (``plantops release create --as``): addon paths are inside the
    fleet repository; the lock is kept in the locks directory and the release is recorded
    in the ledger with the caller as its author (who then cannot approve it)."""
    state = state_of(request)
    root = state.settings.fleet.resolve()
    paths = []
    for raw in body.addons_paths:
        try:
            path = (root / raw).resolve()
            usable = path.is_relative_to(root) and path.is_dir()
        except (OSError, ValueError, RuntimeError):  # NUL, too long, a loop of links (3.11)
            usable = False
        if not usable:
            raise ProblemError(
                400, f"addons path {raw!r} is not a directory inside the fleet repository"
            )
        paths.append(path)
    result = services.create_release(
        root, image=body.image, addons_paths=paths, packages=None, today=today()
    )
    if not result.id:
        raise ProblemError(
            409,
            "the addons check refused the release",
            slug="gate-failed",
            findings=[f"{f.code}: {f.message}" for f in result.addons.errors][:50],
        )
    lock = release_services.save_release_lock(state.settings.locks_dir, result.id, result.text)
    entry = release_services.register_release(
        lock, author=who.subject, db=state.settings.db_url, now=utcnow()
    )
    state.store.append_event(
        "release.created",
        subject=result.id,
        actor=who.subject,
        data={"image": body.image, "addons_paths": list(body.addons_paths)},
        now=utcnow(),
    )
    return {
        "id": result.id,
        "lock": result.text,
        "author": who.subject,
        "ledger_seq": entry.seq if entry is not None else None,
    }


def token_dict(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "role": t.role,
        "plants": list(t.plants),
        "subject": t.subject,
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "state": t.state(utcnow()),
    }


@router.get("/tokens", tags=["tokens"])
def tokens(request: Request, who: Auditor) -> dict[str, Any]:
    return {"items": [token_dict(t) for t in state_of(request).store.list_tokens()]}


@router.post("/tokens", tags=["tokens"], status_code=201, responses=WRITE_PROBLEMS)
def post_token(
    request: Request,
    body: TokenRequest,
    who: Annotated[Principal, Depends(require("token.admin"))],
) -> dict[str, Any]:
    """A new API token; the plaintext is in this response only."""
    expires_at = (
        dt.datetime.combine(body.expires, dt.time(), tzinfo=dt.UTC) if body.expires else None
    )
    token, record = state_of(request).store.create_token(
        role=body.role, plants=body.plants, expires_at=expires_at, now=utcnow()
    )
    return {"token": token, **token_dict(record)}


@router.delete("/tokens/{token_id}", tags=["tokens"], responses=WRITE_PROBLEMS)
def delete_token(
    request: Request,
    token_id: str,
    who: Annotated[Principal, Depends(require("token.admin"))],
) -> dict[str, Any]:
    record = state_of(request).store.revoke_token(token_id, now=utcnow(), actor=who.subject)
    return token_dict(record)

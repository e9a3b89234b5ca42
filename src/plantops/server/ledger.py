"""Release status, approvals and the ledger over HTTP: each route calls the use case
``plantops release status|approve`` and ``plantops ledger verify`` call
(``plantops.services.release``), with the server's state database as the ledger and
its ``--locks`` directory as where release locks are found by id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from plantops.server.auth import Principal, require, state_of
from plantops.server.matrix import release_row
from plantops.server.problems import COMMON_PROBLEMS, WRITE_PROBLEMS
from plantops.server.state import MAX_CURSOR, ServerState, utcnow
from plantops.server.svg import dependency_graph
from plantops.services import release as release_services
from plantops.store.ledger import Entry

router = APIRouter(prefix="/api", responses=COMMON_PROBLEMS)
Reader = Annotated[Principal, Depends(require("read"))]
Approver = Annotated[Principal, Depends(require("release.approve"))]
Promoter = Annotated[Principal, Depends(require("release.promote"))]
MATRIX_RELEASES = 20  # newest releases on the promotion matrix


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=2000)


class PromotionRequest(BaseModel):
    """``plantops promote --to STAGE [--wave N] [--plant P]… [--dry-run]``."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(min_length=1, max_length=64)
    wave: int | None = Field(default=None, ge=1, le=1000)
    plants: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list, max_length=1000
    )
    dry_run: bool = False


def lock_of(state: ServerState, release_id: str) -> Path:
    """The lock file of a release, by id (404 when the locks directory has none)."""
    return release_services.release_locks(state.settings.locks_dir).find(release_id)


def status_of(state: ServerState, release_id: str) -> dict[str, Any]:
    lock = lock_of(state, release_id)
    s = state.settings
    status = release_services.release_status(s.fleet, lock, db=s.db_url, now=utcnow())
    return status.as_dict()


def approve(state: ServerState, who: Principal, release_id: str, body: ApprovalRequest) -> Entry:
    """One approval in the ledger, by the signed-in identity with its server role; the
    ledger guard refuses the release's author (403). A ``release.approved`` event follows."""
    s = state.settings
    entry = release_services.approve_release(
        s.fleet,
        lock_of(state, release_id),
        stage=body.stage,
        user=who.subject,
        role=who.role,
        db=s.db_url,
        now=utcnow(),
        comment=body.comment,
    )
    state.store.append_event(
        "release.approved",
        subject=entry.release_id,
        actor=who.subject,
        data={"stage": entry.stage, "role": who.role, "ledger_seq": entry.seq},
        now=utcnow(),
    )
    return entry


def promote(
    state: ServerState, who: Principal, release_id: str, body: PromotionRequest
) -> dict[str, Any]:
    """``plantops promote`` as the signed-in identity: the stage's gates per plant of the
    wave, then pins and ledger entries (each with a ``release.promoted`` event, written
    by the ledger). Gates that need evidence files (vulnerability reports, rehearsal and
    smoke results) find none here and block, as ``plantops promote`` without them does."""
    s = state.settings
    result = release_services.promote_release(
        s.fleet,
        lock_of(state, release_id),
        to=body.stage,
        actor=who.subject,
        now=utcnow(),
        db=s.db_url,
        wave=body.wave,
        plants=body.plants,
        dry_run=body.dry_run,
    )
    doc: dict[str, Any] = result.as_dict()
    return doc


def matrix_rows(state: ServerState, who: Principal) -> tuple[list[dict[str, Any]], list[str]]:
    """The newest releases of the ledger as matrix rows, and releases whose lock is not
    among the locks (named, so the page can say so)."""
    s = state.settings
    index = release_services.release_locks(s.locks_dir)
    entries = release_services.ledger_releases(s.db_url)[::-1][:MATRIX_RELEASES]
    shown = [e.release_id for e in entries if e.release_id in index.locks]
    missing = [e.release_id for e in entries if e.release_id not in index.locks]
    statuses = release_services.release_statuses(
        s.fleet, [index.locks[r] for r in shown], db=s.db_url, now=utcnow()
    )
    approver = who.subject if who.may("release.approve") else None
    promoter = who.may("release.promote")
    rows = [release_row(st.as_dict(), approver=approver, promoter=promoter) for st in statuses]
    return rows, missing


def ledger_page(state: ServerState, who: Principal, after: int, limit: int) -> dict[str, Any]:
    """A page of the ledger; a plant-scoped principal (plant-it) sees only the entries
    naming one of its plants (``total`` counts those)."""
    db = state.settings.db_url
    if who.plant_scoped:
        entries, total = release_services.ledger_page_for_plants(
            db, plants=who.plants, after=after, limit=limit
        )
    else:
        entries, total = release_services.ledger_page(db, after=after, limit=limit)
    return {
        "total": total,
        "items": [e.as_dict() for e in entries],
        "next_after": entries[-1].seq if entries else after,
    }


def verify(state: ServerState) -> dict[str, Any]:
    result: dict[str, Any] = release_services.ledger_verify(state.settings.db_url).as_dict()
    return result


@router.get("/releases/{release_id}", tags=["releases"])
def release_status(request: Request, release_id: str, who: Reader) -> dict[str, Any]:
    """``plantops release status``: per stage and wave, the promotions, the gate results of
    the next wave, and the approvals."""
    return status_of(state_of(request), release_id)


@router.post(
    "/releases/{release_id}/approvals",
    tags=["releases"],
    status_code=201,
    responses=WRITE_PROBLEMS,
)
def post_approval(
    request: Request, release_id: str, body: ApprovalRequest, who: Approver
) -> dict[str, Any]:
    """``plantops release approve`` as the signed-in identity (not by the release's author)."""
    entry = approve(state_of(request), who, release_id, body)
    result: dict[str, Any] = entry.as_dict()
    return result


@router.post(
    "/releases/{release_id}/promotions",
    tags=["releases"],
    responses=WRITE_PROBLEMS,
)
def post_promotion(
    request: Request, release_id: str, body: PromotionRequest, who: Promoter
) -> dict[str, Any]:
    """``plantops promote`` into a stage as the signed-in identity: per plant of the wave
    its verdict (each gate with its reasons), the plants promoted, the ledger entries and
    pins. A gate that blocks is a verdict, not an error; a promoter that lost the race to
    another is a 409."""
    return promote(state_of(request), who, release_id, body)


SVG = "image/svg+xml"


@router.get(
    "/releases/{release_id}/graph.svg",
    tags=["releases"],
    response_class=Response,
    responses={200: {"content": {SVG: {"schema": {"type": "string"}}}, "description": "SVG"}},
)
def release_graph(request: Request, release_id: str, who: Reader) -> Response:
    """The addon dependency graph of a release as SVG: the addons of its lock, an arrow
    from each to the addons of the lock it depends on, in rows by depth."""
    state = state_of(request)
    root = state.settings.fleet
    graph = release_services.release_addon_graph(
        lock_of(state, release_id), addons_paths_of(state, release_id, root)
    )
    nodes = [
        (
            n.name,
            f"{n.name} {n.version}".strip(),
            n.depth,
            f"{n.name} {n.version}: "
            + (
                f"also depends on {', '.join(n.external)}"
                if n.external
                else "no depends outside the release"
            )
            if n.known
            else f"{n.name} {n.version}: source not found with the locked checksum",
        )
        for n in graph.nodes
    ]
    body = dependency_graph(nodes, graph.edges, title=f"Addons of release {graph.release_id[:19]}")
    return Response(body, media_type=SVG, headers={"Cache-Control": "no-store"})


def addons_paths_of(state: ServerState, release_id: str, root: Path) -> list[Path]:
    """Where a release's addons were read from: the ``addons_paths`` of its
    ``release.created`` event (releases made through the server), else the fleet
    repository itself (its directories that hold addons)."""
    hex_id = release_id.removeprefix("sha256:")
    made = state.store.newest_event("release.created", subjects=[f"sha256:{hex_id}", hex_id])
    paths = made.data.get("addons_paths") if made is not None else None
    inside = root.resolve()
    if isinstance(paths, list) and paths:
        found = [(inside / str(p)).resolve() for p in paths]
        return [p for p in found if p.is_relative_to(inside)]
    return [inside]


@router.get("/ledger", tags=["ledger"])
def ledger(
    request: Request,
    who: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_CURSOR)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Ledger entries in sequence order, cursor-paged: pass ``next_after`` as ``after``.
    A plant-it token sees only the entries naming its plants (promotions of its waves)."""
    return ledger_page(state_of(request), who, after, limit)


@router.get("/ledger/verify", tags=["ledger"])
def ledger_verify(request: Request, who: Reader) -> dict[str, Any]:
    """``plantops ledger verify`` now: ok, or the first entry that does not hold and why."""
    return verify(state_of(request))

"""The promotion matrix as plain data: releases × stages × waves, from what
``services.release.release_statuses`` returned (``ReleaseStatus.as_dict()``).

Pure: no request, no store. A wave cell is ``promoted`` (every plant has the release),
``partial``, ``blocked`` (its gates said no), ``ready`` (its gates pass; ``promote`` may
run) or ``pending`` (an earlier wave comes first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CELL_STATES = ("promoted", "partial", "blocked", "ready", "pending")


def failed_gates(verdict: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"gate": g["gate"], "reasons": list(g["reasons"])} for g in verdict["gates"] if not g["ok"]
    ]


def wave_cell(wave: Mapping[str, Any]) -> dict[str, Any]:
    verdicts = [
        {
            "plant": v["plant"],
            "ok": v["ok"],
            "gates": [g["gate"] for g in v["gates"]],
            "failed": failed_gates(v),
            "next_allowed": v["next_allowed"],
        }
        for v in wave["gates"]
    ]
    state = {"done": "promoted", "partial": "partial"}.get(wave["state"], "pending")
    if state == "pending" and verdicts:
        state = "ready" if all(v["ok"] for v in verdicts) else "blocked"
    return {
        "wave": wave["wave"],
        "state": state,
        "plants": list(wave["plants"]),
        "promoted": sorted(wave["promoted"]),
        "verdicts": verdicts,
    }


def stage_state(waves: list[dict[str, Any]]) -> str:
    states = {w["state"] for w in waves}
    if not waves:
        return "pending"
    if states == {"promoted"}:
        return "promoted"
    for state in ("blocked", "partial", "ready"):
        if state in states:
            return state
    return "promoted" if "promoted" in states else "pending"


def stage_cell(
    stage: Mapping[str, Any],
    approvals: list[dict[str, Any]],
    *,
    approver: str | None,
    promoter: bool = False,
) -> dict[str, Any]:
    """One stage of one release; ``approver`` is who may approve here (None: nobody),
    ``promoter`` whether the viewer may promote (offered while a wave is not done)."""
    waves = [wave_cell(w) for w in stage["waves"]]
    asks = "approvals" in stage["gates"]
    already = approver is not None and any(a["user"] == approver for a in approvals)
    return {
        "stage": stage["stage"],
        "gates": list(stage["gates"]),
        "state": stage_state(waves),
        "waves": waves,
        "approvals": approvals,
        "asks_approval": asks,
        "may_approve": asks and approver is not None and not already,
        "may_promote": promoter and any(w["state"] != "promoted" for w in waves),
    }


def release_row(
    status: Mapping[str, Any], *, approver: str | None, promoter: bool = False
) -> dict[str, Any]:
    """A release's row; ``approver`` (who may approve releases) is dropped for its author."""
    author = status["author"]
    who = approver if approver is not None and approver != author else None
    approvals: Mapping[str, list[dict[str, Any]]] = status["approvals"]
    return {
        "release": status["release"],
        "short": str(status["release"]).removeprefix("sha256:")[:12],
        "author": author,
        "stages": [
            stage_cell(s, list(approvals.get(s["stage"], [])), approver=who, promoter=promoter)
            for s in status["stages"]
        ],
    }


def stage_names(rows: list[dict[str, Any]]) -> list[str]:
    """The stage columns, in chain order (every release has the same chain)."""
    return [s["stage"] for s in rows[0]["stages"]] if rows else []

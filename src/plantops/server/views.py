"""Read models the API and the pages share: a fleet snapshot as plain rows and dicts.

Pure functions over what ``fleetview.fleet_snapshot`` returned; the rows of a snapshot
are computed once and reused by every request until the fleet changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import Request

from plantops.server.auth import Principal
from plantops.server.problems import ProblemError
from plantops.server.state import ServerState, today
from plantops.services import fleetview, slostatus
from plantops.services import release as release_services
from plantops.store import BackupRecord
from plantops.store.events import PROBE_CHECKED

_ROWS: dict[int, tuple[fleetview.FleetSnapshot, list[dict[str, Any]]]] = {}
_SUMMARY: dict[tuple[str, int], tuple[fleetview.FleetSnapshot, dict[str, Any]]] = {}
_ROWS_LOCK = threading.Lock()


def snapshot_of(request: Request) -> fleetview.FleetSnapshot:
    state: ServerState = request.app.state.plantops
    return state.snapshot.get(today())


def deployment_dict(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "environment": d.environment.name,
        "production": d.environment.production,
        "tier": d.tier,
        "pattern": d.pattern,
        "runtime": d.runtime,
        "cluster": d.cluster.name if d.cluster else None,
        "namespace": d.namespace,
        "plants": [t.plant for t in d.tenants],
        "image": d.image,
        "release": d.environment.target_revision or (d.digest[:19] if d.digest else d.image),
        "dir": d.dir,
    }


def all_rows(snap: fleetview.FleetSnapshot) -> list[dict[str, Any]]:
    key = id(snap)
    with _ROWS_LOCK:
        hit = _ROWS.get(key)
        if hit is not None and hit[0] is snap:
            return hit[1]
    by_code = {c.plant: c for c in snap.plan.classifications}
    rows: list[dict[str, Any]] = []
    for p in snap.fleet.plants:
        code = p.spec.code
        c = by_code.get(code)
        envs = {
            d.environment.name: deployment_dict(d)["release"] for d in snap.plan.for_plant(code)
        }
        rows.append(
            {
                "code": code,
                "name": p.spec.name,
                "region": p.spec.region,
                "timezone": p.spec.timezone,
                "runtime": p.spec.runtime,
                "tier": c.tier if c else "",
                "pattern": c.pattern if c else "",
                "environments": envs,
                "monthly_cost": round(snap.cost.for_plant(code), 2),
            }
        )
    rows.sort(key=lambda r: str(r["code"]))
    with _ROWS_LOCK:
        _ROWS.clear()  # one snapshot at a time is current
        _ROWS[key] = (snap, rows)
    return rows


def fleet_summary(snap: fleetview.FleetSnapshot) -> dict[str, Any]:
    """Totals of a snapshot, computed once per snapshot (32,000 cost lines at 1,000 plants)."""
    key = ("summary", id(snap))
    with _ROWS_LOCK:
        hit = _SUMMARY.get(key)
        if hit is not None and hit[0] is snap:
            return hit[1]
    spec = snap.fleet.spec
    summary = {
        "plants": len(snap.fleet.plants),
        "deployments": len(snap.plan.deployments),
        "environments": [e.name for e in snap.fleet.environments],
        "series": spec.odoo.series,
        "edition": spec.odoo.edition.value,
        "currency": snap.cost.currency,
        "monthly_cost": round(snap.cost.total_month, 2),
        "warnings": [w.render() for w in snap.warnings],
    }
    with _ROWS_LOCK:
        _SUMMARY.clear()
        _SUMMARY[key] = (snap, summary)
    return summary


def plant_rows(
    snap: fleetview.FleetSnapshot, *, q: str = "", tier: str = "", pattern: str = ""
) -> list[dict[str, Any]]:
    needle = q.strip().lower()
    return [
        r
        for r in all_rows(snap)
        if (not tier or r["tier"] == tier)
        and (not pattern or r["pattern"] == pattern)
        and (
            not needle
            or needle in r["code"].lower()
            or needle in r["name"].lower()
            or needle in r["region"].lower()
        )
    ]


def facets(snap: fleetview.FleetSnapshot) -> dict[str, list[str]]:
    rows = all_rows(snap)
    return {
        "tier": sorted({r["tier"] for r in rows}),
        "pattern": sorted({r["pattern"] for r in rows}),
    }


def plant_detail(snap: fleetview.FleetSnapshot, code: str) -> dict[str, Any]:
    plant = next((p for p in snap.fleet.plants if p.spec.code == code), None)
    if plant is None:
        raise ProblemError(404, f"unknown plant {code!r}; see /api/plants", slug="unknown-plant")
    c = next((c for c in snap.plan.classifications if c.plant == code), None)
    return {
        "code": code,
        "name": plant.spec.name,
        "region": plant.spec.region,
        "timezone": plant.spec.timezone,
        "runtime": plant.spec.runtime,
        "tier": c.tier if c else "",
        "pattern": c.pattern if c else "",
        "production_sync": c.production_sync if c else "",
        "reasons": [
            {
                "rule": r.rule,
                "decides": r.decides,
                "message": r.message,
                "score": r.score,
                "locations": [f"{loc.file}:{loc.line} [{loc.path}]" for loc in r.locations],
            }
            for r in (c.reasons if c else ())
        ],
        "environments": [e.name for e in plant.environments],
        "deployments": [deployment_dict(d) for d in snap.plan.for_plant(code)],
        "monthly_cost": round(snap.cost.for_plant(code), 2),
        "currency": snap.cost.currency,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def backup_dict(b: BackupRecord) -> dict[str, Any]:
    last = b.last_verification
    return {
        "id": b.id,
        "plant": b.plant,
        "env": b.env,
        "tier": b.tier,
        "format": b.format,
        "status": b.status,
        "size_bytes": b.size_bytes,
        "started_at": _iso(b.started_at),
        "finished_at": _iso(b.finished_at),
        "encrypted": b.key_id is not None,
        "verified": b.verified,
        "verification": None
        if last is None
        else {
            "status": last.status,
            "finished_at": _iso(last.finished_at),
            "rto_seconds": last.rto_seconds,
            "rto_objective_seconds": last.rto_objective_seconds,
            "rpo_seconds": last.rpo_seconds,
            "rpo_objective_seconds": last.rpo_objective_seconds,
        },
    }


def newest_verified(backups: Sequence[BackupRecord]) -> BackupRecord | None:
    done = [b for b in backups if b.status == "complete" and b.verified]
    return max(done, key=lambda b: b.finished_at or b.started_at) if done else None


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(0, int(seconds // 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def slo_dict(e: slostatus.EnvSlo) -> dict[str, Any]:
    """One environment's probe SLO for a page: the numbers and a short text."""
    r = e.row
    burn = {w: round(v, 2) for w, v in r.burn_rates.items()}
    shown = " · ".join(f"{w} {burn[w]:g}×" for w in ("1h", "6h") if w in burn)
    return {
        "status": r.status,
        "objective": r.objective,
        "sli": None if r.sli is None else round(r.sli, 4),
        "budget_left": None if r.budget_remaining is None else round(r.budget_remaining * 100, 1),
        "burn": burn,
        "events": r.events,
        "text": f"{shown or 'no run in 6h'} · {r.status}",
    }


_UNIT_COUNTS: list[tuple[Sequence[Any], dict[tuple[str, str], int]]] = []
_UNIT_COUNTS_LOCK = threading.Lock()


def _findings_by_unit(findings: Sequence[Any] | None) -> dict[tuple[str, str], int]:
    """Open findings per (deployment unit, environment), counted once per check result
    (a 1,000-plant fleet has thousands; a page shows 50 plants)."""
    if not findings:
        return {}
    with _UNIT_COUNTS_LOCK:
        if _UNIT_COUNTS and _UNIT_COUNTS[0][0] is findings:
            return _UNIT_COUNTS[0][1]
        counts: dict[tuple[str, str], int] = {}
        for f in findings:
            counts[(f.plant, f.environment)] = counts.get((f.plant, f.environment), 0) + 1
        _UNIT_COUNTS[:] = [(findings, counts)]  # holds the result: its id is not reused
        return counts


def fleet_status(
    state: ServerState,
    snap: fleetview.FleetSnapshot,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    findings: Sequence[Any] | None,
) -> dict[str, dict[str, Any]]:
    """What the store recorded for these plants, per environment: the newest probe run
    (``probe.checked`` events), the newest verified backup's age against the tier's RPO
    (the backup catalog), and the open policy findings (``findings``, the current
    ``plantops check`` result, or None while it is not computed). ``None`` where nothing
    is recorded; the page shows "—" for it."""
    codes = [r["code"] for r in rows]
    probes = state.store.latest_events(PROBE_CHECKED, plants=codes) if codes else {}
    verified = state.catalog.newest_verified_at(codes) if codes else {}
    # the SLO needs probe runs: only plants with a recorded one (none: no query at all)
    probed = sorted({p for p, _ in probes})
    slos = (
        slostatus.slo_from_events(
            snap.plan.deployments, state.store, probed, at=now, for_plant=snap.plan.for_plant
        )
        if probed
        else {}
    )
    # A finding names its deployment unit: a plant's own, or a shared deployment's, whose
    # findings are each of its tenant plants' too (as on the plant page).
    by_unit = _findings_by_unit(findings)
    open_findings: dict[tuple[str, str], int] = {}
    per_plant: dict[str, int] = {}
    for code in codes if findings is not None else ():  # this page's plants only
        for d in snap.plan.for_plant(code):
            n = by_unit.get((d.unit, d.environment.name), 0)
            if n:
                key = (code, d.environment.name)
                open_findings[key] = open_findings.get(key, 0) + n
                per_plant[code] = per_plant.get(code, 0) + n
    tiers = snap.fleet.spec.tiers
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        code = r["code"]
        tier = tiers.get(r["tier"])
        rpo = tier.backup.rpo_minutes * 60.0 if tier is not None else None
        envs: dict[str, Any] = {}
        for env in r["environments"]:
            probe = probes.get((code, env))
            at = verified.get((code, env))
            age = (now - at).total_seconds() if at is not None else None
            envs[env] = {
                "probe": None
                if probe is None
                else {
                    "ok": bool(probe.data.get("ok")),
                    "failed": [str(c) for c in probe.data.get("failed", [])][:10],
                    "age": _age((now - probe.time).total_seconds()),
                },
                "slo_burn": slo_dict(slos[(code, env)]) if (code, env) in slos else None,
                "backup": None
                if age is None
                else {
                    "age": _age(age),
                    "rpo": _age(rpo) if rpo is not None else None,
                    "late": rpo is not None and age > rpo,
                },
                "findings": None if findings is None else open_findings.get((code, env), 0),
            }
        out[code] = {
            "environments": envs,
            "findings": None if findings is None else per_plant.get(code, 0),
        }
    return out


HISTORY_LIMIT = 200  # newest ledger entries of one plant on its page
KIND_LABELS = {"promotion": "promoted", "break-glass": "break-glass", "rollback": "rolled back"}


def plant_history(
    state: ServerState, who: Principal, snap: fleetview.FleetSnapshot, code: str
) -> dict[str, Any] | None:
    """The plant's promotions, break-glass overrides and rollbacks from the ledger, per
    stage in chain order, newest first; None for a plant-it outside its plants (the
    ledger shows a plant-it only its plants' entries)."""
    if not who.may_touch(code):
        return None
    stages = [e.name for e in snap.fleet.environments]
    entries, total = release_services.plant_history(
        state.settings.db_url, code, limit=HISTORY_LIMIT
    )
    by_stage: dict[str, list[dict[str, Any]]] = {name: [] for name in stages}
    for e in entries:
        p = e.payload
        by_stage.setdefault(e.stage, []).append(
            {
                "seq": e.seq,
                "kind": e.kind,
                "label": KIND_LABELS.get(e.kind, e.kind),
                "release": e.release_id,
                "release_short": e.release_id.removeprefix("sha256:")[:12],
                "stage": e.stage,
                "wave": p.get("wave"),
                "actor": e.actor,
                "at": e.recorded_at,
                "reason": str(p.get("reason") or ""),
                "to_release": str(p.get("to_release") or ""),
                "break_glass": bool(p.get("break_glass")),
            }
        )
    return {
        "stages": list(by_stage.items()),
        "total": total,
        "shown": len(entries),
    }


def _window_dict(w: release_services.StageWindow) -> dict[str, Any]:
    return {
        "stage": w.stage,
        "runs_here": w.runs_here,
        "gated": w.gated,
        "open_now": w.open_now,
        "utc": w.next_allowed.isoformat() if w.next_allowed else "",
        "local": w.local.strftime("%Y-%m-%d %H:%M %Z (%a)") if w.local else "",
        "local_iso": w.local.isoformat() if w.local else "",
        "reasons": list(w.reasons),
        "windows": list(w.windows),
    }


def plant_windows(
    snap: fleetview.FleetSnapshot, code: str, *, now: datetime
) -> list[dict[str, Any]]:
    """Per stage the plant's next allowed promotion window (the windows gate's own
    answer), in the plant's timezone and UTC."""
    return [_window_dict(w) for w in release_services.plant_windows(snap.fleet, code, now=now)]


def plant_findings(state: ServerState, snap: fleetview.FleetSnapshot, code: str) -> dict[str, Any]:
    """This plant's open policy findings from the background ``plantops check`` (the
    fleet page's); None while it is being computed. A shared deployment's objects are
    labelled with its unit, not its plants: ``units`` holds the (unit, environment) of
    the plant's deployments, and their findings are the plant's too."""
    units = {(d.unit, d.environment.name) for d in snap.plan.for_plant(code)}
    policy = state.policy.peek(today(), start=state.settings.background_policy)
    if policy is None:
        return {"findings": None, "policy_background": state.settings.background_policy}
    rows = [
        {
            "rule": f.rule,
            "severity": str(f.severity.name).lower(),
            "environment": f.environment,
            "object": f.object_ref,
            "via": "" if f.plant == code else f.plant,
            "message": f.message,
        }
        for f in policy.findings
        if f.plant == code or (f.plant, f.environment) in units
    ]
    rows.sort(key=lambda r: (r["environment"], r["rule"], r["object"]))
    return {"findings": rows, "policy_background": state.settings.background_policy}


def plant_slos(
    state: ServerState,
    snap: fleetview.FleetSnapshot,
    code: str,
    envs: Any,
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """Per environment with recorded probe runs, the probe SLO over its window and the
    error budget left at the end of each day (``points``: (day, percent or None))."""
    found = slostatus.slo_from_events(
        snap.plan.deployments,
        state.store,
        [code],
        at=now,
        daily=True,
        for_plant=snap.plan.for_plant,
    )
    out = []
    for env in envs:
        e = found.get((code, env))
        if e is None:
            continue
        points = [
            (p.end.date().isoformat(), None if p.remaining is None else p.remaining * 100)
            for p in e.points
        ]
        title = f"{env}: probe SLO error budget left, {slostatus.DEFAULT_WINDOW} window"
        out.append({"env": env, **slo_dict(e), "points": points, "chart_title": title})
    return out

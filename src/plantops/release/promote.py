"""Promotion: one release into one stage, wave by wave, through the stage's gates.

Orchestrator: it reads the ledger (authorship, approvals, earlier promotions), the pins of
the fleet repo and the evidence files it is given, evaluates the pure gates
(:mod:`plantops.release.gates`) and, unless ``dry_run``, writes — inside one ledger
transaction that holds the chain's head lock — the release pins of the promoted
deployments (:func:`plantops.release.pins.write_pin`, a compare-and-swap) and the
promotion entry with its gate evidence and rollback references. If anything fails
before the commit, nothing is recorded; two promoters racing for the same release,
stage and plant serialise on the head lock and the second finds the first's claim.

Never prints. The fleet view it takes is built by ``plantops.services``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plantops.errors import NotPermitted, UserError, display_path, resolve_path
from plantops.inputs import Limits, json_value, read_text
from plantops.release.gates import (
    PROBE_SCHEMA,
    REHEARSAL_SCHEMA,
    Approval,
    Evidence,
    PlantTarget,
    PlantVerdict,
    PolicySummary,
    SmokeTarget,
    VulnSummary,
    default_wave,
    evaluate_plant,
)
from plantops.release.lock import Lock
from plantops.release.pins import (
    addon_checksums,
    modules_to_update,
    next_pin,
    read_pin,
    record_from_lock,
    write_pin,
)
from plantops.spec.models import FreezeWindow, ReleaseSettings, Shift, StageRelease
from plantops.store.ledger import Entry, Ledger, LedgerView, NewEntry, PromotionConflict

EVIDENCE_LIMITS = Limits(max_bytes=32 * 1024 * 1024, max_nodes=2_000_000, max_depth=32)


@dataclass(frozen=True)
class PlantInfo:
    code: str
    tier: str
    tier_rank: int
    timezone: str
    environments: tuple[str, ...]
    shifts: tuple[Shift, ...] = ()
    freezes: tuple[FreezeWindow, ...] = ()
    release_wave: int | None = None


@dataclass(frozen=True)
class FleetView:
    """What promotion needs to know of the fleet (built by the services layer)."""

    root: Path
    stages: tuple[str, ...]  # promotion chain order
    production: Mapping[str, bool]
    releases: ReleaseSettings
    plants: Mapping[str, PlantInfo]

    def previous(self, stage: str) -> str | None:
        i = self.stages.index(stage)
        return self.stages[i - 1] if i else None

    def stage_config(self, stage: str) -> StageRelease:
        return self.releases.stages.get(stage, StageRelease())

    def check_stage(self, stage: str, option: str = "--to") -> None:
        if stage not in self.stages:
            raise UserError(
                f"{option} {stage}: not a stage of the fleet (the chain is "
                f"{' → '.join(self.stages)})"
            )

    def waves(self, stage: str) -> dict[int, tuple[str, ...]]:
        """The plants running in ``stage``, by wave number (ascending)."""
        lowest = max((p.tier_rank for p in self.plants.values()), default=1)
        by: dict[int, list[str]] = {}
        for p in self.plants.values():
            if stage in p.environments:
                by.setdefault(default_wave(p.tier_rank, lowest, p.release_wave), []).append(p.code)
        return {w: tuple(sorted(by[w])) for w in sorted(by)}


@dataclass(frozen=True)
class BreakGlass:
    reason: str
    approvers: tuple[str, ...]

    def check(self, actor: str, author: str | None) -> None:
        if len(self.reason.strip()) < 10:
            raise UserError("--break-glass needs a reason of at least 10 characters")
        people = set(self.approvers)
        if len(people) < 2 or len(people) != len(self.approvers):
            raise UserError("--break-glass needs two different --approver USER")
        if author is not None and author in people:
            raise UserError(f"--approver {author}: the release author cannot approve break-glass")
        if actor in people:
            raise UserError(
                f"--approver {actor}: the promoter cannot approve their own break-glass"
            )


@dataclass(frozen=True)
class GateInputs:
    """Evidence prepared at the edge (the vulnerability and policy verdicts need the fleet)."""

    vulns: Mapping[tuple[str, str], VulnSummary] | None = None
    policy: Mapping[str, PolicySummary] | None = None
    rehearsal_files: Sequence[Path] = ()
    smoke_files: Sequence[Path] = ()
    config_hash_now: str | None = None
    latest_verified_backup: Callable[[str, str], str | None] = lambda plant, env: None


@dataclass(frozen=True)
class PromotionResult:
    release: str
    stage: str
    wave: int | None
    dry_run: bool
    waves: Mapping[int, tuple[str, ...]]
    verdicts: tuple[PlantVerdict, ...] = ()
    promoted: tuple[str, ...] = ()
    pins: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()
    break_glass: BreakGlass | None = None
    message: str = ""
    commit: str | None = None  # the fleet repo commit of the pins, when it is a Git repo
    commit_error: str = ""

    @property
    def blocked(self) -> tuple[PlantVerdict, ...]:
        return tuple(v for v in self.verdicts if v.plant not in self.promoted and not v.ok)

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "stage": self.stage,
            "wave": self.wave,
            "dry_run": self.dry_run,
            "waves": {str(w): list(p) for w, p in self.waves.items()},
            "promoted": list(self.promoted),
            "pins": list(self.pins),
            "ledger": [e.seq for e in self.entries],
            "break_glass": (
                {"reason": self.break_glass.reason, "approvers": list(self.break_glass.approvers)}
                if self.break_glass
                else None
            ),
            "plants": [v.as_dict() for v in self.verdicts],
            "message": self.message,
            "commit": self.commit,
            "commit_error": self.commit_error,
        }


def parse_instant(value: str | None, option: str = "--now") -> dt.datetime:
    """An ISO 8601 instant with its offset (``2026-12-05T10:00:00Z``); now when omitted."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value}: expected ISO 8601, e.g. 2026-12-05T10:00:00Z") from None
    if when.tzinfo is None:
        raise UserError(f"{option} {value}: give the offset (Z or +01:00); plants span timezones")
    return when


# --- ledger reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseHistory:
    """What the ledger knows of one release."""

    author: str | None
    addons: Mapping[str, str] | None
    promoted: Mapping[str, Mapping[str, dt.datetime]]  # stage → plant → when
    approvals: Mapping[str, tuple[Approval, ...]] = field(default_factory=dict)


def _when(entry: Entry) -> dt.datetime:
    return dt.datetime.fromisoformat(entry.recorded_at)


def history_of(entries: Sequence[Entry]) -> ReleaseHistory:
    author: str | None = None
    addons: Mapping[str, str] | None = None
    promoted: dict[str, dict[str, dt.datetime]] = {}
    approvals: dict[str, list[Approval]] = {}
    for e in entries:
        if e.kind == "release" and author is None:
            author = e.actor
            addons = dict(e.payload.get("addons", {}))
        elif e.kind == "promotion":
            for plant in e.payload.get("plants", []):
                promoted.setdefault(e.stage, {}).setdefault(str(plant), _when(e))
        elif e.kind == "approval":
            approvals.setdefault(e.stage, []).append(
                Approval(
                    str(e.payload.get("user")),
                    str(e.payload.get("role")),
                    e.seq,
                    str(e.payload.get("comment", "")),
                )
            )
    return ReleaseHistory(author, addons, promoted, {s: tuple(a) for s, a in approvals.items()})


def release_entry(lock: Lock, author: str) -> NewEntry:
    return NewEntry(
        "release",
        release_id=lock.id,
        actor=author,
        payload={
            "image": dict(lock.content.get("image", {})),
            "odoo": dict(lock.content.get("odoo", {})),
            "config": dict(lock.content.get("config", {})),
            "addons": addon_checksums(lock.content),
        },
    )


def register_release(ledger: Ledger, lock: Lock, author: str, now: dt.datetime) -> Entry | None:
    """Record the release and its author once; ``None`` when it was recorded already."""
    if not author.strip():
        raise UserError("--as USER: the release author is required")
    existing = ledger.entries(release_id=lock.id, kinds=("release",))
    if existing:
        if existing[0].actor != author:
            raise UserError(
                f"release {lock.id[:19]}… was registered by {existing[0].actor} (ledger entry "
                f"{existing[0].seq}); its author cannot change"
            )
        return None

    def once(view: LedgerView) -> None:
        if view.entries(release_id=lock.id, kinds=("release",)):
            raise PromotionConflict(f"release {lock.id[:19]}… was registered meanwhile")

    return ledger.append([release_entry(lock, author)], now=now, guard=once)[0]


def _require_registered(hist: ReleaseHistory, lock: Lock) -> None:
    if hist.author is None:
        raise UserError(
            f"release {lock.id[:19]}… is not in the ledger: record it and its author first "
            f"(`plantops release register {lock.file} --as AUTHOR`, or "
            "`plantops release create … --as AUTHOR`)"
        )


def approve(
    ledger: Ledger,
    lock: Lock,
    fleet: FleetView,
    *,
    stage: str,
    user: str,
    role: str,
    now: dt.datetime,
    comment: str = "",
) -> Entry:
    """Record one approval of ``lock`` for ``stage`` (the author cannot approve); a
    ``comment`` joins the entry's payload when given."""
    fleet.check_stage(stage, "--stage")
    if not user.strip() or not role.strip():
        raise UserError("--as USER and --role ROLE are required")
    known_roles = {
        r
        for cfg in fleet.releases.stages.values()
        for rule in (cfg.approvals, *cfg.approvals_by_tier.values())
        for r in rule.roles
    }
    if known_roles and role not in known_roles:
        raise UserError(
            f"--role {role}: no stage asks for it (roles in fleet.yaml releases: "
            f"{', '.join(sorted(known_roles))})"
        )

    def guard(view: LedgerView) -> None:
        hist = history_of(view.entries(release_id=lock.id))
        _require_registered(hist, lock)
        if user == hist.author:
            raise NotPermitted(f"--as {user}: the author of a release cannot approve it")
        for a in hist.approvals.get(stage, ()):
            if a.user == user and a.role == role:
                raise UserError(f"{user} approved {stage} as {role} already (ledger entry {a.seq})")

    entry = NewEntry(
        "approval",
        release_id=lock.id,
        stage=stage,
        actor=user,
        payload={"user": user, "role": role, **({"comment": comment} if comment else {})},
    )
    return ledger.append([entry], now=now, guard=guard)[0]


# --- evidence files -------------------------------------------------------------------------


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def read_rehearsals(files: Sequence[Path]) -> dict[str, tuple[Mapping[str, Any], str]]:
    """Rehearsal results by plant (schema ``plantops.io/rehearsal/v1``)."""
    out: dict[str, tuple[Mapping[str, Any], str]] = {}
    for path in files:
        shown = display_path(path, Path.cwd())
        text = read_text(path, shown, limits=EVIDENCE_LIMITS)
        doc = json_value(text, shown, limits=EVIDENCE_LIMITS)
        if not isinstance(doc, dict) or doc.get("schema") != REHEARSAL_SCHEMA:
            raise UserError(f"{shown}: not a rehearsal result (expected schema {REHEARSAL_SCHEMA})")
        plant = doc.get("plant")
        if not isinstance(plant, str):
            raise UserError(f"{shown}: rehearsal result without a plant")
        if plant in out:
            raise UserError(f"{shown}: a second rehearsal result for {plant}")
        out[plant] = (doc, _digest(text))
    return out


def read_smoke(files: Sequence[Path], stage: str) -> dict[str, SmokeTarget]:
    """The probe targets of ``stage`` by plant, from ``plantops probe run --format json``."""
    out: dict[str, SmokeTarget] = {}
    for path in files:
        shown = display_path(path, Path.cwd())
        text = read_text(path, shown, limits=EVIDENCE_LIMITS)
        doc = json_value(text, shown, limits=EVIDENCE_LIMITS)
        if not isinstance(doc, dict) or doc.get("schema") != PROBE_SCHEMA:
            raise UserError(f"{shown}: not a probe run (expected schema {PROBE_SCHEMA})")
        for t in doc.get("targets", []):
            if not isinstance(t, dict) or t.get("environment") != stage:
                continue
            checks = [c for c in t.get("checks", []) if isinstance(c, dict)]
            serie = next(
                (
                    str(c["data"]["server_serie"])
                    for c in checks
                    if c.get("check") == "version"
                    and isinstance(c.get("data"), dict)
                    and "server_serie" in c["data"]
                ),
                None,
            )
            failed = tuple(
                f"{c.get('check')}: {c.get('detail', '')}"
                for c in checks
                if c.get("status") == "fail"
            )
            out[str(t.get("plant"))] = SmokeTarget(
                ok=bool(t.get("ok")) and not failed,
                expected_version=t.get("expected_version"),
                server_serie=serie,
                failed=failed,
                digest=_digest(text),
            )
    return out


# --- promotion ------------------------------------------------------------------------------


def _evidence(
    lock: Lock,
    fleet: FleetView,
    stage: str,
    hist: ReleaseHistory,
    lookup: Mapping[str, ReleaseHistory],
    inputs: GateInputs,
    waves: Mapping[int, tuple[str, ...]],
    plants: Sequence[str],
) -> Evidence:
    prev = fleet.previous(stage)
    changed: dict[str, tuple[str, ...]] = {}
    for p in plants:
        changed[p] = _changed_modules(fleet.root, p, stage, lock, lookup)
    prev_promoted = hist.promoted.get(prev, {}) if prev else {}
    dirty = tuple(
        sorted(
            str(a["name"])
            for a in lock.content.get("addons", [])
            if isinstance(a, dict)
            and isinstance(a.get("source"), dict)
            and a["source"].get("dirty")
        )
    )
    return Evidence(
        lock_id=lock.id,
        series=str(lock.content["odoo"]["series"]),
        dirty_addons=dirty,
        config_hash_now=inputs.config_hash_now,
        config_hash_lock=str(lock.content.get("config", {}).get("sha256", "")) or None,
        vulns=inputs.vulns,
        policy=inputs.policy,
        rehearsals=read_rehearsals(inputs.rehearsal_files),
        latest_verified_backup={p: inputs.latest_verified_backup(p, stage) for p in plants},
        changed_modules=changed,
        smoke=read_smoke(inputs.smoke_files, prev) if prev else {},
        approvals=hist.approvals.get(stage, ()),
        author=hist.author,
        previous_stage=prev,
        previous_promoted=prev_promoted,
        previous_first=min(prev_promoted.values()) if prev_promoted else None,
        promoted_here=hist.promoted.get(stage, {}),
        wave_plants=waves,
    )


def _changed_modules(
    root: Path, plant: str, stage: str, lock: Lock, lookup: Mapping[str, ReleaseHistory]
) -> tuple[str, ...]:
    current = read_pin(root, plant, stage)
    if current is None or current.current.release == lock.id:
        return modules_to_update(None, lock.content)
    known = lookup.get(current.current.release)
    if known is None or known.addons is None:
        raise UserError(
            f"{plant}/{stage} runs release {current.current.release[:19]}…, which is not in "
            "the ledger: register its lock (`plantops release register OLD.lock --as AUTHOR`) "
            "so the changed modules can be told"
        )
    old = {"addons": [{"name": n, "checksum": c} for n, c in known.addons.items()]}
    return modules_to_update(old, lock.content)


def _targets(fleet: FleetView, stage: str, plants: Sequence[str], wave: int) -> list[PlantTarget]:
    prev = fleet.previous(stage)
    out = []
    for code in plants:
        p = fleet.plants[code]
        out.append(
            PlantTarget(
                plant=code,
                tier=p.tier,
                wave=wave,
                timezone=p.timezone,
                shifts=p.shifts,
                freezes=p.freezes,
                in_previous_stage=prev in p.environments if prev else False,
            )
        )
    return out


def promote(
    ledger: Ledger,
    lock: Lock,
    fleet: FleetView,
    *,
    stage: str,
    actor: str,
    now: dt.datetime,
    inputs: GateInputs,
    wave: int | None = None,
    only: Sequence[str] = (),
    dry_run: bool = False,
    break_glass: BreakGlass | None = None,
) -> PromotionResult:
    """Evaluate the gates of ``stage``'s wave for ``lock`` and, unless ``dry_run``, promote
    the plants that pass (all of the wave's selected plants under break-glass)."""
    fleet.check_stage(stage)
    waves = fleet.waves(stage)
    if not waves:
        raise UserError(f"--to {stage}: no plant runs in {stage}")
    for code in only:
        if code not in fleet.plants:
            raise UserError(f"--plant {code}: not a plant of the fleet")
        if stage not in fleet.plants[code].environments:
            raise UserError(f"--plant {code}: does not run in {stage}")
    every = ledger.entries()
    by_release: dict[str, list[Entry]] = {}
    for e in every:
        by_release.setdefault(e.release_id, []).append(e)
    lookup = {r: history_of(es) for r, es in by_release.items()}
    hist = lookup.get(lock.id) or history_of([])
    _require_registered(hist, lock)
    if break_glass is not None:
        break_glass.check(actor, hist.author)
    done = hist.promoted.get(stage, {})
    if wave is None:
        pending = [w for w, ps in waves.items() if any(p not in done for p in ps)]
        if not pending:
            return PromotionResult(
                lock.id,
                stage,
                None,
                dry_run,
                waves,
                message=f"release {lock.id[:19]}… is in every wave of {stage} already",
            )
        wave = pending[0]
    if wave not in waves:
        raise UserError(f"--wave {wave}: {stage} has waves {', '.join(map(str, waves))}")
    plants = [p for p in waves[wave] if (not only or p in only) and p not in done]
    if not plants:
        return PromotionResult(
            lock.id,
            stage,
            wave,
            dry_run,
            waves,
            message=f"wave {wave} of {stage} has the release already",
        )
    ev = _evidence(lock, fleet, stage, hist, lookup, inputs, waves, plants)
    cfg = fleet.stage_config(stage)
    verdicts = tuple(
        evaluate_plant(
            stage,
            t,
            cfg,
            ev,
            production=fleet.production.get(stage, False),
            margin_minutes=fleet.releases.shift_change_margin_minutes,
            now=now,
        )
        for t in _targets(fleet, stage, plants, wave)
    )
    chosen = tuple(v.plant for v in verdicts if v.ok or break_glass is not None)
    if dry_run or not chosen:
        return PromotionResult(lock.id, stage, wave, dry_run, waves, verdicts)
    return _record(
        ledger, lock, fleet, stage, wave, waves, actor, now, verdicts, chosen, ev, break_glass
    )


def _record(
    ledger: Ledger,
    lock: Lock,
    fleet: FleetView,
    stage: str,
    wave: int,
    waves: Mapping[int, tuple[str, ...]],
    actor: str,
    now: dt.datetime,
    verdicts: tuple[PlantVerdict, ...],
    chosen: tuple[str, ...],
    ev: Evidence,
    break_glass: BreakGlass | None,
) -> PromotionResult:
    written: list[str] = []
    pins: dict[str, Any] = {}
    rollback: dict[str, Any] = {}

    def guard(view: LedgerView) -> None:
        # Under the head lock: what another promoter committed is visible, nothing new can be.
        claimed = view.claims(lock.id, stage)
        taken = [p for p in chosen if p in claimed]
        if taken:
            raise PromotionConflict(
                f"{', '.join(taken)}: release {lock.id[:19]}… was promoted to {stage} already "
                f"(ledger entry {claimed[taken[0]]}); nothing written"
            )
        for plant in chosen:
            current = read_pin(fleet.root, plant, stage)
            record = record_from_lock(
                lock, stage=stage, promoted_at=now, update_modules=ev.changed_modules.get(plant, ())
            )
            pin = next_pin(current, record, plant=plant, environment=stage)
            path = write_pin(fleet.root, pin, replaces=current)
            written.append(str(path))
            pins[plant] = {
                "file": path.relative_to(fleet.root).as_posix(),
                "digest": pin.digest,
                "replaces": current.digest if current else None,
                "update_modules": list(record.update_modules),
            }
            rollback[plant] = {
                "previous_release": current.current.release if current else None,
                "plan": f"plantops rollback --fleet {fleet.root} --plant {plant} --env {stage}",
            }

    by_plant = {v.plant: v for v in verdicts}
    gates = {p: [g.as_dict() for g in by_plant[p].gates] for p in chosen}
    overridden = {p: [g.gate for g in by_plant[p].failed] for p in chosen if by_plant[p].failed}
    entries: list[NewEntry] = []
    if break_glass is not None:
        entries.append(
            NewEntry(
                "break-glass",
                release_id=lock.id,
                stage=stage,
                actor=actor,
                payload={
                    "reason": break_glass.reason,
                    "approvers": list(break_glass.approvers),
                    "wave": wave,
                    "plants": list(chosen),
                    "overridden_gates": overridden,
                },
            )
        )
    entries.append(
        NewEntry(
            "promotion",
            release_id=lock.id,
            stage=stage,
            actor=actor,
            payload={
                "wave": wave,
                "plants": list(chosen),
                "gates": gates,
                "pins": pins,
                "rollback": rollback,
                "break_glass": break_glass is not None,
            },
        )
    )

    # The payload holds the very dicts the guard fills (pins are written under the ledger
    # lock); append canonicalises the entries only after its guard ran.
    recorded = ledger.append(
        entries, now=now, claims=[(lock.id, stage, p) for p in chosen], guard=guard
    )
    message = commit_message(lock.id, stage, wave, verdicts, chosen, recorded, break_glass)
    commit, error = commit_pins(fleet.root, [Path(p) for p in written], message)
    return PromotionResult(
        lock.id,
        stage,
        wave,
        False,
        waves,
        verdicts,
        chosen,
        tuple(written),
        tuple(recorded),
        break_glass,
        commit=commit,
        commit_error=error,
    )


def commit_message(
    release: str,
    stage: str,
    wave: int,
    verdicts: Sequence[PlantVerdict],
    chosen: Sequence[str],
    recorded: Sequence[Entry],
    break_glass: BreakGlass | None,
) -> str:
    """Names the release, stage, wave, plants and the gate evidence (pure)."""
    lines = [f"promote {release[:19]} to {stage} wave {wave}: {', '.join(chosen)}", ""]
    if break_glass is not None:
        lines.append(f"BREAK-GLASS by {', '.join(break_glass.approvers)}: {break_glass.reason}")
    for v in verdicts:
        if v.plant in chosen:
            gates = ", ".join(f"{g.gate} {'ok' if g.ok else 'OVERRIDDEN'}" for g in v.gates)
            lines.append(f"{v.plant}: {gates}")
    last = recorded[-1]
    lines += ["", f"Release: {release}", f"Ledger-Entry: {last.seq} {last.hash}"]
    return "\n".join(lines) + "\n"


def commit_pins(root: Path, paths: Sequence[Path], message: str) -> tuple[str | None, str]:
    """Commit the written pins (only them) when the fleet repo is a Git work tree; the
    promotion is recorded already, so a failure is reported, not raised."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip

    try:
        if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
            return None, ""
        rel = [str(resolve_path(p).relative_to(resolve_path(root))) for p in paths]
        added = git("add", "--", *rel)
        done = git("commit", "-q", "-m", message, "--", *rel) if added.returncode == 0 else added
        if done.returncode != 0:
            return None, (done.stderr or done.stdout).strip()
        return git("rev-parse", "HEAD").stdout.strip(), ""
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return None, str(exc)


# --- status -----------------------------------------------------------------------------------

EVIDENCE_GATES = ("vulnerabilities", "policy", "rehearsal", "smoke")
"""Gates whose evidence is given to ``promote`` (files), not kept in the ledger: status
lists them as "at promote" instead of evaluating them."""


@dataclass(frozen=True)
class WaveStatus:
    wave: int
    plants: tuple[str, ...]
    promoted: Mapping[str, dt.datetime]
    verdicts: tuple[PlantVerdict, ...] = ()

    @property
    def state(self) -> str:
        if not self.promoted:
            return "pending"
        return "done" if len(self.promoted) == len(self.plants) else "partial"

    def as_dict(self) -> dict[str, Any]:
        return {
            "wave": self.wave,
            "state": self.state,
            "plants": list(self.plants),
            "promoted": {p: t.isoformat() for p, t in sorted(self.promoted.items())},
            "gates": [v.as_dict() for v in self.verdicts],
        }


@dataclass(frozen=True)
class StageStatus:
    stage: str
    gates: tuple[str, ...]
    waves: tuple[WaveStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "gates": list(self.gates),
            "waves": [w.as_dict() for w in self.waves],
        }


@dataclass(frozen=True)
class ReleaseStatus:
    release: str
    author: str | None
    stages: tuple[StageStatus, ...]
    approvals: Mapping[str, tuple[Approval, ...]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "author": self.author,
            "approvals": {
                s: [
                    {"user": a.user, "role": a.role, "seq": a.seq, "comment": a.comment} for a in ap
                ]
                for s, ap in sorted(self.approvals.items())
            },
            "stages": [s.as_dict() for s in self.stages],
            "evidence_gates_at_promote": list(EVIDENCE_GATES),
        }


def status(ledger: Ledger, lock: Lock, fleet: FleetView, *, now: dt.datetime) -> ReleaseStatus:
    """Stages × waves: what has the release, and the ledger-backed gates of the next wave."""
    hist = history_of(ledger.entries(release_id=lock.id))
    stages: list[StageStatus] = []
    for stage in fleet.stages:
        waves = fleet.waves(stage)
        done = hist.promoted.get(stage, {})
        cfg = fleet.stage_config(stage)
        prev = fleet.previous(stage)
        prev_promoted = hist.promoted.get(prev, {}) if prev else {}
        ev = Evidence(
            lock_id=lock.id,
            series=str(lock.content["odoo"]["series"]),
            approvals=hist.approvals.get(stage, ()),
            author=hist.author,
            previous_stage=prev,
            previous_promoted=prev_promoted,
            previous_first=min(prev_promoted.values()) if prev_promoted else None,
            promoted_here=done,
            wave_plants=waves,
        )
        next_wave = next((w for w, ps in waves.items() if any(p not in done for p in ps)), None)
        rows = []
        for w, plants in waves.items():
            verdicts: tuple[PlantVerdict, ...] = ()
            if w == next_wave and hist.author is not None:
                pending = [p for p in plants if p not in done]
                verdicts = tuple(
                    evaluate_plant(
                        stage,
                        t,
                        cfg,
                        ev,
                        production=fleet.production.get(stage, False),
                        margin_minutes=fleet.releases.shift_change_margin_minutes,
                        now=now,
                        skip=EVIDENCE_GATES,
                    )
                    for t in _targets(fleet, stage, pending, w)
                )
            rows.append(WaveStatus(w, plants, {p: done[p] for p in plants if p in done}, verdicts))
        stages.append(StageStatus(stage, tuple(cfg.gates), tuple(rows)))
    return ReleaseStatus(lock.id, hist.author, tuple(stages), hist.approvals)


__all__ = [
    "EVIDENCE_GATES",
    "BreakGlass",
    "FleetView",
    "GateInputs",
    "PlantInfo",
    "PromotionResult",
    "ReleaseHistory",
    "ReleaseStatus",
    "StageStatus",
    "WaveStatus",
    "approve",
    "commit_message",
    "commit_pins",
    "history_of",
    "parse_instant",
    "promote",
    "read_rehearsals",
    "read_smoke",
    "register_release",
    "release_entry",
    "status",
]


@dataclass(frozen=True)
class StageRollout:
    """One stage of the fleet's rollout plan: its gates and its waves (no ledger)."""

    stage: str
    production: bool
    config: StageRelease
    waves: Mapping[int, tuple[str, ...]]

    def as_dict(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "stage": self.stage,
            "production": self.production,
            "gates": list(cfg.gates),
            "approvals": cfg.approvals.model_dump(),
            "approvals_by_tier": {
                t: a.model_dump() for t, a in sorted(cfg.approvals_by_tier.items())
            },
            "soak_hours": cfg.soak_hours,
            "wave_soak_hours": cfg.wave_soak_hours,
            "windows": [w.name for w in cfg.windows],
            "waves": [{"wave": w, "plants": list(ps)} for w, ps in self.waves.items()],
        }


def rollout(fleet: FleetView) -> tuple[StageRollout, ...]:
    """The promotion chain as the fleet defines it: every stage's gates and which plants
    go in which wave (``release_wave`` in a plant file, else by tier: the least demanding
    tier first). What any release will go through, before one exists."""
    return tuple(
        StageRollout(
            stage,
            fleet.production.get(stage, False),
            fleet.stage_config(stage),
            fleet.waves(stage),
        )
        for stage in fleet.stages
    )

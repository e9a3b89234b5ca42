"""Use cases behind ``plantops promote``, ``plantops release register|approve|status`` and
``plantops ledger verify|export`` (docs/releases.md).

They load the fleet (stage chain, tiers, plant calendars), prepare the evidence the gates
read (scanner reports, ``plantops check``, the backup catalog's newest verified backup,
the fleet's configuration hash) and call the release orchestrator. SQLAlchemy (through the
ledger) is imported inside the functions: ``plantops plan`` must not pay for it at start-up.
Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plantops.errors import NotFound, UserError
from plantops.services import check_target, fleet_config_hash, open_fleet

if TYPE_CHECKING:
    from plantops.model import Fleet
    from plantops.release import Lock
    from plantops.release.gates import PolicySummary, VulnSummary
    from plantops.release.promote import FleetView, PromotionResult, ReleaseStatus, StageRollout
    from plantops.store.ledger import Entry
    from plantops.store.ledger import Verification as LedgerVerification


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


def fleet_view(root: Path, *, today: dt.date) -> FleetView:
    """The fleet as promotion sees it: the stage chain, each plant's tier, wave inputs,
    timezone, shifts and freezes, and the releases settings of fleet.yaml."""
    from plantops.classify import classify_fleet
    from plantops.release.promote import FleetView, PlantInfo

    res = open_fleet(root, today=today)
    fleet = res.fleet
    tiers = {c.plant: c.tier for c in classify_fleet(fleet, ())}
    stages = tuple(e.name for e in sorted(fleet.environments, key=lambda e: e.order))
    for name in fleet.spec.releases.stages:
        if name not in stages:
            raise UserError(
                f"{root / 'fleet.yaml'}: releases.stages.{name}: not an environment "
                f"(stages: {', '.join(stages)})"
            )
    for name, cfg in fleet.spec.releases.stages.items():
        for tier in cfg.approvals_by_tier:
            if tier not in fleet.spec.tiers:
                raise UserError(
                    f"{root / 'fleet.yaml'}: releases.stages.{name}.approvals_by_tier.{tier}: "
                    f"not a tier (tiers: {', '.join(sorted(fleet.spec.tiers))})"
                )
    policy = fleet.spec.releases.vulns_policy
    if policy is not None and (Path(policy).is_absolute() or ".." in Path(policy).parts):
        raise UserError(
            f"{root / 'fleet.yaml'}: releases.vulns_policy {policy}: give a path inside the "
            "fleet repository"
        )
    plants = {
        p.spec.code: PlantInfo(
            code=p.spec.code,
            tier=tiers[p.spec.code],
            tier_rank=fleet.spec.tiers[tiers[p.spec.code]].rank,
            timezone=p.spec.timezone,
            environments=tuple(e.name for e in p.environments),
            shifts=tuple(p.spec.shifts),
            freezes=tuple(p.spec.freeze_windows),
            release_wave=p.spec.release_wave,
        )
        for p in fleet.plants
    }
    return FleetView(
        root=root,
        stages=stages,
        production={e.name: e.production for e in fleet.environments},
        releases=fleet.spec.releases,
        plants=plants,
    )


def register_release(
    lock_file: Path, *, author: str, db: str | None, now: dt.datetime
) -> Entry | None:
    """Record a release and its author in the ledger (once)."""
    from plantops.release import promote as release_promote
    from plantops.release import read_lock
    from plantops.store.ledger import open_ledger

    lock = read_lock(lock_file)
    ledger = open_ledger(db)
    try:
        return release_promote.register_release(ledger, lock, author, now)
    finally:
        ledger.close()


def approve_release(
    root: Path,
    lock_file: Path,
    *,
    stage: str,
    user: str,
    role: str,
    db: str | None,
    now: dt.datetime,
    comment: str = "",
) -> Entry:
    """``plantops release approve`` (and the server's approvals): one approval in the
    ledger; the release's author is refused (:class:`plantops.errors.NotPermitted`)."""
    from plantops.release import promote as release_promote
    from plantops.release import read_lock
    from plantops.store.ledger import open_ledger

    lock = read_lock(lock_file)
    view = fleet_view(root, today=now.date())
    ledger = open_ledger(db)
    try:
        return release_promote.approve(
            ledger, lock, view, stage=stage, user=user, role=role, now=now, comment=comment
        )
    finally:
        ledger.close()


def _vuln_summaries(
    root: Path,
    view: FleetView,
    stage: str,
    reports: Sequence[Path],
    today: dt.date,
) -> dict[tuple[str, str], VulnSummary]:
    from plantops.release.gates import VulnSummary
    from plantops.vulns import DEFAULT_POLICY, evaluate_gate, load_policy, read_report

    policy_file = view.releases.vulns_policy
    policy = load_policy(root / policy_file) if policy_file else DEFAULT_POLICY
    read = [read_report(p) for p in reports]
    rows = [v for r in read for v in r.vulnerabilities]
    digest = hashlib.sha256()
    for p in sorted(reports):
        digest.update(p.read_bytes())
    out: dict[tuple[str, str], VulnSummary] = {}
    for tier in sorted({p.tier for p in view.plants.values()}):
        result = evaluate_gate(
            rows,
            policy,
            tier=tier,
            env=stage,
            today=today,
            require=False,
            reports=[r.file for r in read],
        )
        out[(tier, stage)] = VulnSummary(
            result.ok,
            tuple(f"{v.id} {v.package} {v.installed} ({v.severity})" for v in result.blocking),
            "sha256:" + digest.hexdigest(),
        )
    return out


def _policy_summaries(root: Path, today: dt.date) -> dict[str, PolicySummary]:
    from plantops.release.gates import PolicySummary

    result = check_target(root, today=today)
    failing: dict[str, list[str]] = {}
    for f in result.failing:
        failing.setdefault(f.environment, []).append(f"{f.rule} {f.object_ref}: {f.message}")
    digest = hashlib.sha256(
        "\n".join(
            sorted(f"{f.environment}|{f.rule}|{f.object_ref}" for f in result.findings)
        ).encode()
    ).hexdigest()
    envs = {f.environment for f in result.findings} | set(failing)
    return {
        env: PolicySummary(env not in failing, tuple(failing.get(env, ())), "sha256:" + digest)
        for env in envs
    }


def _latest_verified(db: str | None) -> Callable[[str, str], str | None]:
    from plantops.store import open_catalog

    catalog = open_catalog(db)

    def latest(plant: str, env: str) -> str | None:
        for b in catalog.list_backups(plant=plant, env=env, statuses=("complete",)):
            if b.verified:
                return b.id
        return None

    return latest


def promote_release(
    root: Path,
    lock_file: Path,
    *,
    to: str,
    actor: str,
    now: dt.datetime,
    db: str | None = None,
    wave: int | None = None,
    plants: Sequence[str] = (),
    dry_run: bool = False,
    vulns: Sequence[Path] = (),
    rehearsals: Sequence[Path] = (),
    smoke: Sequence[Path] = (),
    break_glass: tuple[str, Sequence[str]] | None = None,
) -> PromotionResult:
    """``plantops promote``: gates per plant of the stage's wave, then pins + ledger.

    ``break_glass`` is (reason, approvers): failed gates are overridden and the override is
    recorded as its own ledger entry."""
    from plantops.plan import build_plan
    from plantops.release import promote as release_promote
    from plantops.release import read_lock
    from plantops.store.ledger import open_ledger

    lock = read_lock(lock_file)
    today = now.date()
    view = fleet_view(root, today=today)
    view.check_stage(to)
    gates = set(view.stage_config(to).gates)
    res = open_fleet(root, today=today)
    inputs = release_promote.GateInputs(
        vulns=_vuln_summaries(root, view, to, vulns, today)
        if "vulnerabilities" in gates and vulns
        else None,
        policy=_policy_summaries(root, today) if "policy" in gates else None,
        rehearsal_files=tuple(rehearsals),
        smoke_files=tuple(smoke),
        config_hash_now=fleet_config_hash(build_plan(res.fleet)) if "addons" in gates else None,
        latest_verified_backup=_latest_verified(db)
        if "rehearsal" in gates
        else (lambda p, e: None),
    )
    ledger = open_ledger(db)
    try:
        return release_promote.promote(
            ledger,
            lock,
            view,
            stage=to,
            actor=actor,
            now=now,
            inputs=inputs,
            wave=wave,
            only=plants,
            dry_run=dry_run,
            break_glass=release_promote.BreakGlass(break_glass[0], tuple(break_glass[1]))
            if break_glass is not None
            else None,
        )
    finally:
        ledger.close()


def release_waves(root: Path, *, today: dt.date) -> tuple[StageRollout, ...]:
    """``plantops release waves``: the fleet's rollout plan (stages, gates, waves)."""
    from plantops.release import promote as release_promote

    return release_promote.rollout(fleet_view(root, today=today))


def verify_lock(lock_file: Path) -> Lock:
    """``plantops release verify``: the lock, read back only if its content still hashes
    to its id (an edited lock is refused)."""
    from plantops.release import read_lock

    return read_lock(lock_file)


def release_diff(old: Path, new: Path) -> list[str]:
    """``plantops release diff``: the addons of ``new`` whose checksum differs from
    ``old``'s (or that are new) — what the migration must update with ``odoo -u``."""
    from plantops.addons import changed_addons
    from plantops.release import read_lock

    def sums(content: Mapping[str, object]) -> dict[str, str]:
        addons = content.get("addons", [])
        return {
            str(a["name"]): str(a["checksum"])
            for a in (addons if isinstance(addons, list) else [])
            if isinstance(a, dict) and a.get("installable", True)
        }

    return list(changed_addons(sums(read_lock(old).content), sums(read_lock(new).content)))


def release_status(
    root: Path, lock_file: Path, *, db: str | None, now: dt.datetime
) -> ReleaseStatus:
    """``plantops release status``: stages × waves × gates from the ledger."""
    return release_statuses(root, [lock_file], db=db, now=now)[0]


def release_statuses(
    root: Path, lock_files: Sequence[Path], *, db: str | None, now: dt.datetime
) -> tuple[ReleaseStatus, ...]:
    """``release status`` of several releases over one fleet view and one ledger (the
    server's promotion matrix)."""
    from plantops.release import promote as release_promote
    from plantops.release import read_lock
    from plantops.store.ledger import open_ledger

    locks = [read_lock(f) for f in lock_files]
    view = fleet_view(root, today=now.date())
    ledger = open_ledger(db)
    try:
        return tuple(release_promote.status(ledger, lock, view, now=now) for lock in locks)
    finally:
        ledger.close()


@dataclass(frozen=True)
class LockIndex:
    """The release locks of a directory by id; files that are no valid lock, with why."""

    locks: Mapping[str, Path]
    refused: tuple[str, ...] = ()

    def find(self, release_id: str) -> Path:
        """The lock of ``release_id`` (``sha256:<hex>`` or the bare hex)."""
        wanted = release_id if release_id.startswith("sha256:") else f"sha256:{release_id}"
        found = self.locks.get(wanted)
        if found is None:
            raise NotFound(f"release {release_id}: no lock for it among the release locks")
        return found


def release_locks(directory: Path) -> LockIndex:
    """Every ``*.lock`` file of ``directory`` that is a valid release lock, by id."""
    from plantops.release import LockError, read_lock

    locks: dict[str, Path] = {}
    refused: list[str] = []
    for path in sorted(directory.glob("*.lock")) if directory.is_dir() else ():
        try:
            locks.setdefault(read_lock(path).id, path)
        except LockError as exc:
            refused.append(str(exc))
    return LockIndex(locks, tuple(refused))


def save_release_lock(directory: Path, lock_id: str, text: str) -> Path:
    """Write a lock (the text ``create_release`` made) as ``<hex>.lock`` in ``directory``."""
    from plantops.outputs import write_text_atomically

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{lock_id.removeprefix('sha256:')}.lock"
    write_text_atomically(path, text)
    return path


def ledger_releases(db: str | None) -> list[Entry]:
    """The ``release`` entries of the ledger (id, author, when), oldest first."""
    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    try:
        return ledger.entries(kinds=("release",))
    finally:
        ledger.close()


def ledger_page(db: str | None, *, after: int, limit: int) -> tuple[list[Entry], int]:
    """Ledger entries after sequence number ``after`` (at most ``limit``) and the count."""
    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    try:
        return ledger.page(after=after, limit=limit)
    finally:
        ledger.close()


def entry_plants(entry: Entry) -> frozenset[str]:
    """The plants a ledger entry names (promotions, break-glass and rollbacks list the
    wave's plants under ``payload.plants``); empty for fleet-wide entries (a release
    recorded, an approval of a stage)."""
    plants = entry.payload.get("plants", [])
    return (
        frozenset(p for p in plants if isinstance(p, str))
        if isinstance(plants, list)
        else frozenset()
    )


def ledger_page_for_plants(
    db: str | None, *, plants: frozenset[str], after: int, limit: int
) -> tuple[list[Entry], int]:
    """As :func:`ledger_page`, but only the entries naming one of ``plants`` (a plant-it's
    view), and their count. The whole chain is read: entries name plants in their
    payload, which neither database indexes."""
    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    shown: list[Entry] = []
    total = 0
    try:
        for entry in ledger.iter_entries():
            if not entry_plants(entry) & plants:
                continue
            total += 1
            if entry.seq > after and len(shown) < limit:
                shown.append(entry)
    finally:
        ledger.close()
    return shown, total


PLANT_HISTORY_KINDS = ("promotion", "break-glass", "rollback")


def names_plant(entry: Entry, plant: str) -> bool:
    """Whether a ledger entry is about ``plant``: promotions and break-glass list the
    wave's plants under ``payload.plants``, a rollback names its ``payload.plant``."""
    return plant in entry_plants(entry) or entry.payload.get("plant") == plant


def plant_history(db: str | None, plant: str, *, limit: int = 100) -> tuple[list[Entry], int]:
    """The promotions, break-glass overrides and rollbacks naming ``plant``, newest
    first (at most ``limit``), and how many there are. Like
    :func:`ledger_page_for_plants`, the whole chain is read (plants are in payloads)."""
    from collections import deque

    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    newest: deque[Entry] = deque(maxlen=max(limit, 0))
    total = 0
    try:
        for entry in ledger.iter_entries():
            if entry.kind in PLANT_HISTORY_KINDS and names_plant(entry, plant):
                total += 1
                newest.append(entry)
    finally:
        ledger.close()
    return list(reversed(newest)), total


@dataclass(frozen=True)
class StageWindow:
    """When a release may next enter ``stage`` for one plant (the ``windows`` gate:
    the stage's allowed windows, the plant's freezes and shift-change margins)."""

    stage: str
    runs_here: bool
    """False when the plant has no deployment in this stage (nothing to promote)."""
    gated: bool
    """False when the stage has no ``windows`` gate: any time is allowed."""
    open_now: bool
    next_allowed: dt.datetime | None
    """UTC; None when open now, not gated, or nothing allowed within the search horizon."""
    local: dt.datetime | None
    """``next_allowed`` in the plant's timezone."""
    reasons: tuple[str, ...]
    windows: tuple[str, ...]
    """The names of the stage's allowed windows (empty: any time outside freezes)."""


def plant_windows(fleet: Fleet, plant: str, *, now: dt.datetime) -> tuple[StageWindow, ...]:
    """Per stage of the promotion chain, whether ``plant`` may be promoted ``now`` and
    else the next allowed instant (UTC and plant-local, ``zoneinfo``), with the same
    evaluation the ``windows`` gate of ``plantops promote`` runs."""
    from zoneinfo import ZoneInfo

    from plantops.release.windows import evaluate_windows

    found = next((p for p in fleet.plants if p.spec.code == plant), None)
    if found is None:
        raise NotFound(f"unknown plant {plant!r}")
    spec = found.spec
    zone = ZoneInfo(spec.timezone)
    releases = fleet.spec.releases
    here = {e.name for e in found.environments}
    out = []
    for env in sorted(fleet.environments, key=lambda e: e.order):
        cfg = releases.stages.get(env.name)
        names = tuple(w.name for w in cfg.windows) if cfg else ()
        if cfg is None or "windows" not in cfg.gates:
            out.append(StageWindow(env.name, env.name in here, False, True, None, None, (), names))
            continue
        v = evaluate_windows(
            spec.timezone,
            spec.shifts,
            spec.freeze_windows,
            cfg.windows,
            releases.shift_change_margin_minutes,
            now,
        )
        nxt = v.next_allowed
        out.append(
            StageWindow(
                env.name,
                env.name in here,
                True,
                v.ok,
                nxt,
                nxt.astimezone(zone) if nxt else None,
                v.reasons,
                names,
            )
        )
    return tuple(out)


def ledger_verify(db: str | None) -> LedgerVerification:
    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    try:
        return ledger.verify()
    finally:
        ledger.close()


def ledger_export(db: str | None, fmt: str) -> Iterator[str]:
    """The ledger as JSON or CSV text chunks (streamed: 100,000 entries are fine)."""
    if fmt not in ("json", "csv"):
        raise UserError(f"--format {fmt}: expected json or csv")
    from plantops.store.ledger import open_ledger

    ledger = open_ledger(db)
    try:
        yield from ledger.export(fmt)
    finally:
        ledger.close()


def record_rollback(
    *,
    plant: str,
    env: str,
    from_release: str,
    to_release: str | None,
    actor: str,
    reason: str,
    database_action: str,
    db: str | None,
    now: dt.datetime,
) -> Entry:
    """A ``rollback`` ledger entry (for ``plantops rollback --apply`` to call once the pin
    is written): which deployment went from which release to which, by whom, why, and
    the database decision of the rollback plan."""
    from plantops.store.ledger import NewEntry, open_ledger

    if not reason.strip():
        raise UserError("a rollback needs a reason")
    ledger = open_ledger(db)
    try:
        entry = NewEntry(
            "rollback",
            release_id=from_release,
            stage=env,
            actor=actor,
            payload={
                "plant": plant,
                "to_release": to_release,
                "reason": reason,
                "database": database_action,
            },
        )
        return ledger.append([entry], now=now)[0]
    finally:
        ledger.close()


@dataclass(frozen=True)
class AddonNode:
    name: str
    version: str
    depth: int
    """0 for an addon that depends on no other addon of the lock; else 1 + the deepest."""
    external: tuple[str, ...]
    """Its depends outside the lock (Odoo's own addons: base, mrp…)."""
    known: bool
    """False when no addon with the lock's checksum was found: its depends are unknown."""


@dataclass(frozen=True)
class AddonGraph:
    release_id: str
    nodes: tuple[AddonNode, ...]
    edges: tuple[tuple[str, str], ...]
    """(addon, a dependency of it), both in the lock."""


def _depths(names: Sequence[str], depends: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """1 + the deepest dependency's depth (0 without one), by an iterative depth-first
    walk: a chain thousands of addons long needs no recursion, and an edge back into
    the walk (a cycle, which ``addons check`` reports) is not followed."""
    depth: dict[str, int] = {}
    for root in names:
        if root in depth:
            continue
        stack = [(root, iter(depends.get(root, ())))]
        walking = {root}
        while stack:
            name, todo = stack[-1]
            nxt = next((d for d in todo if d not in walking), None)
            if nxt is None:
                stack.pop()
                walking.discard(name)
                inner = [depth[d] for d in depends.get(name, ()) if d in depth]
                depth[name] = 1 + max(inner, default=-1)
            elif nxt not in depth:
                stack.append((nxt, iter(depends.get(nxt, ()))))
                walking.add(nxt)
    return depth


def release_addon_graph(lock_file: Path, addons_paths: Sequence[Path]) -> AddonGraph:
    """The addons of a release lock and their ``depends`` among each other.

    The lock pins each addon's checksum, not its manifest: the depends are read from the
    addons found in ``addons_paths`` whose checksum is the lock's (the very code that was
    locked). An addon whose source is not found (or has changed since) is a node with
    ``known=False`` and no edges."""
    from plantops.addons import addon_checksum
    from plantops.addons.discover import discover_addons, expand_addons_paths
    from plantops.release import read_lock

    lock = read_lock(lock_file)
    locked = {
        str(a["name"]): (str(a.get("version") or ""), str(a.get("checksum") or ""))
        for a in lock.content.get("addons", [])
        if isinstance(a, dict) and "name" in a
    }
    depends: dict[str, tuple[str, ...]] = {}
    roots = [p for p in addons_paths if p.is_dir()]
    for a in discover_addons(expand_addons_paths(roots)) if roots else ():
        if a.name in depends or a.name not in locked:
            continue
        shown = a.manifest_file.rpartition("/")[0]
        if addon_checksum(a.path, shown) == locked[a.name][1]:
            depends[a.name] = tuple(sorted(set(a.parsed.manifest.depends)))
    depth = _depths(
        sorted(locked), {n: [d for d in ds if d in locked] for n, ds in depends.items()}
    )
    nodes = tuple(
        AddonNode(
            name=name,
            version=version,
            depth=depth[name],
            external=tuple(d for d in depends.get(name, ()) if d not in locked),
            known=name in depends,
        )
        for name, (version, _) in sorted(locked.items())
    )
    edges = tuple(
        (name, d) for name in sorted(depends) for d in depends[name] if d in locked and d != name
    )
    return AddonGraph(lock.id, nodes, edges)

"""Promotion gates: pure functions from evidence to a verdict with its reasons.

Each gate returns a :class:`GateResult` (data, never an exception): its name, whether it
passed, the reasons either way, and the digests of the evidence it read (recorded in the
ledger with the promotion). The edge (``plantops.services``) loads the evidence — the
lock, scanner reports, the policy result, rehearsal results, probe runs, the ledger's
approvals and promotions, the backup catalog — and calls :func:`evaluate_plant`.

What a gate cannot see here is said, not assumed: the migration rehearsal is a result
file written by the rehearsal job (a restore of the stage's newest verified backup with
``plantops backup restore --neutralize``, then ``odoo -u MODULES --stop-after-init`` in the
release's image); plantops checks that the file is for this release, this plant, that
backup and the modules that changed, and that the update exited 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plantops.release.windows import evaluate_windows
from plantops.spec.models import ApprovalRule, FreezeWindow, Shift, StageRelease

REHEARSAL_SCHEMA = "plantops.io/rehearsal/v1"
PROBE_SCHEMA = "plantops.io/probe-run/v1"
STRUCTURAL = ("order",)


@dataclass(frozen=True)
class GateResult:
    gate: str
    ok: bool
    reasons: tuple[str, ...]
    evidence: Mapping[str, str] = field(default_factory=dict)
    next_allowed: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "gate": self.gate,
            "ok": self.ok,
            "reasons": list(self.reasons),
            "evidence": dict(sorted(self.evidence.items())),
        }
        if self.next_allowed is not None:
            d["next_allowed"] = self.next_allowed.astimezone(dt.UTC).isoformat()
        return d


@dataclass(frozen=True)
class PlantTarget:
    """One plant entering one stage."""

    plant: str
    tier: str
    wave: int
    timezone: str
    shifts: tuple[Shift, ...] = ()
    freezes: tuple[FreezeWindow, ...] = ()
    in_previous_stage: bool = True


@dataclass(frozen=True)
class Approval:
    user: str
    role: str
    seq: int
    comment: str = ""


@dataclass(frozen=True)
class VulnSummary:
    ok: bool
    blocking: tuple[str, ...]
    digest: str


@dataclass(frozen=True)
class PolicySummary:
    ok: bool
    errors: tuple[str, ...]
    digest: str


@dataclass(frozen=True)
class SmokeTarget:
    ok: bool
    expected_version: str | None
    server_serie: str | None
    failed: tuple[str, ...]
    digest: str


@dataclass(frozen=True)
class Evidence:
    """Everything the gates read for one release entering one stage."""

    lock_id: str
    series: str
    dirty_addons: tuple[str, ...] = ()
    config_hash_now: str | None = None  # what the fleet renders today
    config_hash_lock: str | None = None
    vulns: Mapping[tuple[str, str], VulnSummary] | None = None  # (tier, env)
    policy: Mapping[str, PolicySummary] | None = None  # by environment
    rehearsals: Mapping[str, tuple[Mapping[str, Any], str]] = field(default_factory=dict)
    latest_verified_backup: Mapping[str, str | None] = field(default_factory=dict)  # by plant
    changed_modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by plant
    smoke: Mapping[str, SmokeTarget] = field(default_factory=dict)  # by plant (prev stage)
    approvals: tuple[Approval, ...] = ()
    author: str | None = None
    previous_stage: str | None = None
    # when this release entered the previous stage, by plant, and at all (first promotion)
    previous_promoted: Mapping[str, dt.datetime] = field(default_factory=dict)
    previous_first: dt.datetime | None = None
    # this stage: plants already promoted (by plant → time) and the waves' plants
    promoted_here: Mapping[str, dt.datetime] = field(default_factory=dict)
    wave_plants: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


def gate_addons(ev: Evidence, *, production: bool) -> GateResult:
    """Addon integrity from the lock (already verified against its id when read)."""
    reasons: list[str] = []
    ok = True
    if production and ev.dirty_addons:
        ok = False
        reasons.append(
            "addons built from uncommitted work trees cannot enter a production stage: "
            + ", ".join(ev.dirty_addons)
        )
    if ev.config_hash_now and ev.config_hash_lock and ev.config_hash_now != ev.config_hash_lock:
        ok = False
        reasons.append(
            f"the fleet now renders configuration {ev.config_hash_now[:19]}…, the lock was made "
            f"for {ev.config_hash_lock[:19]}…: create the release again from this fleet"
        )
    if ok:
        reasons.append(f"lock {ev.lock_id[:19]}… intact; addons checked when it was created")
    return GateResult("addons", ok, tuple(reasons), {"lock": ev.lock_id})


def gate_vulnerabilities(ev: Evidence, target: PlantTarget, stage: str) -> GateResult:
    if ev.vulns is None:
        return GateResult("vulnerabilities", False, ("no scanner report given (--vulns REPORT)",))
    s = ev.vulns.get((target.tier, stage))
    if s is None:
        return GateResult("vulnerabilities", False, (f"no verdict for tier {target.tier}",))
    if s.ok:
        return GateResult(
            "vulnerabilities",
            True,
            (f"within the {target.tier}/{stage} policy",),
            {"reports": s.digest},
        )
    return GateResult(
        "vulnerabilities", False, tuple(f"blocking: {b}" for b in s.blocking), {"reports": s.digest}
    )


def gate_policy(ev: Evidence, stage: str) -> GateResult:
    if ev.policy is None:
        return GateResult("policy", False, ("policy check not run",))
    p = ev.policy.get(stage)
    if p is None:
        return GateResult("policy", True, (f"plantops check: nothing rendered for {stage}",))
    if p.ok:
        return GateResult("policy", True, ("plantops check: no errors",), {"findings": p.digest})
    return GateResult("policy", False, p.errors, {"findings": p.digest})


def gate_rehearsal(ev: Evidence, target: PlantTarget, stage: str) -> GateResult:
    found = ev.rehearsals.get(target.plant)
    if found is None:
        return GateResult(
            "rehearsal",
            False,
            (
                f"no migration rehearsal result for {target.plant} (--rehearsal FILE, "
                f"schema {REHEARSAL_SCHEMA})",
            ),
        )
    doc, digest = found
    reasons: list[str] = []
    if doc.get("release") != ev.lock_id:
        reasons.append(f"rehearsal is for release {doc.get('release')}, not {ev.lock_id}")
    if doc.get("environment") != stage:
        reasons.append(f"rehearsal restored a {doc.get('environment')} backup, not {stage}'s")
    latest = ev.latest_verified_backup.get(target.plant)
    if latest is None:
        reasons.append(
            f"{target.plant}/{stage} has no verified backup in the catalog to rehearse on"
        )
    elif doc.get("backup_id") != latest:
        reasons.append(
            f"rehearsal restored backup {doc.get('backup_id')}, the newest verified one is {latest}"
        )
    if doc.get("neutralized") is not True:
        reasons.append("the restore was not neutralized (plantops backup restore --neutralize)")
    needed = set(ev.changed_modules.get(target.plant, ()))
    updated = {str(m) for m in doc.get("modules", []) if isinstance(m, str)}
    if needed - updated:
        reasons.append(
            "modules not updated in the rehearsal: " + ",".join(sorted(needed - updated))
        )
    if doc.get("exit_code") != 0:
        reasons.append(
            f"odoo -u exited {doc.get('exit_code')} (log sha256 {doc.get('log_sha256')})"
        )
    if reasons:
        return GateResult("rehearsal", False, tuple(reasons), {"rehearsal": digest})
    return GateResult(
        "rehearsal",
        True,
        (
            f"odoo -u {','.join(sorted(updated)) or '(none)'} on backup {latest} exited 0 "
            f"in {doc.get('duration_seconds')} s",
        ),
        {"rehearsal": digest, "log": str(doc.get("log_sha256", ""))},
    )


def gate_smoke(ev: Evidence, target: PlantTarget) -> GateResult:
    prev = ev.previous_stage
    if prev is None:
        return GateResult("smoke", True, ("first stage: nothing to smoke-test before it",))
    if not target.in_previous_stage:
        return GateResult("smoke", True, (f"{target.plant} does not run in {prev}",))
    s = ev.smoke.get(target.plant)
    if s is None:
        return GateResult(
            "smoke", False, (f"no probe result for {target.plant} in {prev} (--smoke FILE)",)
        )
    reasons = [f"failed check: {f}" for f in s.failed]
    if s.expected_version != ev.series:
        reasons.append(f"probe expected version {s.expected_version}, the release is {ev.series}")
    if s.server_serie is not None and s.server_serie != ev.series:
        reasons.append(f"{prev} answers server_serie {s.server_serie}, the release is {ev.series}")
    ok = s.ok and not reasons
    if ok:
        reasons.append(f"{target.plant} in {prev}: every probe check passed on {ev.series}")
    return GateResult("smoke", ok, tuple(reasons), {"probe": s.digest})


def gate_approvals(ev: Evidence, rule: ApprovalRule) -> GateResult:
    valid: dict[str, set[str]] = {}
    ignored: list[str] = []
    for a in ev.approvals:
        if ev.author is not None and a.user == ev.author:
            ignored.append(f"{a.user} is the release author and cannot approve it")
            continue
        valid.setdefault(a.user, set()).add(a.role)
    roles = {r for rs in valid.values() for r in rs}
    reasons: list[str] = list(ignored)
    missing_roles = [r for r in rule.roles if r not in roles]
    ok = len(valid) >= rule.count and not missing_roles
    if len(valid) < rule.count:
        reasons.append(f"{len(valid)} of {rule.count} approval(s)")
    if missing_roles:
        reasons.append("no approval by role " + ", ".join(missing_roles))
    if ok:
        who = ", ".join(f"{u} ({'/'.join(sorted(r))})" for u, r in sorted(valid.items()))
        reasons.append(f"{len(valid)} of {rule.count} approval(s): {who or 'none needed'}")
    seqs = ",".join(str(a.seq) for a in ev.approvals)
    return GateResult("approvals", ok, tuple(reasons), {"ledger": seqs} if seqs else {})


def gate_soak(ev: Evidence, target: PlantTarget, cfg: StageRelease, now: dt.datetime) -> GateResult:
    reasons: list[str] = []
    ok = True
    nxt: dt.datetime | None = None
    if ev.previous_stage is not None and cfg.soak_hours:
        since = ev.previous_promoted.get(target.plant) or ev.previous_first
        if since is None:
            return GateResult("soak", False, (f"not in {ev.previous_stage} yet",))
        due = since + dt.timedelta(hours=cfg.soak_hours)
        if now < due:
            ok, nxt = False, due
            reasons.append(
                f"{(now - since).total_seconds() / 3600:.1f} h in {ev.previous_stage}, "
                f"{cfg.soak_hours:g} h needed (until {due.isoformat()})"
            )
        else:
            reasons.append(
                f"soaked {(now - since).total_seconds() / 3600:.1f} h in {ev.previous_stage}"
            )
    earlier = [w for w in ev.wave_plants if w < target.wave]
    if cfg.wave_soak_hours and earlier:
        last = max(earlier)
        times = [ev.promoted_here[p] for p in ev.wave_plants[last] if p in ev.promoted_here]
        if times:
            due = max(times) + dt.timedelta(hours=cfg.wave_soak_hours)
            if now < due:
                ok, nxt = False, max(nxt or due, due)
                reasons.append(
                    f"wave {last} needs {cfg.wave_soak_hours:g} h (until {due.isoformat()})"
                )
            else:
                reasons.append(f"wave {last} soaked {cfg.wave_soak_hours:g} h")
    if not reasons:
        reasons.append("no soak time required")
    return GateResult("soak", ok, tuple(reasons), next_allowed=nxt)


def gate_order(ev: Evidence, target: PlantTarget) -> GateResult:
    """Structural, always on: the previous stage first, then earlier waves first."""
    reasons: list[str] = []
    if ev.previous_stage is not None:
        if target.in_previous_stage and target.plant not in ev.previous_promoted:
            reasons.append(f"{target.plant} has not received this release in {ev.previous_stage}")
        elif not target.in_previous_stage and ev.previous_first is None:
            reasons.append(f"the release has not entered {ev.previous_stage}")
    for w, plants in sorted(ev.wave_plants.items()):
        if w >= target.wave:
            break
        waiting = [p for p in plants if p not in ev.promoted_here]
        if waiting:
            reasons.append(f"wave {w} is not complete: {', '.join(waiting)}")
    if reasons:
        return GateResult("order", False, tuple(reasons))
    return GateResult("order", True, ("previous stage and earlier waves done",))


def gate_windows(
    target: PlantTarget, cfg: StageRelease, margin: int, now: dt.datetime
) -> GateResult:
    v = evaluate_windows(target.timezone, target.shifts, target.freezes, cfg.windows, margin, now)
    return GateResult("windows", v.ok, v.reasons, next_allowed=v.next_allowed)


@dataclass(frozen=True)
class PlantVerdict:
    plant: str
    tier: str
    wave: int
    gates: tuple[GateResult, ...]

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.gates)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.ok)

    @property
    def next_allowed(self) -> dt.datetime | None:
        """When the time-bound gates open, if only they fail."""
        failed = self.failed
        if not failed or any(g.next_allowed is None for g in failed):
            return None
        return max(g.next_allowed for g in failed if g.next_allowed is not None)

    def as_dict(self) -> dict[str, Any]:
        nxt = self.next_allowed
        return {
            "plant": self.plant,
            "tier": self.tier,
            "wave": self.wave,
            "ok": self.ok,
            "next_allowed": nxt.astimezone(dt.UTC).isoformat() if nxt else None,
            "gates": [g.as_dict() for g in self.gates],
        }


def evaluate_plant(
    stage: str,
    target: PlantTarget,
    cfg: StageRelease,
    ev: Evidence,
    *,
    production: bool,
    margin_minutes: int,
    now: dt.datetime,
    skip: Sequence[str] = (),
) -> PlantVerdict:
    """Every configured gate (plus the structural order gate) for one plant, in a fixed order."""
    results = [gate_order(ev, target)]
    for name in cfg.gates:
        if name in skip:
            continue
        if name == "addons":
            results.append(gate_addons(ev, production=production))
        elif name == "vulnerabilities":
            results.append(gate_vulnerabilities(ev, target, stage))
        elif name == "policy":
            results.append(gate_policy(ev, stage))
        elif name == "rehearsal":
            results.append(gate_rehearsal(ev, target, stage))
        elif name == "smoke":
            results.append(gate_smoke(ev, target))
        elif name == "approvals":
            results.append(
                gate_approvals(ev, cfg.approvals_by_tier.get(target.tier, cfg.approvals))
            )
        elif name == "soak":
            results.append(gate_soak(ev, target, cfg, now))
        elif name == "windows":
            results.append(gate_windows(target, cfg, margin_minutes, now))
    return PlantVerdict(target.plant, target.tier, target.wave, tuple(results))


def default_wave(tier_rank: int, lowest_rank: int, explicit: int | None) -> int:
    """The plant's wave: its ``release_wave`` (0 = canary), else by tier — the least
    demanding tier first (wave 1), the most demanding (rank 1) last."""
    if explicit is not None:
        return explicit
    return 1 + lowest_rank - tier_rank


__all__ = [
    "PROBE_SCHEMA",
    "REHEARSAL_SCHEMA",
    "Approval",
    "Evidence",
    "GateResult",
    "PlantTarget",
    "PlantVerdict",
    "PolicySummary",
    "SmokeTarget",
    "VulnSummary",
    "default_wave",
    "evaluate_plant",
    "gate_addons",
    "gate_approvals",
    "gate_order",
    "gate_policy",
    "gate_rehearsal",
    "gate_smoke",
    "gate_soak",
    "gate_windows",
]

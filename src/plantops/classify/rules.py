"""Classification (documented in docs/classification.md): a scored tier, a ruled pattern.

The tier is the sum of the plant's factors (:mod:`plantops.classify.factors`: each
with its points and the spec lines behind it) against the thresholds in
``fleet.yaml``. The pattern rules are tried in order and the first that fires
decides. Overrides pin a result, show their justification and expiry, and keep the
scored result visible. Every reason names its rule, what fired it and where that
is written. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantops.classify.factors import CHANGE_CONTROLLED, fmt, tier_factors
from plantops.model import Fleet, Plant
from plantops.spec.loader import Location

TIERS = ("critical", "high", "standard", "pilot")
PATTERNS = (
    "dedicated-environment",
    "dedicated-cluster",
    "dedicated-namespace",
    "shared-multitenant",
)


@dataclass(frozen=True)
class Reason:
    rule: str
    decides: str  # "tier", "pattern" or "sync"
    message: str
    locations: tuple[Location, ...]
    score: float | None = None  # points a tier factor adds; None for a decision

    def short(self) -> str:
        return f"{self.rule}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "decides": self.decides,
            "message": self.message,
            "score": self.score,
            "locations": [f"{loc}" for loc in self.locations],
        }


@dataclass(frozen=True)
class Classification:
    plant: str
    tier: str
    pattern: str
    reasons: tuple[Reason, ...]
    tenant_group: str | None
    production_sync: str = "automated"  # "manual": production waits for the release gates

    def as_dict(self) -> dict[str, object]:
        return {
            "plant": self.plant,
            "tier": self.tier,
            "pattern": self.pattern,
            "production_sync": self.production_sync,
            "tenant_group": self.tenant_group,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def _tier(plant: Plant, fleet: Fleet) -> tuple[str, tuple[Reason, ...]]:
    """Factors with their points, then the threshold decision (or the override)."""
    spec, t = plant.spec, fleet.spec.classification

    def loc(*path: str | int) -> Location:
        return fleet.source.locate_plant(spec.code, *path)

    factors = tier_factors(spec, t, loc)
    score = sum(f.score for f in factors)
    reasons = [
        Reason(f.rule, "tier", f"+{fmt(f.score)}: {f.message}", f.locations, f.score)
        for f in factors
    ]
    total = f"score {fmt(score)}"
    tier, decision = _decide(score, total, plant, fleet)
    ov = plant.override("tier")
    if ov is not None:
        # the scored result stays visible: it is what applies once the override expires
        decision = Reason(
            "T0-override",
            "tier",
            f"{ov.value}: scored {tier} ({total}); {ov.justification()}",
            (ov.location,),
        )
        tier = str(ov.value)
    return tier, (*reasons, decision)


def _decide(score: float, total: str, plant: Plant, fleet: Fleet) -> tuple[str, Reason]:
    """The tier the score reaches, with the threshold (and where it is written)."""
    spec, t = plant.spec, fleet.spec.classification

    def at(key: str) -> Location:
        return fleet.source.locate_fleet("classification", key)

    if score >= t.critical_score:
        return "critical", Reason(
            "T1-critical",
            "tier",
            f"critical: {total} >= critical_score {fmt(t.critical_score)}",
            (at("critical_score"),),
        )
    if score >= t.high_score:
        return "high", Reason(
            "T2-high",
            "tier",
            f"high: {total} >= high_score {fmt(t.high_score)}",
            (at("high_score"),),
        )
    named = fleet.source.locate_plant(spec.code, "users", "named")
    if score <= t.pilot_max_score and spec.users.named <= t.pilot_max_named_users:
        return "pilot", Reason(
            "T3-pilot",
            "tier",
            f"pilot: {total} <= pilot_max_score {fmt(t.pilot_max_score)} and "
            f"{spec.users.named} named users <= pilot_max_named_users {t.pilot_max_named_users}",
            (named, at("pilot_max_score"), at("pilot_max_named_users")),
        )
    if score <= t.pilot_max_score:
        return "standard", Reason(
            "T4-standard",
            "tier",
            f"standard: {total} < high_score {fmt(t.high_score)}; not a pilot: "
            f"{spec.users.named} named users > pilot_max_named_users {t.pilot_max_named_users}",
            (at("high_score"), named, at("pilot_max_named_users")),
        )
    return "standard", Reason(
        "T4-standard",
        "tier",
        f"standard: {total} > pilot_max_score {fmt(t.pilot_max_score)} and "
        f"< high_score {fmt(t.high_score)}",
        (at("high_score"), at("pilot_max_score")),
    )


def _pattern(plant: Plant, fleet: Fleet, tier: str) -> Reason:
    spec, t = plant.spec, fleet.spec.classification
    prof = spec.profile

    def loc(*path: str | int) -> Location:
        return fleet.source.locate_plant(spec.code, *path)

    tier_def = fleet.source.locate_fleet("tiers", tier)
    ov = plant.override("pattern")
    if ov is not None:
        return Reason("P0-override", "pattern", f"{ov.value}: {ov.justification()}", (ov.location,))
    if spec.runtime == "vm":
        return Reason(
            "P1-single-vm",
            "pattern",
            "dedicated-environment: runtime vm runs the whole stack on one machine of its own",
            (loc("runtime"),),
        )
    if tier == "critical" and (
        prof.data_residency is not None or prof.latency_sensitivity == "high"
    ):
        why = []
        paths: list[Location] = []
        if prof.data_residency is not None:
            why.append(f"data residency {prof.data_residency}")
            paths.append(loc("profile", "data_residency"))
        if prof.latency_sensitivity == "high":
            why.append("high latency sensitivity")
            paths.append(loc("profile", "latency_sensitivity"))
        return Reason(
            "P2-isolated-critical",
            "pattern",
            f"dedicated-environment: critical tier with {' and '.join(why)}",
            tuple(paths),
        )
    if tier == "critical":
        return Reason(
            "P3-critical",
            "pattern",
            "dedicated-cluster: critical tier gets its own failure domain",
            (tier_def,),
        )
    if spec.users.peak_concurrent >= t.dedicated_cluster_peak_users:
        return Reason(
            "P4-large-plant",
            "pattern",
            f"dedicated-cluster: {spec.users.peak_concurrent} peak users >= "
            f"{t.dedicated_cluster_peak_users}",
            (loc("users", "peak_concurrent"),),
        )
    if tier == "high":
        return Reason(
            "P5-high",
            "pattern",
            "dedicated-namespace: the shared platform serves standard and pilot tiers; "
            "a high-tier plant does not share its failure domain",
            (tier_def,),
        )
    controlled = sorted(r.value for r in prof.regulatory if r in CHANGE_CONTROLLED)
    if controlled:
        return Reason(
            "P6-regulated",
            "pattern",
            f"dedicated-namespace: {', '.join(controlled)} needs change control of its own "
            "system; a tenant group's Odoo is upgraded for all its plants at once",
            (loc("profile", "regulatory"),),
        )
    vol = prof.volume
    load = []
    if vol.orders_per_day >= t.high_volume_orders_per_day:
        load.append(
            (f"{vol.orders_per_day} orders/day", loc("profile", "volume", "orders_per_day"))
        )
    if vol.stock_moves_per_day >= t.high_volume_stock_moves_per_day:
        load.append(
            (
                f"{vol.stock_moves_per_day} stock moves/day",
                loc("profile", "volume", "stock_moves_per_day"),
            )
        )
    if spec.users.peak_concurrent >= t.large_peak_users:
        load.append((f"{spec.users.peak_concurrent} peak users", loc("users", "peak_concurrent")))
    if load:
        return Reason(
            "P7-heavy-load",
            "pattern",
            f"dedicated-namespace: {', '.join(m for m, _ in load)} would load the tenant "
            "group's PostgreSQL and workers for every plant in it",
            tuple(w for _, w in load),
        )
    if spec.placement.preference == "dedicated":
        return Reason(
            "P8-preference",
            "pattern",
            "dedicated-namespace: placement preference is dedicated",
            (loc("placement", "preference"),),
        )
    if prof.customization == "heavy":
        return Reason(
            "P9-heavy-customization",
            "pattern",
            "dedicated-namespace: heavy customization cannot share an addon set with tenants",
            (loc("profile", "customization"),),
        )
    where = (
        loc("placement", "tenant_group")
        if spec.placement.tenant_group is not None
        else loc("region")
    )
    return Reason(
        "P10-shared",
        "pattern",
        f"shared-multitenant: {tier} tier on the shared platform",
        (where,),
    )


def _production_sync(plant: Plant, fleet: Fleet) -> Reason | None:
    """Production of a change-controlled plant waits for the release gates (manual sync)."""
    prof = plant.spec.profile
    controlled = [(i, r.value) for i, r in enumerate(prof.regulatory) if r in CHANGE_CONTROLLED]
    if not controlled:
        return None
    return Reason(
        "S1-release-gate",
        "sync",
        f"manual: production changes under {', '.join(sorted(v for _, v in controlled))} "
        "are released through the gates, never synced automatically",
        tuple(
            fleet.source.locate_plant(plant.code, "profile", "regulatory", i) for i, _ in controlled
        ),
    )


def classify_plant(plant: Plant, fleet: Fleet) -> Classification:
    tier, tier_reasons = _tier(plant, fleet)
    pattern_reason = _pattern(plant, fleet, tier)
    pattern = pattern_reason.message.split(":", 1)[0]
    group = None
    if pattern == "shared-multitenant":
        group = plant.spec.placement.tenant_group or plant.spec.region
    sync = _production_sync(plant, fleet)
    reasons = (*tier_reasons, pattern_reason, *((sync,) if sync else ()))
    return Classification(
        plant.code, tier, pattern, reasons, group, "manual" if sync else "automated"
    )


def classify_fleet(fleet: Fleet, only: Sequence[str] = ()) -> tuple[Classification, ...]:
    return tuple(classify_plant(p, fleet) for p in fleet.plants if not only or p.code in only)

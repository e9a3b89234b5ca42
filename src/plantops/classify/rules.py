"""Classification rules (documented in docs/classification.md).

Tier rules are tried in order and the first that fires decides; pattern rules
likewise. Every reason names the rule, the inputs that fired it and where those
inputs are written. Overrides pin a result and their justification is shown.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantops.model import Fleet, Plant
from plantops.spec.loader import Location

STRICT_REGULATIONS = frozenset({"fda-21-cfr-part-11", "iso-13485", "gxp", "iatf-16949"})


@dataclass(frozen=True)
class Reason:
    rule: str
    decides: str  # "tier" or "pattern"
    message: str
    locations: tuple[Location, ...]

    def short(self) -> str:
        return f"{self.rule}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "decides": self.decides,
            "message": self.message,
            "locations": [f"{loc}" for loc in self.locations],
        }


@dataclass(frozen=True)
class Classification:
    plant: str
    tier: str
    pattern: str
    reasons: tuple[Reason, ...]
    tenant_group: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "plant": self.plant,
            "tier": self.tier,
            "pattern": self.pattern,
            "tenant_group": self.tenant_group,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def _tier(plant: Plant, fleet: Fleet) -> Reason:
    spec, t = plant.spec, fleet.spec.classification
    prof = spec.profile

    def loc(*path: str | int) -> Location:
        return fleet.source.locate_plant(spec.code, *path)

    ov = plant.override("tier")
    if ov is not None:
        return Reason("T0-override", "tier", f"{ov.value}: {ov.justification()}", (ov.location,))
    regulated = sorted(r.value for r in prof.regulatory if r.value in STRICT_REGULATIONS)
    if prof.production_critical and regulated:
        return Reason(
            "T1-regulated-production",
            "tier",
            f"critical: production-critical and regulated ({', '.join(regulated)})",
            (loc("profile", "production_critical"), loc("profile", "regulatory")),
        )
    high_integrations = [
        (i, integ.name) for i, integ in enumerate(prof.integrations) if integ.criticality == "high"
    ]
    if prof.production_critical and len(high_integrations) >= t.critical_integrations:
        names = ", ".join(n for _, n in high_integrations)
        return Reason(
            "T2-critical-integrations",
            "tier",
            f"critical: production-critical with {len(high_integrations)} high-criticality "
            f"integration(s) ({names}) >= {t.critical_integrations}",
            (
                loc("profile", "production_critical"),
                *(loc("profile", "integrations", i) for i, _ in high_integrations),
            ),
        )
    if prof.production_critical:
        return Reason(
            "T3-production-critical",
            "tier",
            "high: production-critical",
            (loc("profile", "production_critical"),),
        )
    vol = prof.volume
    if vol.orders_per_day >= t.high_volume_orders_per_day:
        return Reason(
            "T4-high-volume",
            "tier",
            f"high: {vol.orders_per_day} orders/day >= {t.high_volume_orders_per_day}",
            (loc("profile", "volume", "orders_per_day"),),
        )
    if vol.stock_moves_per_day >= t.high_volume_stock_moves_per_day:
        return Reason(
            "T4-high-volume",
            "tier",
            f"high: {vol.stock_moves_per_day} stock moves/day >= {t.high_volume_stock_moves_per_day}",
            (loc("profile", "volume", "stock_moves_per_day"),),
        )
    if spec.users.peak_concurrent >= t.large_peak_users:
        return Reason(
            "T5-large-user-base",
            "tier",
            f"high: {spec.users.peak_concurrent} peak users >= {t.large_peak_users}",
            (loc("users", "peak_concurrent"),),
        )
    if spec.users.named <= t.pilot_max_named_users and not prof.integrations:
        return Reason(
            "T6-pilot",
            "tier",
            f"pilot: {spec.users.named} named users <= {t.pilot_max_named_users}, no integrations",
            (loc("users", "named"),),
        )
    return Reason(
        "T7-standard", "tier", "standard: no rule for a higher tier fired", (loc("profile"),)
    )


def _pattern(plant: Plant, fleet: Fleet, tier: str) -> Reason:
    spec, t = plant.spec, fleet.spec.classification
    prof = spec.profile

    def loc(*path: str | int) -> Location:
        return fleet.source.locate_plant(spec.code, *path)

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
            (),
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
        return Reason("P5-high", "pattern", "dedicated-namespace: high tier", ())
    if spec.placement.preference == "dedicated":
        return Reason(
            "P6-preference",
            "pattern",
            "dedicated-namespace: placement preference is dedicated",
            (loc("placement", "preference"),),
        )
    if prof.customization == "heavy":
        return Reason(
            "P7-heavy-customization",
            "pattern",
            "dedicated-namespace: heavy customization cannot share an addon set with tenants",
            (loc("profile", "customization"),),
        )
    return Reason(
        "P8-shared",
        "pattern",
        f"shared-multitenant: {tier} tier on the shared platform",
        (),
    )


def classify_plant(plant: Plant, fleet: Fleet) -> Classification:
    tier_reason = _tier(plant, fleet)
    tier = tier_reason.message.split(":", 1)[0]
    pattern_reason = _pattern(plant, fleet, tier)
    pattern = pattern_reason.message.split(":", 1)[0]
    group = None
    if pattern == "shared-multitenant":
        group = plant.spec.placement.tenant_group or plant.spec.region
    return Classification(plant.code, tier, pattern, (tier_reason, pattern_reason), group)


def classify_fleet(fleet: Fleet, only: Sequence[str] = ()) -> tuple[Classification, ...]:
    return tuple(classify_plant(p, fleet) for p in fleet.plants if not only or p.code in only)

"""Tier factors of the scored model: what each part of a plant profile adds, and why.

The operating model lets tiers follow business criticality, latency sensitivity,
regulatory requirements and integration complexity. Each of those is a factor here
with a fixed weight (docs/classification.md has the table and the reasoning); the
thresholds that turn the sum into a tier live in ``fleet.yaml`` (``classification:``).
A factor that adds nothing is not reported. Pure: no I/O.

Scale: one tier step is ``high_score`` (6 by default). A factor that alone makes a
plant high is worth 6 (production-critical, a validated-system regulation); the
default critical threshold, 12, is two such factors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from plantops.spec.loader import Location, shift_intervals
from plantops.spec.models import Integration, PlantSpec, Regulation, Thresholds

# Points per factor (documented in docs/classification.md, "Factors").
PRODUCTION_CRITICAL = 6.0
WAREHOUSE = 2.0
# Regulations that demand validated, change-controlled systems (21 CFR 11.10(k),
# ISO 13485 4.1.6, EU GMP Annex 11 §10, IATF 16949 8.5.6.1) weigh a full tier step;
# SOX change management half; certifications of a management system little.
REGULATION = {
    Regulation.fda_21_cfr_part_11: 6.0,
    Regulation.iso_13485: 6.0,
    Regulation.gxp: 6.0,
    Regulation.iatf_16949: 6.0,
    Regulation.sox: 3.0,
    Regulation.iso_27001: 2.0,
    Regulation.iso_9001: 1.0,
}
# Production changes of these wait for the release gates (manual sync in prod).
CHANGE_CONTROLLED = frozenset(
    {
        Regulation.fda_21_cfr_part_11,
        Regulation.iso_13485,
        Regulation.gxp,
        Regulation.iatf_16949,
        Regulation.sox,
    }
)
INTEGRATION_TYPE = {"MES": 3.0, "WMS": 3.0, "EDI": 2.0, "IoT": 2.0, "API": 1.0, "PLM": 1.0}
INTEGRATION_CRITICALITY = {"high": 1.0, "medium": 0.5, "low": 0.25}
INTEGRATION_DIRECTION = {"bidirectional": 1.0, "inbound": 0.75, "outbound": 0.75}
HIGH_VOLUME = 3.0
LARGE_USER_BASE = 3.0
VERY_LARGE_USER_BASE = 6.0
HIGH_LATENCY_SENSITIVITY = 2.0
EXTENDED_HOURS = 1.0
MULTI_SHIFT = 4.0
CONTINUOUS = 5.0

WEEK_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class Factor:
    """One scored input: rule id, points added, what it means, where it is written."""

    rule: str
    score: float
    message: str
    locations: tuple[Location, ...]


Locate = Callable[..., Location]


def fmt(x: float) -> str:
    """Points as written in reasons: exact binary fractions, so ``g`` is exact too."""
    return f"{x:g}"


def coverage_hours_per_week(spec: PlantSpec) -> float:
    """Hours of the week at least one shift runs (union of the shifts, midnight-crossing aware)."""
    intervals = sorted(
        iv for sh in spec.shifts for iv in shift_intervals(sh.start, sh.end, sh.days)
    )
    covered, end = 0, 0
    for begin, finish in intervals:
        if finish <= end:
            continue
        covered += finish - max(begin, end)
        end = finish
    return min(covered, WEEK_MINUTES) / 60


def integration_points(integ: Integration) -> float:
    return (
        INTEGRATION_TYPE[integ.type.value]
        * INTEGRATION_CRITICALITY[integ.criticality.value]
        * INTEGRATION_DIRECTION[integ.direction]
    )


def tier_factors(spec: PlantSpec, t: Thresholds, loc: Locate) -> tuple[Factor, ...]:
    """Every factor that adds to the plant's score, in a fixed order."""
    prof = spec.profile
    out: list[Factor] = []
    if prof.production_critical:
        out.append(
            Factor(
                "F1-production-critical",
                PRODUCTION_CRITICAL,
                "production-critical: an outage stops the line",
                (loc("profile", "production_critical"),),
            )
        )
    if prof.warehouse_only:
        out.append(
            Factor(
                "F2-warehouse",
                WAREHOUSE,
                "warehouse: shipping runs on Odoo, an outage stops outbound goods",
                (loc("profile", "warehouse_only"),),
            )
        )
    if prof.regulatory:
        ranked = sorted(prof.regulatory, key=lambda r: (-REGULATION[r], r.value))
        strongest, others = ranked[0], sorted({r.value for r in ranked[1:]})
        also = f" (also {', '.join(others)}: the strongest counts)" if others else ""
        out.append(
            Factor(
                "F3-regulation",
                REGULATION[strongest],
                f"regulated by {strongest.value}{also}",
                (loc("profile", "regulatory", prof.regulatory.index(strongest)),),
            )
        )
    if prof.integrations:
        parts, total = [], 0.0
        for integ in prof.integrations:
            pts = integration_points(integ)
            total += pts
            parts.append(
                f"{integ.name} {integ.type.value} {integ.criticality.value} {integ.direction} "
                f"{fmt(INTEGRATION_TYPE[integ.type.value])}"
                f"x{fmt(INTEGRATION_CRITICALITY[integ.criticality.value])}"
                f"x{fmt(INTEGRATION_DIRECTION[integ.direction])}={fmt(pts)}"
            )
        out.append(
            Factor(
                "F4-integrations",
                total,
                f"{len(prof.integrations)} integration(s): {'; '.join(parts)}",
                tuple(loc("profile", "integrations", i) for i in range(len(prof.integrations))),
            )
        )
    vol = prof.volume
    busy = []
    if vol.orders_per_day >= t.high_volume_orders_per_day:
        busy.append(
            (
                f"{vol.orders_per_day} orders/day >= {t.high_volume_orders_per_day}",
                loc("profile", "volume", "orders_per_day"),
            )
        )
    if vol.stock_moves_per_day >= t.high_volume_stock_moves_per_day:
        busy.append(
            (
                f"{vol.stock_moves_per_day} stock moves/day >= "
                f"{t.high_volume_stock_moves_per_day}",
                loc("profile", "volume", "stock_moves_per_day"),
            )
        )
    if busy:
        out.append(
            Factor(
                "F5-volume",
                HIGH_VOLUME,
                f"high transaction volume: {', '.join(m for m, _ in busy)}",
                tuple(w for _, w in busy),
            )
        )
    peak = spec.users.peak_concurrent
    if peak >= t.large_peak_users:
        very = peak >= t.dedicated_cluster_peak_users
        out.append(
            Factor(
                "F6-users",
                VERY_LARGE_USER_BASE if very else LARGE_USER_BASE,
                f"{peak} peak users >= "
                f"{t.dedicated_cluster_peak_users if very else t.large_peak_users}: "
                "that many people wait during an outage",
                (loc("users", "peak_concurrent"),),
            )
        )
    if prof.latency_sensitivity == "high":
        out.append(
            Factor(
                "F7-latency",
                HIGH_LATENCY_SENSITIVITY,
                "high latency sensitivity",
                (loc("profile", "latency_sensitivity"),),
            )
        )
    hours = coverage_hours_per_week(spec)
    if hours > t.extended_hours_per_week:
        if hours >= t.continuous_hours_per_week:
            pts, what = CONTINUOUS, f"round the clock (>= {fmt(t.continuous_hours_per_week)})"
        elif hours >= t.multi_shift_hours_per_week:
            pts, what = MULTI_SHIFT, f"multi-shift (>= {fmt(t.multi_shift_hours_per_week)})"
        else:
            pts, what = EXTENDED_HOURS, f"extended hours (> {fmt(t.extended_hours_per_week)})"
        out.append(
            Factor(
                "F8-coverage",
                pts,
                f"shifts cover {fmt(round(hours, 2))} h/week: {what}, "
                "little time outside working hours to recover",
                tuple(loc("shifts", i) for i in range(len(spec.shifts))),
            )
        )
    return tuple(out)


__all__ = [
    "CHANGE_CONTROLLED",
    "Factor",
    "coverage_hours_per_week",
    "integration_points",
    "tier_factors",
]

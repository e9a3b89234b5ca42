"""Use case behind the server's SLO burn and error-budget charts: the ``probe`` SLO of
each plant's environment from the ``probe.checked`` events ``plantops probe run
--state-db`` records, with the arithmetic of ``plantops slo report --probe-results``
(observe/sloreport.py: a run with a failed check is an error; SLI, budget left, burn
rate over each alert window, status ok / ticket / page / exhausted).

The store counts the events in one grouped query (per plant and environment, for each
window start); nothing here reads events one by one, so a page of 1,000 plants costs
one query.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plantops.observe.sloreport import (
    SloRow,
    budget_remaining,
    build_report,
    counted_measurement,
    objectives,
    parse_window,
    range_edges,
)
from plantops.store.events import PROBE_CHECKED

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.store.server import ServerStore

DEFAULT_WINDOW = "30d"  # the report window of `plantops slo report`
SLO = "probe"
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class BudgetPoint:
    """The error budget left at ``end``: over the probe runs from the window's start."""

    end: dt.datetime
    events: int
    failed: int
    remaining: float | None  # None: no run yet


@dataclass(frozen=True)
class EnvSlo:
    plant: str
    environment: str
    row: SloRow
    points: tuple[BudgetPoint, ...] = ()


def _chosen(
    deployments: Sequence[Deployment],
    plants: Sequence[str],
    for_plant: Callable[[str], Sequence[Deployment]] | None,
) -> dict[tuple[str, str], Deployment]:
    wanted = set(plants)
    if for_plant is not None:  # the plan's index: a page of plants, not the whole fleet
        return {
            (p, d.environment.name): d
            for p in sorted(wanted)
            for d in for_plant(p)
            if any(t.plant == p for t in d.tenants)
        }
    return {
        (t.plant, d.environment.name): d
        for d in deployments
        for t in d.tenants
        if t.plant in wanted
    }


def slo_from_events(
    deployments: Sequence[Deployment],
    store: ServerStore,
    plants: Sequence[str],
    *,
    at: dt.datetime,
    window: str = DEFAULT_WINDOW,
    daily: bool = False,
    for_plant: Callable[[str], Sequence[Deployment]] | None = None,
) -> dict[tuple[str, str], EnvSlo]:
    """The probe SLO per (plant, environment) of ``plants`` over ``window`` ending at
    ``at``; environments without a recorded run are left out. ``daily``: also the budget
    left at the end of each day of the window (the plant page's chart)."""
    span = parse_window(window)
    by_key = _chosen(deployments, plants, for_plant)
    if not by_key:
        return {}
    starts = range_edges(span, at)
    days = math.ceil(span / _DAY) if daily else 0
    ends = [min(at - span + (i + 1) * _DAY, at) for i in range(days)]
    keys = list(starts)
    edges = [starts[k] for k in keys] + ends
    counted = store.outcome_counts(
        PROBE_CHECKED, plants=sorted({p for p, _ in by_key}), edges=edges, until=at
    )
    measurements = []
    for (plant, env), counts in sorted(counted.items()):
        dep = by_key.get((plant, env))
        if dep is None:
            continue  # an environment no longer planned
        c = dict(zip(keys, counts[: len(keys)], strict=True))
        window_counts = c.pop("")
        measurements.append(counted_measurement((dep.namespace, SLO, plant), window_counts, c))
    deps = list({d.namespace: d for d in by_key.values()}.values())
    report = build_report(deps, measurements, source="events", window=span, at=at, only_slos=(SLO,))
    out: dict[tuple[str, str], EnvSlo] = {}
    for row in report.rows:
        key = (row.plant, row.environment)
        if not row.plant or key not in counted:
            continue  # no-data: shown as "—"
        points: list[BudgetPoint] = []
        if daily:
            counts = counted[key]
            total, bad = counts[0]
            objective = objectives(by_key[key])[SLO]
            for end, (n_after, bad_after) in zip(ends, counts[len(keys) :], strict=True):
                n, f = total - n_after, bad - bad_after
                left = budget_remaining(f / n, objective) if n else None
                points.append(BudgetPoint(end, n, f, left))
        out[key] = EnvSlo(row.plant, row.environment, row, tuple(points))
    return out


__all__ = ["DEFAULT_WINDOW", "BudgetPoint", "EnvSlo", "slo_from_events"]

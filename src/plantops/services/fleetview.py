"""What the control-plane server shows of a fleet (docs/server.md): the same load,
classification, placement, sizing and cost ``plan`` computes before it renders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from plantops.errors import Problem
from plantops.model import Fleet
from plantops.plan import Plan, build_plan
from plantops.plan.cost import cost_plan
from plantops.services import open_fleet
from plantops.sizing.cost import FleetCost


@dataclass(frozen=True)
class FleetSnapshot:
    """What the server shows of a fleet: the model, its plan (not rendered), its cost."""

    fleet: Fleet
    plan: Plan
    cost: FleetCost
    warnings: tuple[Problem, ...]


def fleet_snapshot(root: Path, *, today: dt.date) -> FleetSnapshot:
    """Load, classify, place, size and price the fleet, as ``plan`` does before it renders."""
    res = open_fleet(root, today=today)
    plan = build_plan(res.fleet)
    return FleetSnapshot(res.fleet, plan, cost_plan(plan), (*res.warnings, *plan.warnings))

"""Use cases shared by the CLI and the server: load → build → classify → plan → write.

Each function takes the world it needs as arguments (paths, ``today``) and returns
data; nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plantops.classify import Classification, classify_fleet
from plantops.errors import Problem
from plantops.gitops import TreeSummary, UnitOfWork, write_tree
from plantops.model import Fleet, build_fleet
from plantops.plan import Plan, build_plan
from plantops.render import render_deployment
from plantops.spec import load_fleet


@dataclass(frozen=True)
class FleetResult:
    fleet: Fleet
    warnings: tuple[Problem, ...]


def open_fleet(root: Path, *, today: dt.date, allow_expired: bool = False) -> FleetResult:
    loaded = load_fleet(root, today=today, allow_expired_overrides=allow_expired)
    return FleetResult(build_fleet(loaded, today=today), loaded.warnings)


def classify(root: Path, *, today: dt.date, only: Sequence[str] = ()) -> tuple[Classification, ...]:
    res = open_fleet(root, today=today)
    return classify_fleet(res.fleet, only)


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    tree: TreeSummary
    warnings: tuple[Problem, ...]


def plan_fleet(
    root: Path,
    out: Path,
    *,
    today: dt.date,
    plants: Sequence[str] = (),
    allow_expired: bool = False,
    dry_run: bool = False,
) -> PlanResult:
    """Load, validate, classify, size, render and write the deployment tree."""
    res = open_fleet(root, today=today, allow_expired=allow_expired)
    plan = build_plan(res.fleet, plants)
    units = [
        UnitOfWork(
            id=d.id,
            input_hash=d.input_hash,
            plants=tuple(t.plant for t in d.tenants),
            render=lambda d=d: render_deployment(d),  # type: ignore[misc]
        )
        for d in plan.deployments
    ]
    tree = write_tree(out, units, selected_plants=plants, dry_run=dry_run)
    return PlanResult(plan, tree, res.warnings)

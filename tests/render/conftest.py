"""Rendered objects of the example fleet, shared by the property and security tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plantops import services
from plantops.plan import Deployment, build_plan
from plantops.render import RenderContext, render_deployment_full, render_fleet_objects
from tests.conftest import EXAMPLE, SHARED, TODAY


@dataclass(frozen=True)
class Rendered:
    ctx: RenderContext
    deployments: tuple[Deployment, ...]
    # (deployment, path, object) for every Kubernetes object of every deployment
    objects: list[tuple[Deployment, str, dict[str, Any]]]
    fleet_objects: list[tuple[str, dict[str, Any]]]
    compose: list[tuple[Deployment, str, dict[str, Any]]]
    files: dict[str, str]


def render_fleet(root: Path, *, pinned: bool = False) -> Rendered:
    """Every deployment rendered in memory; ``pinned``: with the fleet's release pins."""
    res = services.open_fleet(root, today=TODAY)
    plan = build_plan(res.fleet)
    if pinned:
        plan = services.pinned_plan(root, plan)
    ctx = RenderContext.from_fleet(res.fleet.spec)
    objects, compose, files = [], [], {}
    for dep in plan.deployments:
        rd = render_deployment_full(dep, ctx)
        objects += [(dep, path, obj) for path, obj in rd.objects]
        if rd.compose:
            compose.append((dep, *rd.compose))
        files.update({f.path: f.content for f in rd.files})
    return Rendered(
        ctx, plan.deployments, objects, render_fleet_objects(plan.deployments, ctx), compose, files
    )


@pytest.fixture(scope="session")
def example() -> Rendered:
    return render_fleet(EXAMPLE)


@pytest.fixture(scope="session")
def shared_crds() -> Path | None:
    path = SHARED / "schemas" / "crds"
    return path if path.is_dir() else None

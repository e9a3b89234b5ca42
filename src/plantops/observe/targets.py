"""Probe targets from the plan: one per plant host per deployment, expecting the Odoo
series the deployment's release says. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from plantops.observe.probe import ProbeCredentials, ProbeTarget

if TYPE_CHECKING:
    from plantops.plan import Deployment


def fleet_targets(
    deployments: Sequence[Deployment],
    *,
    plants: Sequence[str] = (),
    environments: Sequence[str] = (),
    credentials: ProbeCredentials | None = None,
) -> list[ProbeTarget]:
    out = []
    for dep in deployments:
        if environments and dep.environment.name not in environments:
            continue
        for t in dep.tenants:
            if plants and t.plant not in plants:
                continue
            out.append(
                ProbeTarget(
                    name=f"{t.plant}-{dep.environment.name}",
                    url=f"https://{t.host}",
                    database=t.database,
                    expected_version=dep.series,
                    plant=t.plant,
                    environment=dep.environment.name,
                    tier=dep.tier,
                    credentials=credentials,
                )
            )
    return sorted(out, key=lambda t: t.name)


__all__ = ["fleet_targets"]

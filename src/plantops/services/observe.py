"""Use cases behind ``plantops metrics serve`` and ``plantops slo report``.

Opens what the observability core reads — the planned fleet, the backup catalog, a
Prometheus query API, probe result files — and hands it to ``plantops.observe`` as
data or callables. Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from plantops.observe.exporter import Sources, registry_for, release_rows

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from plantops.plan import Deployment
    from plantops.store import BackupRecord


def planned(fleet: Path, today: dt.date) -> tuple[Deployment, ...]:
    from plantops.plan import build_plan
    from plantops.services import open_fleet

    return build_plan(open_fleet(fleet, today=today).fleet).deployments


def exporter_registry(
    fleet: Path, *, probe_results: Path | None, state_db: str | None, today: dt.date
) -> CollectorRegistry:
    """The exporter's registry: plan, probe results, the backup catalog (when
    ``state_db`` is given) and the plant calendars, each read at scrape time."""
    deps = planned(fleet, today)
    plants = list({p.code: p for d in deps for p in d.plants}.values())
    backups = None
    if state_db is not None:
        from plantops.store import open_catalog

        catalog = open_catalog(state_db)  # opened (and migrated) once; read per scrape

        def read() -> Sequence[BackupRecord]:
            return catalog.list_backups(statuses=["complete"])

        backups = read
    return registry_for(
        release_rows(deps), probe_results, Sources(deployments=deps, backups=backups, plants=plants)
    )


__all__ = ["exporter_registry", "planned"]

"""Use cases behind ``plantops metrics serve`` and ``plantops slo report``.

Opens what the observability core reads — the planned fleet, the backup catalog, a
Prometheus query API, probe result files — and hands it to ``plantops.observe`` as
data or callables. Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantops.errors import InfrastructureError, UserError
from plantops.observe.exporter import Sources, registry_for, release_rows
from plantops.observe.slo import RANGES, record_name
from plantops.observe.sloreport import (
    Measurement,
    SloReport,
    build_report,
    parse_window,
    probe_events,
    probe_measurements,
    window_text,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from plantops.plan import Deployment
    from plantops.store import BackupRecord

PROBE_FILE_LIMIT = 64 * 1024 * 1024


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


def _query(client: Any, base: str, promql: str, at: dt.datetime) -> list[dict[str, Any]]:
    """One instant query (Prometheus HTTP API ``GET /api/v1/query``)."""
    import httpx

    try:
        resp = client.get(
            f"{base}/api/v1/query", params={"query": promql, "time": f"{at.timestamp():.3f}"}
        )
    except httpx.HTTPError as exc:
        raise InfrastructureError(f"--prometheus {base}: {exc.__class__.__name__}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError as exc:
        raise InfrastructureError(
            f"--prometheus {base}: HTTP {resp.status_code}, not a Prometheus API answer"
        ) from exc
    if resp.status_code != 200 or body.get("status") != "success":
        raise InfrastructureError(
            f"--prometheus {base}: {body.get('errorType', resp.status_code)}: {body.get('error', '')}"
        )
    result = body.get("data", {}).get("result", [])
    return result if isinstance(result, list) else []


def _value(sample: dict[str, Any]) -> float | None:
    try:
        v = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def prometheus_measurements(
    url: str, window: dt.timedelta, at: dt.datetime, *, timeout: float = 10.0
) -> list[Measurement]:
    """The SLI recordings of ``observe render`` read back from a Prometheus query API."""
    import httpx

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UserError(f"--prometheus {url}: expected http(s)://host:port of a Prometheus")
    per: dict[tuple[str, str, str], dict[str, float]] = {}
    total: dict[tuple[str, str, str], float] = {}

    def key(sample: dict[str, Any]) -> tuple[str, str, str]:
        m = sample.get("metric", {})
        return (
            str(m.get("namespace", "")),
            str(m.get("slo", "")),
            str(m.get("plantops_plant", "")),
        )

    with httpx.Client(timeout=timeout) as client:
        for w in RANGES:
            for sample in _query(client, base, record_name(w), at):
                if (v := _value(sample)) is not None:
                    per.setdefault(key(sample), {})[w] = v
        promql = f"avg_over_time({record_name('5m')}[{window_text(window)}])"
        for sample in _query(client, base, promql, at):
            if (v := _value(sample)) is not None:
                total[key(sample)] = v
    return [
        Measurement(ns, slo, plant, total.get((ns, slo, plant)), per.get((ns, slo, plant), {}))
        for ns, slo, plant in sorted(set(per) | set(total))
    ]


def slo_report(
    fleet: Path,
    *,
    prometheus: str | None,
    probe_results: Sequence[Path],
    window: str,
    at: dt.datetime | None,
    slos: Sequence[str] = (),
    plants: Sequence[str] = (),
    environments: Sequence[str] = (),
) -> SloReport:
    """``plantops slo report``: the error budget of every SLO from one source."""
    from plantops.inputs import Limits, json_value, read_text
    from plantops.observe.sloreport import objectives

    if (prometheus is None) == (not probe_results):
        raise UserError("give either --prometheus URL or --probe-results FILE (one or more)")
    span = parse_window(window)
    when = at or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    deps = planned(fleet, when.date())
    known_plants = {t.plant for d in deps for t in d.tenants}
    for p in plants:
        if p not in known_plants:
            raise UserError(
                f"--plant {p}: not a plant of {fleet} ({', '.join(sorted(known_plants))})"
            )
    known_slos = set(objectives(deps[0])) if deps else set()
    for s in slos:
        if s not in known_slos:
            raise UserError(f"--slo {s}: known SLOs are {', '.join(sorted(known_slos))}")
    chosen = [
        d
        for d in deps
        if (not plants or any(t.plant in plants for t in d.tenants))
        and (not environments or d.environment.name in environments)
    ]
    if prometheus is not None:
        measurements = prometheus_measurements(prometheus, span, when)
        source = prometheus
    else:
        limits = Limits(max_bytes=PROBE_FILE_LIMIT)
        docs = []
        for path in probe_results:
            shown = path.as_posix()
            docs.append(
                (shown, json_value(read_text(path, shown, limits=limits), shown, limits=limits))
            )
        measurements = probe_measurements(probe_events(docs, deps), window=span, at=when)
        source = f"{len(probe_results)} probe result file(s)"
        slos = slos or ("probe", "latency")  # what probe runs can measure
    return build_report(chosen, measurements, source=source, window=span, at=when, only_slos=slos)


__all__ = ["exporter_registry", "planned", "prometheus_measurements", "slo_report"]

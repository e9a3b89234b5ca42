"""The error-budget report (``plantops slo report``): per deployment and SLO, the
objective, the SLI measured over the report window, the error budget left, the burn
rate over each alert window and a status. Pure: the measurements come in as data.

Two sources, same arithmetic:

* a Prometheus query API (services.observe): the SLI recordings ``observe render``
  writes, ``plantops:slo_errors:ratio_rate<w>`` for each alert window, and for the report
  window ``avg_over_time(plantops:slo_errors:ratio_rate5m[<window>])`` (the mean of the
  5-minute error ratios, i.e. the error ratio weighted by time, not by requests);
* probe result files (``probe run --out``), offline: each run is one event per target;
  the ``probe`` SLO counts a run with any failed check as an error, the ``latency`` SLO a
  passed login or version check slower than the tier's ``latency_p95_ms`` (objective 95 %).

Burn rate = error ratio / (1 − objective). Status, most severe first: ``exhausted`` (no
budget left over the report window), ``page`` (1h and 5m above 14.4×, or 6h and 30m
above 6×), ``ticket`` (1d and 2h above 3×, or 3d and 6h above 1×), ``ok``, ``no-data``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantops.errors import UserError
from plantops.observe.slo import LATENCY_OBJECTIVE, RANGES, WINDOWS, go_float

if TYPE_CHECKING:
    from plantops.plan import Deployment

REPORT_SCHEMA = "plantops.io/slo-report/v1"
PROBE_SCHEMA = "plantops.io/probe-run/v1"
STATUSES = ("exhausted", "page", "ticket", "ok", "no-data")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
LATENCY_CHECKS = ("login", "version")


def parse_window(value: str, option: str = "--window") -> dt.timedelta:
    """A Prometheus duration of one unit (``30d``, ``4w``, ``12h``)."""
    m = _DURATION.match(value)
    if m is None:
        raise UserError(f"{option} {value!r}: expected a duration such as 30d, 4w or 12h")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def window_text(window: dt.timedelta) -> str:
    s = int(window.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if s % _UNITS[unit] == 0:
            return f"{s // _UNITS[unit]}{unit}"
    return f"{s}s"


@dataclass(frozen=True)
class Measurement:
    """One SLI series: the error ratio over the report window and each alert window."""

    namespace: str
    slo: str
    plant: str  # "" unless the SLI is per plant (the probe SLI)
    window_error_ratio: float | None
    error_ratio: Mapping[str, float] = field(default_factory=dict)  # RANGES -> ratio
    events: int | None = None  # offline: probe runs counted


@dataclass(frozen=True)
class SloRow:
    namespace: str
    plant: str
    plants: tuple[str, ...]
    environment: str
    tier: str
    slo: str
    objective: float  # percent
    sli: float | None  # percent good over the window
    budget_remaining: float | None  # fraction of the window's budget left (negative: overspent)
    burn_rates: Mapping[str, float]
    status: str
    events: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "plant": self.plant or None,
            "plants": list(self.plants),
            "environment": self.environment,
            "tier": self.tier,
            "slo": self.slo,
            "objective": self.objective,
            "sli": None if self.sli is None else round(self.sli, 6),
            "budget_remaining": (
                None if self.budget_remaining is None else round(self.budget_remaining, 6)
            ),
            "burn_rates": {w: round(v, 4) for w, v in self.burn_rates.items()},
            "status": self.status,
            **({"events": self.events} if self.events is not None else {}),
        }


@dataclass(frozen=True)
class SloReport:
    source: str
    window: str
    at: dt.datetime
    rows: tuple[SloRow, ...]

    @property
    def ok(self) -> bool:
        return not any(r.status in ("exhausted", "page") for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for r in self.rows if r.status == s) for s in STATUSES}
        return {
            "schema": REPORT_SCHEMA,
            "source": self.source,
            "window": self.window,
            "at": self.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "ok": self.ok,
            "summary": counts,
            "slos": [r.as_dict() for r in self.rows],
        }


def objectives(dep: Deployment) -> dict[str, float]:
    """Each SLO of the deployment and its objective in percent (observe/slo.py)."""
    a = dep.tier_spec.slo.availability
    return {
        "availability": a,
        "probe": a,
        "latency": LATENCY_OBJECTIVE,
        "backup_freshness": a,
        "restore_verification": a,
    }


def budget_remaining(error_ratio: float, objective: float) -> float:
    """The fraction of the error budget left after ``error_ratio`` (negative: overspent)."""
    return 1 - error_ratio / round(1 - objective / 100, 10)


def _status(remaining: float | None, burn: Mapping[str, float]) -> str:
    if remaining is None and not burn:
        return "no-data"
    if remaining is not None and remaining <= 0:
        return "exhausted"
    for severity in ("critical", "warning"):
        for w in WINDOWS:
            if w.severity != severity:
                continue
            if burn.get(w.long, 0) > w.factor and burn.get(w.short, 0) > w.factor:
                return "page" if severity == "critical" else "ticket"
    return "ok" if remaining is not None else "no-data"


def build_report(
    deployments: Sequence[Deployment],
    measurements: Iterable[Measurement],
    *,
    source: str,
    window: dt.timedelta,
    at: dt.datetime,
    only_slos: Sequence[str] = (),
) -> SloReport:
    """Rows for every SLO of every deployment; an SLO without a measurement is ``no-data``
    (a missing recording is a finding, not a pass)."""
    by_key: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        by_key.setdefault((m.namespace, m.slo), []).append(m)
    rows: list[SloRow] = []
    for dep in deployments:
        plants = tuple(sorted(t.plant for t in dep.tenants))
        for slo, objective in objectives(dep).items():
            if only_slos and slo not in only_slos:
                continue
            budget = round(1 - objective / 100, 10)
            found = by_key.get((dep.namespace, slo)) or [Measurement(dep.namespace, slo, "", None)]
            for m in sorted(found, key=lambda x: x.plant):
                burn = {w: m.error_ratio[w] / budget for w in RANGES if w in m.error_ratio}
                ratio = m.window_error_ratio
                remaining = None if ratio is None else budget_remaining(ratio, objective)
                rows.append(
                    SloRow(
                        namespace=dep.namespace,
                        plant=m.plant,
                        plants=plants,
                        environment=dep.environment.name,
                        tier=dep.tier,
                        slo=slo,
                        objective=objective,
                        sli=None if ratio is None else (1 - ratio) * 100,
                        budget_remaining=remaining,
                        burn_rates=burn,
                        status=_status(remaining, burn),
                        events=m.events,
                    )
                )
    return SloReport(source, window_text(window), at, tuple(rows))


# --- offline: probe result files ----------------------------------------------------


@dataclass(frozen=True)
class ProbeEvent:
    at: dt.datetime
    namespace: str
    plant: str
    failed: bool
    slow: bool | None  # None: no login/version check passed in this run


def probe_events(
    docs: Iterable[tuple[str, Any]], deployments: Sequence[Deployment]
) -> list[ProbeEvent]:
    """Events from ``probe run --out`` documents (name, parsed JSON); a document of
    another schema is refused with its name."""
    by_plant_env = {(t.plant, d.environment.name): d for d in deployments for t in d.tenants}
    events: list[ProbeEvent] = []
    for name, doc in docs:
        if not isinstance(doc, dict) or doc.get("schema") != PROBE_SCHEMA:
            raise UserError(f"{name}: not a `plantops probe run` result (schema {PROBE_SCHEMA})")
        try:
            at = dt.datetime.fromisoformat(str(doc["started_at"]))
        except (KeyError, ValueError) as exc:
            raise UserError(f"{name}: started_at missing or not ISO 8601") from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        for t in doc.get("targets") or []:
            if not isinstance(t, dict):
                continue
            dep = by_plant_env.get((str(t.get("plant")), str(t.get("environment"))))
            if dep is None:
                continue  # a --url run, or a plant no longer in the fleet
            checks = [c for c in t.get("checks") or [] if isinstance(c, dict)]
            failed = any(c.get("status") == "fail" for c in checks)
            limit = dep.tier_spec.slo.latency_p95_ms
            timed = [
                float(c.get("latency_ms", 0))
                for c in checks
                if c.get("check") in LATENCY_CHECKS and c.get("status") == "pass"
            ]
            slow = None if not timed else max(timed) > limit
            events.append(ProbeEvent(at, dep.namespace, str(t["plant"]), failed, slow))
    return events


def counted_measurement(
    key: tuple[str, str, str],
    window: tuple[int, int],
    ranges: Mapping[str, tuple[int, int]],
) -> Measurement:
    """A measurement from counts of (events, bad events): over the report window and
    each alert window of RANGES (``ranges``; a window without events has no ratio)."""

    def ratio(counted: tuple[int, int]) -> float | None:
        n, bad = counted
        return bad / n if n else None

    per = {w: r for w in RANGES if w in ranges and (r := ratio(ranges[w])) is not None}
    ns, slo, plant = key
    return Measurement(ns, slo, plant, ratio(window), per, window[0])


def range_edges(window: dt.timedelta, at: dt.datetime) -> dict[str, dt.datetime]:
    """Where the report window (key ``""``) and each alert window start, ending at ``at``."""
    return {"": at - window, **{w: at - parse_window(w) for w in RANGES}}


def _measure(
    flags: Sequence[tuple[dt.datetime, bool]],
    key: tuple[str, str, str],
    window: dt.timedelta,
    at: dt.datetime,
) -> Measurement:
    def count(since: dt.datetime) -> tuple[int, int]:
        inside = [bad for when, bad in flags if since < when <= at]
        return len(inside), sum(inside)

    edges = range_edges(window, at)
    return counted_measurement(key, count(edges[""]), {w: count(e) for w, e in edges.items() if w})


def probe_measurements(
    events: Sequence[ProbeEvent], *, window: dt.timedelta, at: dt.datetime
) -> list[Measurement]:
    """The probe SLI per namespace and plant (as the blackbox recording is per plant),
    the latency SLI per namespace: error ratios over the report window and each alert
    window ending at ``at``."""
    out: list[Measurement] = []
    for ns, plant in sorted({(e.namespace, e.plant) for e in events}):
        flags = [(e.at, e.failed) for e in events if (e.namespace, e.plant) == (ns, plant)]
        out.append(_measure(flags, (ns, "probe", plant), window, at))
    for ns in sorted({e.namespace for e in events}):
        timed = [(e.at, e.slow) for e in events if e.namespace == ns and e.slow is not None]
        if timed:
            out.append(_measure(timed, (ns, "latency", ""), window, at))
    return out


def render_text(report: SloReport) -> list[list[str]]:
    """Table rows for the CLI: deployment, slo, objective, sli, budget left, burn rates."""
    rows = []
    for r in report.rows:
        burn = " ".join(f"{w}={go_float(round(v, 2))}" for w, v in r.burn_rates.items()) or "-"
        rows.append(
            [
                r.namespace + (f" [{r.plant}]" if r.plant else ""),
                r.slo,
                f"{go_float(r.objective)} %",
                "-" if r.sli is None else f"{r.sli:.4f} %",
                "-" if r.budget_remaining is None else f"{r.budget_remaining * 100:.1f} %",
                burn,
                r.status,
            ]
        )
    return rows


__all__ = [
    "REPORT_SCHEMA",
    "Measurement",
    "ProbeEvent",
    "SloReport",
    "SloRow",
    "budget_remaining",
    "build_report",
    "counted_measurement",
    "objectives",
    "parse_window",
    "probe_events",
    "probe_measurements",
    "range_edges",
    "render_text",
    "window_text",
]

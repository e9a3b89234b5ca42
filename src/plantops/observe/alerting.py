"""Alertmanager configuration from the fleet: routes by plant, tier and severity,
receivers from ``alerting.yaml`` beside ``fleet.yaml`` (optional), and time intervals from
each plant's shifts and freeze windows in its own timezone.

What the windows do (docs/observability.md):

* a ``shutdown`` freeze mutes every notification of that plant: nobody works, nothing
  is to be fixed before the restart (``mute_time_intervals``);
* tickets (``severity: warning``, the slow burns) are delivered only during the plant's
  shifts (``active_time_intervals``); a ticket still firing at the next shift start is
  sent then, since Alertmanager re-evaluates at each group interval;
* pages (``critical``) always go out outside shutdowns; month-end close and MRP runs
  mute nothing, they are when the plant needs Odoo most.

Alertmanager (>= 0.25) evaluates ``time_intervals`` in their ``location``
(prometheus/alertmanager timeinterval.go ``TimeInterval.ContainsTime`` converts to the
location first), so plant-local times are written as the plant wrote them. Pure apart
from reading ``alerting.yaml``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from dateutil.rrule import rrulestr
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from plantops.errors import UserError
from plantops.inputs import SPEC_LIMITS, read_text, yaml_documents

if TYPE_CHECKING:
    from plantops.model import Fleet, Plant
    from plantops.plan import Deployment
    from plantops.spec.models import FreezeWindow, Shift

HORIZON_DAYS = 400
AM_WEEKDAY = {
    "mon": "monday",
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
}
NEXT_DAY = dict(zip(AM_WEEKDAY, [*list(AM_WEEKDAY)[1:], "mon"], strict=True))
GROUP_BY = ["alertname", "namespace", "plantops_plant", "slo"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackTarget(_Strict):
    api_url: HttpUrl
    channel: str


class Receiver(_Strict):
    email: list[str] = Field(default_factory=list)
    webhook: list[HttpUrl] = Field(default_factory=list)
    chat: list[SlackTarget] = Field(default_factory=list)


class PlantRouting(_Strict):
    page: str
    ticket: str | None = None


class AlertingSettings(_Strict):
    """``alerting.yaml``: who hears what. Secrets (SMTP password, webhook tokens) are
    not here: Alertmanager reads them from its own secret files."""

    default_receiver: str = "platform"
    smtp_smarthost: str | None = None
    smtp_from: str | None = None
    receivers: dict[str, Receiver] = Field(default_factory=lambda: {"platform": Receiver()})
    plants: dict[str, PlantRouting] = Field(default_factory=dict)
    tiers: dict[str, PlantRouting] = Field(
        default_factory=dict, description="Fallback per tier for plants not listed."
    )


def load_alerting(path: Path) -> AlertingSettings:
    if not os.path.lexists(path):
        return AlertingSettings()
    # Bounded like every fleet file: regular file, no link out of its folder, no YAML bomb.
    text = read_text(path, path.as_posix(), limits=SPEC_LIMITS, root=path.parent)
    try:
        docs = yaml_documents(text, path.as_posix(), limits=SPEC_LIMITS)
        data = docs[0][2] if docs else {}
        settings = AlertingSettings.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise UserError(f"{path}: {exc}") from exc
    missing = {settings.default_receiver} | {
        r for pr in [*settings.plants.values(), *settings.tiers.values()]
        for r in (pr.page, pr.ticket) if r
    }  # fmt: skip
    unknown = sorted(missing - set(settings.receivers))
    if unknown:
        raise UserError(f"{path}: receivers {unknown} are used but not defined under receivers:")
    return settings


def _receiver(name: str, r: Receiver, settings: AlertingSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if r.email:
        out["email_configs"] = [{"to": to, "send_resolved": True} for to in r.email]
        if settings.smtp_smarthost is None:
            for cfg in out["email_configs"]:
                cfg["smarthost"] = "localhost:25"
                cfg["from"] = settings.smtp_from or "alertmanager@localhost"
    if r.webhook:
        out["webhook_configs"] = [{"url": str(u), "send_resolved": True} for u in r.webhook]
    if r.chat:
        out["slack_configs"] = [
            {"api_url": str(c.api_url), "channel": c.channel, "send_resolved": True} for c in r.chat
        ]
    return out


# --- time intervals ----------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def shift_intervals(shifts: Sequence[Shift]) -> list[dict[str, Any]]:
    """Shift hours as Alertmanager time ranges; a night shift is split at midnight."""
    out: list[dict[str, Any]] = []
    for sh in shifts:
        start, end = _minutes(sh.start), _minutes(sh.end)
        days = [AM_WEEKDAY[d] for d in sh.days]
        if end > start:
            out.append({"times": [{"start_time": sh.start, "end_time": sh.end}], "weekdays": days})
        else:
            out.append({"times": [{"start_time": sh.start, "end_time": "24:00"}], "weekdays": days})
            if end > 0:
                nxt = [AM_WEEKDAY[NEXT_DAY[d]] for d in sh.days]
                out.append(
                    {"times": [{"start_time": "00:00", "end_time": sh.end}], "weekdays": nxt}
                )
    return out


def _span(start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """[start, end) in local wall time as Alertmanager intervals: a partial first and last
    day with times, whole days in between as day-of-month ranges per month."""
    out: list[dict[str, Any]] = []

    def day(d: dt.date, first: int, last: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "years": [str(d.year)],
            "months": [str(d.month)],
            "days_of_month": [f"{d.day}:{d.day}"],
        }
        if (first, last) != (0, 1440):
            entry["times"] = [{"start_time": _hhmm(first), "end_time": _hhmm(last)}]
        return entry

    cur = start
    run: list[dt.date] = []

    def flush() -> None:
        if run:
            first, last = run[0], run[-1]
            out.append(
                {
                    "years": [str(first.year)],
                    "months": [str(first.month)],
                    "days_of_month": [f"{first.day}:{last.day}"],
                }
            )
            run.clear()

    while cur < end:
        next_midnight = dt.datetime.combine(cur.date() + dt.timedelta(days=1), dt.time())
        seg_end = min(end, next_midnight)
        first = cur.hour * 60 + cur.minute
        last = 1440 if seg_end == next_midnight else seg_end.hour * 60 + seg_end.minute
        if (first, last) == (0, 1440):
            if run and (run[-1].month != cur.month or run[-1].year != cur.year):
                flush()
            run.append(cur.date())
        else:
            flush()
            if last > first:
                out.append(day(cur.date(), first, last))
        cur = seg_end
    flush()
    return out


def freeze_spans(fw: FreezeWindow, today: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """Occurrences of a freeze window (local wall time) that end after ``today``, up to
    ``HORIZON_DAYS`` ahead; ``plantops observe render`` is re-run to roll them forward."""
    start_of_today = dt.datetime.combine(today, dt.time())
    if fw.start is not None and fw.end is not None:
        s, e = fw.start.replace(tzinfo=None), fw.end.replace(tzinfo=None)
        return [(s, e)] if e > start_of_today else []
    assert fw.rrule is not None and fw.at is not None and fw.duration_hours is not None
    h, m = (int(x) for x in fw.at.split(":"))
    length = dt.timedelta(hours=fw.duration_hours)
    # dtstart carries the local start time into every occurrence (RFC 5545 3.8.5.3); it
    # starts early enough that an occurrence still running today is included.
    back = dt.timedelta(days=31 + int(length.total_seconds() // 86400) + 1)
    dtstart = dt.datetime.combine(today - back, dt.time(h, m))
    horizon = start_of_today + dt.timedelta(days=HORIZON_DAYS)
    rule = rrulestr(fw.rrule, dtstart=dtstart)
    return [
        (o, o + length)
        for o in rule.between(dtstart, horizon, inc=True)
        if o + length > start_of_today
    ]


def shutdown_intervals(plant: Plant, today: dt.date) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for fw in plant.spec.freeze_windows:
        if fw.kind != "shutdown":
            continue
        for s, e in freeze_spans(fw, today):
            out += _span(s, e)
    return out


# --- the configuration -------------------------------------------------------------


def _routing(plant: Plant, tier: str, settings: AlertingSettings) -> PlantRouting:
    return (
        settings.plants.get(plant.code)
        or settings.tiers.get(tier)
        or PlantRouting(page=settings.default_receiver)
    )


def alertmanager_config(
    fleet: Fleet,
    deployments: Iterable[Deployment],
    settings: AlertingSettings,
    *,
    today: dt.date,
) -> dict[str, Any]:
    namespaces: dict[str, set[str]] = {}
    tiers: dict[str, str] = {}
    for dep in deployments:
        for t in dep.tenants:
            namespaces.setdefault(t.plant, set()).add(dep.namespace)
            if dep.production or t.plant not in tiers:
                tiers[t.plant] = dep.tier
    intervals: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    for plant in sorted(fleet.plants, key=lambda p: p.code):
        if plant.code not in namespaces:
            continue
        tz = plant.spec.timezone
        mute: list[str] = []
        shutdown = shutdown_intervals(plant, today)
        if shutdown:
            name = f"{plant.code}-shutdown"
            intervals.append({"name": name, "time_intervals": _located(shutdown, tz)})
            mute = [name]
        shifts = shift_intervals(plant.spec.shifts)
        active: list[str] = []
        if shifts:
            name = f"{plant.code}-shifts"
            intervals.append({"name": name, "time_intervals": _located(shifts, tz)})
            active = [name]
        routing = _routing(plant, tiers[plant.code], settings)
        page: dict[str, Any] = {"receiver": routing.page, "matchers": ['severity="critical"']}
        ticket: dict[str, Any] = {
            "receiver": routing.ticket or routing.page,
            "matchers": ['severity=~"warning|info"'],
            "group_interval": "30m",
            "repeat_interval": "24h",
        }
        if mute:
            page["mute_time_intervals"] = mute
            ticket["mute_time_intervals"] = mute
        if active:
            ticket["active_time_intervals"] = active
        ns = "|".join(sorted(namespaces[plant.code]))
        routes.append(
            {
                "receiver": routing.page,
                "matchers": [f'namespace=~"{ns}"', f'plantops_plant=~"{plant.code}|"'],
                "continue": True,
                "routes": [page, ticket],
            }
        )
    config: dict[str, Any] = {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": settings.default_receiver,
            "group_by": GROUP_BY,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        # A page on a window says everything a ticket on the same SLO would.
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~"warning|info"'],
                "equal": ["namespace", "plantops_plant", "slo"],
            }
        ],
        "receivers": [_receiver(n, r, settings) for n, r in sorted(settings.receivers.items())],
    }
    if settings.smtp_smarthost:
        config["global"]["smtp_smarthost"] = settings.smtp_smarthost
        config["global"]["smtp_from"] = settings.smtp_from or "alertmanager@localhost"
    if intervals:
        config["time_intervals"] = intervals
    return config


def _located(entries: list[dict[str, Any]], tz: str) -> list[dict[str, Any]]:
    return [{**e, "location": tz} for e in entries]


__all__ = [
    "AlertingSettings",
    "PlantRouting",
    "Receiver",
    "alertmanager_config",
    "freeze_spans",
    "load_alerting",
    "shift_intervals",
    "shutdown_intervals",
]

"""Business events of each plant as series (issue #15 §7): shifts, MRP runs, month-end
close, shutdowns and audits from the plant calendar (``shifts`` and ``freeze_windows`` in
the plant file), evaluated in the plant's timezone at ``now`` so dashboards can lay load
and incidents over them.

Per plant and event: active now (1/0), the last start and the next start as Unix time.
A shift change is a step of ``plantops_plant_event_active{kind="shift"}`` or of its last
start; a Grafana annotation query is ``changes(plantops_plant_event_last_start_timestamp_seconds[5m]) > 0``.

Pure: the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from plantops.observe.alerting import freeze_spans

if TYPE_CHECKING:
    from plantops.model import Plant
    from plantops.spec.models import Shift

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKBACK_DAYS = (
    40  # a freeze window lasts at most 31 days (spec), recurrences are monthly or denser
)


@dataclass(frozen=True)
class EventState:
    plant: str
    event: str
    kind: str  # "shift" or a freeze-window kind (mrp-run, month-end-close, shutdown, …)
    active: bool
    last_start: dt.datetime | None  # UTC
    next_start: dt.datetime | None  # UTC


def _utc(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def _shift_spans(sh: Shift, around: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """Local [start, end) of the shift on the days around ``around`` (a night shift ends
    the next day)."""
    h0, m0 = (int(x) for x in sh.start.split(":"))
    h1, m1 = (int(x) for x in sh.end.split(":"))
    out = []
    for offset in range(-8, 9):
        day = around + dt.timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in sh.days:
            continue
        start = dt.datetime.combine(day, dt.time(h0, m0))
        end = dt.datetime.combine(day, dt.time(h1, m1))
        if end <= start:
            end += dt.timedelta(days=1)
        out.append((start, end))
    return out


def _state(
    plant: str,
    event: str,
    kind: str,
    spans: Iterable[tuple[dt.datetime, dt.datetime]],
    tz: ZoneInfo,
    now: dt.datetime,
) -> EventState:
    utc = sorted((_utc(s, tz), _utc(e, tz)) for s, e in spans)
    active = any(s <= now < e for s, e in utc)
    last = max((s for s, _ in utc if s <= now), default=None)
    nxt = min((s for s, _ in utc if s > now), default=None)
    return EventState(plant, event, kind, active, last, nxt)


def plant_events(plants: Sequence[Plant], now: dt.datetime) -> tuple[EventState, ...]:
    """The state of every shift and calendar window of ``plants`` at ``now`` (aware)."""
    out: list[EventState] = []
    for plant in plants:
        tz = ZoneInfo(plant.spec.timezone)
        local = now.astimezone(tz).replace(tzinfo=None)
        for sh in plant.spec.shifts:
            out.append(
                _state(plant.code, sh.name, "shift", _shift_spans(sh, local.date()), tz, now)
            )
        since = local.date() - dt.timedelta(days=LOOKBACK_DAYS)
        for fw in plant.spec.freeze_windows:
            spans = freeze_spans(fw, since)
            out.append(_state(plant.code, fw.name, str(fw.kind.value), spans, tz, now))
    return tuple(sorted(out, key=lambda e: (e.plant, e.kind, e.event)))


__all__ = ["EventState", "plant_events"]

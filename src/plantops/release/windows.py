"""Release windows in the plant's own timezone: when a deployment may be changed.

A promotion is allowed at ``t`` when ``t`` is inside one of the stage's allowed windows
(none configured: any time), outside every freeze window of the plant (one-off dates and
RFC 5545 recurrences — MRP runs, month-end close, shutdowns) and not within the shift-change
margin of any shift's start or end. Recurrences are expanded with python-dateutil's
``rrulestr`` (``dateutil.rrule``), in plant-local wall time, so a 02:00 MRP run stays at 02:00
across a DST change; each occurrence is then given the plant's zone.

Pure: the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from plantops.spec.models import FreezeWindow, ReleaseWindow, Shift

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 35
"""How far ahead the next allowed time is looked for (a monthly freeze plus slack)."""


@dataclass(frozen=True)
class Interval:
    start: dt.datetime  # aware, UTC
    end: dt.datetime
    reason: str

    def contains(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class WindowVerdict:
    ok: bool
    reasons: tuple[str, ...]
    next_allowed: dt.datetime | None  # None when ok, or nothing within SEARCH_DAYS


def _hhmm(value: str) -> dt.time:
    h, m = value.split(":")
    return dt.time(int(h), int(m))


@functools.lru_cache(maxsize=4096)
def _occurrences(
    rule: str, at: str, hours: float, tz: str, lo: dt.datetime, hi: dt.datetime
) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    """Occurrences (UTC start, end) of ``rule`` starting at local ``at`` that overlap
    [lo, hi); the recurrence is evaluated in naive local wall time."""
    zone = ZoneInfo(tz)
    length = dt.timedelta(hours=hours)
    local_lo = (lo - length).astimezone(zone).replace(tzinfo=None)
    local_hi = hi.astimezone(zone).replace(tzinfo=None)
    start = dt.datetime.combine(local_lo.date() - dt.timedelta(days=1), _hhmm(at))
    out = []
    for occ in rrulestr(rule, dtstart=start).between(start, local_hi, inc=True):
        begin = occ.replace(tzinfo=zone).astimezone(dt.UTC)
        end = begin + length
        if end > lo and begin < hi:
            out.append((begin, end))
    return tuple(out)


def _day_range(lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo) -> list[dt.date]:
    first = lo.astimezone(zone).date() - dt.timedelta(days=1)
    last = hi.astimezone(zone).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def blocked_intervals(
    tz: str,
    shifts: Sequence[Shift],
    freezes: Sequence[FreezeWindow],
    margin_minutes: int,
    lo: dt.datetime,
    hi: dt.datetime,
) -> list[Interval]:
    """Freezes and shift-change margins overlapping [lo, hi), sorted by start."""
    zone = ZoneInfo(tz)
    out: list[Interval] = []
    for f in freezes:
        if f.rrule is None:
            assert f.start is not None and f.end is not None
            fs = f.start.replace(tzinfo=zone) if f.start.tzinfo is None else f.start
            fe = f.end.replace(tzinfo=zone) if f.end.tzinfo is None else f.end
            iv = Interval(fs.astimezone(dt.UTC), fe.astimezone(dt.UTC), f"freeze {f.name}")
            if iv.end > lo and iv.start < hi:
                out.append(iv)
            continue
        assert f.at is not None and f.duration_hours is not None
        for b, e in _occurrences(f.rrule, f.at, f.duration_hours, tz, lo, hi):
            out.append(Interval(b, e, f"freeze {f.name} ({f.kind.value}, {f.rrule} at {f.at})"))
    if margin_minutes and shifts:
        margin = dt.timedelta(minutes=margin_minutes)
        tail = f" {tz} (margin {margin_minutes} min)"
        # Parsed once per call, not once per day: this loop is the hot path of the gates.
        edges = [
            (set(s.days), _hhmm(s.start), _hhmm(s.end), s.end <= s.start, s.name, s.start, s.end)
            for s in shifts
        ]
        for day in _day_range(lo, hi, zone):
            weekday = DAYS[day.weekday()]
            for days, t_start, t_end, overnight, name, s_text, e_text in edges:
                if weekday not in days:
                    continue
                begin = dt.datetime.combine(day, t_start, zone).astimezone(dt.UTC)
                end_day = day + dt.timedelta(days=1) if overnight else day
                finish = dt.datetime.combine(end_day, t_end, zone).astimezone(dt.UTC)
                if begin - margin < hi and begin + margin > lo:
                    why = f"shift {name} starts at {weekday.title()} {s_text}{tail}"
                    out.append(Interval(begin - margin, begin + margin, why))
                if finish - margin < hi and finish + margin > lo:
                    why = f"shift {name} ends at {DAYS[end_day.weekday()].title()} {e_text}{tail}"
                    out.append(Interval(finish - margin, finish + margin, why))
    out.sort(key=lambda i: (i.start, i.end, i.reason))
    return out


def allowed_intervals(
    tz: str, windows: Sequence[ReleaseWindow], lo: dt.datetime, hi: dt.datetime
) -> list[Interval] | None:
    """The stage's allowed windows overlapping [lo, hi); ``None`` when it has none."""
    if not windows:
        return None
    out = [
        Interval(b, e, f"window {w.name}")
        for w in windows
        for b, e in _occurrences(w.rrule, w.at, w.duration_hours, tz, lo, hi)
    ]
    out.sort(key=lambda i: (i.start, i.end))
    return out


def _allowed_at(
    t: dt.datetime, blocked: Sequence[Interval], allowed: Sequence[Interval] | None
) -> bool:
    if allowed is not None and not any(a.contains(t) for a in allowed):
        return False
    return not any(b.contains(t) for b in blocked)


def evaluate_windows(
    tz: str,
    shifts: Sequence[Shift],
    freezes: Sequence[FreezeWindow],
    windows: Sequence[ReleaseWindow],
    margin_minutes: int,
    now: dt.datetime,
) -> WindowVerdict:
    """Whether ``now`` is allowed; if not, why and the next allowed time."""
    now = now.astimezone(dt.UTC)
    near = now + dt.timedelta(seconds=1)
    blocked = blocked_intervals(tz, shifts, freezes, margin_minutes, now, near)
    allowed = allowed_intervals(tz, windows, now, near)
    if _allowed_at(now, blocked, allowed):
        return WindowVerdict(
            True, (f"{now.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} {tz}: open",), None
        )
    reasons = [b.reason for b in blocked if b.contains(now)]
    if allowed is not None and not any(a.contains(now) for a in allowed):
        reasons.append("outside every allowed window (" + ", ".join(w.name for w in windows) + ")")
    return WindowVerdict(
        False, tuple(reasons), next_allowed(tz, shifts, freezes, windows, margin_minutes, now)
    )


def next_allowed(
    tz: str,
    shifts: Sequence[Shift],
    freezes: Sequence[FreezeWindow],
    windows: Sequence[ReleaseWindow],
    margin_minutes: int,
    now: dt.datetime,
) -> dt.datetime | None:
    """The first allowed instant after ``now`` within SEARCH_DAYS (short horizons first:
    most blocks are a shift change or a nightly run)."""
    for days in (2, 9, SEARCH_DAYS):
        hi = now + dt.timedelta(days=days)
        blocked = blocked_intervals(tz, shifts, freezes, margin_minutes, now, hi)
        allowed = allowed_intervals(tz, windows, now, hi)
        candidates = sorted(
            {b.end for b in blocked if now < b.end < hi}
            | {a.start for a in allowed or () if now < a.start < hi}
        )
        # A candidate inside the horizon is judged with every interval that can cover it.
        found = next((c for c in candidates if _allowed_at(c, blocked, allowed)), None)
        if found is not None:
            return found
    return None


__all__ = [
    "Interval",
    "WindowVerdict",
    "allowed_intervals",
    "blocked_intervals",
    "evaluate_windows",
    "next_allowed",
]

"""Sync windows from each plant's freeze windows and shift changes, in its timezone.

Argo CD windows are a cron schedule plus a duration, so an RRULE that cron cannot
express exactly is widened, never narrowed: ``BYMONTHDAY=-1`` (last day) becomes
days 28-31, a one-off freeze recurs on the same date every year. A deny window only
blocks more than asked, never less. Manual syncs stay possible (an emergency fix by
a human), automated ones wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.spec.models import FreezeWindow, Shift

SHIFT_CHANGE_MARGIN_MIN = 30
CRON_DAY = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
RRULE_DAY = {"SU": 0, "MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6}


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _duration(minutes: int) -> str:
    hours, mins = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{mins}m" if mins or not hours else "")


def _days(days: list[int]) -> str:
    return "*" if len(set(days)) == 7 else ",".join(str(d) for d in sorted(set(days)))


def _rrule_cron(rrule: str, at: str) -> str:
    parts = dict(p.split("=", 1) for p in rrule.split(";"))
    minute, hour = _minutes(at) % 60, _minutes(at) // 60
    dom, month, dow = "*", "*", "*"
    if "BYMONTH" in parts:
        month = parts["BYMONTH"]
    if "BYMONTHDAY" in parts:
        days = []
        for d in parts["BYMONTHDAY"].split(","):
            n = int(d)
            days += list(range(max(1, 29 + n), 32)) if n < 0 else [n]
        dom = ",".join(str(d) for d in sorted(set(days)))
        if len(set(days)) > 1 and sorted(set(days)) == list(range(min(days), max(days) + 1)):
            dom = f"{min(days)}-{max(days)}"
    if "BYDAY" in parts:
        dow = _days([RRULE_DAY[d.lstrip("+-0123456789")] for d in parts["BYDAY"].split(",")])
        if dom != "*":
            dow = "*"  # cron ORs day-of-month and day-of-week: keep the wider of the two
    return f"{minute} {hour} {dom} {month} {dow}"


def freeze_window(fw: FreezeWindow) -> tuple[str, str]:
    """(cron schedule, duration) of one freeze window."""
    if fw.rrule is not None:
        assert fw.at is not None and fw.duration_hours is not None
        return _rrule_cron(fw.rrule, fw.at), _duration(round(fw.duration_hours * 60))
    assert fw.start is not None and fw.end is not None
    start = fw.start
    minutes = max(1, int((fw.end - start).total_seconds() // 60))
    return f"{start.minute} {start.hour} {start.day} {start.month} *", _duration(minutes)


def shift_changes(shifts: list[Shift]) -> list[tuple[str, str]]:
    """(cron, duration) deny windows around every shift start and end."""
    by_time: dict[int, set[int]] = {}
    for sh in shifts:
        days = [CRON_DAY[d] for d in sh.days]
        start = _minutes(sh.start)
        end = _minutes(sh.end)
        end_days = days if end > start else [(d + 1) % 7 for d in days]
        for t, ds in ((start, days), (end, end_days)):
            begin = t - SHIFT_CHANGE_MARGIN_MIN
            shifted = [(d - 1) % 7 for d in ds] if begin < 0 else ds
            by_time.setdefault(begin % 1440, set()).update(shifted)
    out = []
    for t in sorted(by_time):
        out.append(
            (
                f"{t % 60} {t // 60} * * {_days(sorted(by_time[t]))}",
                _duration(2 * SHIFT_CHANGE_MARGIN_MIN),
            )
        )
    return out


def sync_windows(dep: Deployment, app: str) -> list[dict[str, Any]]:
    """Deny windows of one production deployment (none outside production)."""
    if not dep.production:
        return []
    windows = []
    for plant in dep.plants:
        tz = plant.spec.timezone
        for fw in plant.spec.freeze_windows:
            schedule, duration = freeze_window(fw)
            windows.append(
                {
                    "applications": [app],
                    "description": f"{plant.code}: freeze {fw.name} ({fw.kind.value})",
                    "duration": duration,
                    "kind": "deny",
                    "manualSync": True,
                    "schedule": schedule,
                    "timeZone": tz,
                }
            )
        for schedule, duration in shift_changes(list(plant.spec.shifts)):
            windows.append(
                {
                    "applications": [app],
                    "description": f"{plant.code}: shift change",
                    "duration": duration,
                    "kind": "deny",
                    "manualSync": True,
                    "schedule": schedule,
                    "timeZone": tz,
                }
            )
    return windows

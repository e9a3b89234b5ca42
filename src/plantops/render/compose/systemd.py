"""systemd units that run pgBackRest on a VM plant: the stanza, then scheduled backups.

PostgreSQL runs in the Compose stack; pgBackRest runs inside that container
(``docker compose exec``), as ``postgres``, so it sees the data directory, the
socket and the mounted ``pgbackrest.conf``. The host's systemd schedules it:
timers survive container restarts, catch up after downtime (``Persistent=true``)
and report failures in ``systemctl --failed``, which a Compose service cannot.

The schedule follows the tier like the Kubernetes ScheduledBackup: full weekly,
differential daily, incremental at the RPO where no WAL stream covers it. This
module only renders text; it never runs anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plantops.render.kubernetes.cloudnativepg import backup_interval_minutes
from plantops.render.kubernetes.common import stable_minute

if TYPE_CHECKING:
    from plantops.plan import Deployment

VM_ROOT = "/opt/plantops"
"""Where provisioning copies ``vms/<plant>-<env>/`` on the VM."""
BACKUP_HOUR = 2
"""UTC hour of the full (Sunday) and differential (other days) backups."""
STANZA_UNIT = "plantops-pgbackrest-stanza.service"
UNIT_PREFIX = "plantops-pgbackrest"
LOCK = "/run/lock/plantops-pgbackrest.lock"
BACKUP_TYPES = ("full", "diff", "incr")


def _largest_divisor(total: int, at_most: int) -> int:
    return max(d for d in range(1, total + 1) if total % d == 0 and d <= max(1, at_most))


def backup_calendar(dep: Deployment) -> dict[str, str]:
    """systemd ``OnCalendar`` per pgBackRest backup type (UTC); no ``incr`` when not needed.

    Full on Sunday and differential on the other days, both at ``BACKUP_HOUR``:
    one backup a day, however the RPO. Incrementals follow the interval the
    Kubernetes ScheduledBackup uses (the RPO; none where WAL archiving covers the
    RPO, i.e. PITR tiers, or where the RPO is a day or more), on a step that divides
    the hour or the day so the spacing never exceeds the RPO, and skip
    ``BACKUP_HOUR``, which the full or differential backup already covers.
    """
    minute = stable_minute(dep, "backup")
    daily = f"{BACKUP_HOUR:02d}:{minute:02d}:00 UTC"
    calendar = {"full": f"Sun *-*-* {daily}", "diff": f"Mon..Sat *-*-* {daily}"}
    interval = backup_interval_minutes(dep)
    if interval < 60:
        step = _largest_divisor(60, interval)
        calendar["incr"] = f"*-*-* *:00/{step:02d}:00 UTC"
    elif interval < 24 * 60:
        step = _largest_divisor(24, interval // 60)
        hours = [h for h in range(0, 24, step) if h != BACKUP_HOUR]
        calendar["incr"] = f"*-*-* {','.join(f'{h:02d}' for h in hours)}:{minute:02d}:00 UTC"
    return calendar


def _compose(stanza: str, args: str) -> str:
    return f"docker compose exec -T --user postgres postgres pgbackrest --stanza={stanza} {args}"


def _unit(sections: list[tuple[str, list[str]]], comment: str) -> str:
    lines = [f"# Rendered by plantops. {comment}"]
    for title, body in sections:
        lines += ["", f"[{title}]", *body]
    return "\n".join(lines) + "\n"


def render_systemd_units(dep: Deployment, stanza: str) -> dict[str, str]:
    """``{file name: unit text}`` for ``vms/<plant>-<env>/systemd/``."""
    workdir = f"{VM_ROOT}/{dep.dir.rsplit('/', 1)[1]}"
    install = (
        f"Copy this directory to {workdir}/, then `systemctl link {workdir}/systemd/*` "
        f"and `systemctl enable --now {UNIT_PREFIX}-*.timer {STANZA_UNIT}`."
    )
    units = {
        STANZA_UNIT: _unit(
            [
                (
                    "Unit",
                    [
                        f"Description=pgBackRest stanza of {stanza} (plantops)",
                        "Requires=docker.service",
                        "After=docker.service network-online.target",
                        "Wants=network-online.target",
                    ],
                ),
                (
                    "Service",
                    [
                        "Type=oneshot",
                        "RemainAfterExit=yes",
                        f"WorkingDirectory={workdir}",
                        "TimeoutStartSec=15min",
                        # The stack may still be starting at boot: wait for PostgreSQL.
                        "ExecStartPre=/bin/sh -c 'until docker compose exec -T postgres "
                        "pg_isready -q -U postgres; do sleep 5; done'",
                        # Idempotent: succeeds when the stanza exists and matches.
                        f"ExecStart={_compose(stanza, 'stanza-create')}",
                        # Proves WAL archiving end to end (forces a WAL switch).
                        f"ExecStart={_compose(stanza, 'check')}",
                    ],
                ),
                ("Install", ["WantedBy=multi-user.target"]),
            ],
            f"Creates the stanza once per boot. {install}",
        )
    }
    for kind, calendar in backup_calendar(dep).items():
        service = f"{UNIT_PREFIX}-{kind}.service"
        units[service] = _unit(
            [
                (
                    "Unit",
                    [
                        f"Description=pgBackRest {kind} backup of {stanza} (plantops)",
                        "Requires=docker.service",
                        # Wants, not Requires: a stanza unit that failed at boot (object
                        # store unreachable) is retried before each backup, not a blocker.
                        f"Wants={STANZA_UNIT}",
                        f"After=docker.service {STANZA_UNIT}",
                    ],
                ),
                (
                    "Service",
                    [
                        "Type=oneshot",
                        f"WorkingDirectory={workdir}",
                        # One backup at a time: pgBackRest fails a second one on its lock.
                        f"ExecStart=flock {LOCK} {_compose(stanza, f'--type={kind} backup')}",
                    ],
                ),
            ],
            f"Started by {UNIT_PREFIX}-{kind}.timer.",
        )
        units[f"{UNIT_PREFIX}-{kind}.timer"] = _unit(
            [
                ("Unit", [f"Description=pgBackRest {kind} backup of {stanza} (plantops)"]),
                (
                    "Timer",
                    [f"OnCalendar={calendar}", "Persistent=true", "AccuracySec=1min"],
                ),
                ("Install", ["WantedBy=timers.target"]),
            ],
            f"{kind} backup schedule (UTC), from the tier's RPO. {install}",
        )
    return dict(sorted(units.items()))

"""Rollback plans: back to an earlier pinned release, and what the database needs.

The decision follows what the releases rolled back over did to the database:

* one of them updated modules (its pin listed ``update_modules``, so its rendered upgrade
  ran ``odoo -u`` against the database): Odoo has no module downgrade, and the older code
  must not run against the migrated schema, so the database is **restored** — from the
  pre-upgrade Backup rendered for the first such release (``<unit>-pre-upgrade-<upgrade
  id>``), or by point-in-time recovery to that release's promotion time (the upgrade ran
  after it, when Argo CD synced the promotion);
* none did (image or configuration only): re-pinning is all; **no database action**.

The rollback pin itself never updates modules (``pins.rollback_pin`` clears them). A
plan is pure data; :func:`apply_rollback` writes the pin (compare-and-swap) and is what
``plantops rollback --apply`` and promotion's own code call — recording it in the ledger
is the caller's (``services.rollback``). Nothing prints.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plantops.release.pins import (
    Pin,
    PinError,
    PinRecord,
    pin_path,
    rollback_pin,
    write_pin,
)


@dataclass(frozen=True)
class RollbackPlan:
    plant: str
    environment: str
    current: PinRecord
    target: PinRecord
    pin: Pin
    """The pin ``--apply`` writes."""
    replaces: Pin
    database: Literal["restore", "none"]
    reason: str
    migrated: tuple[PinRecord, ...] = ()
    """Releases rolled back over that updated modules, oldest first."""
    backup: str | None = None
    """The CloudNativePG pre-upgrade Backup to restore from."""
    target_time: str | None = None
    """Point-in-time recovery target (the first migrating release's promotion)."""
    commands: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "plant": self.plant,
            "environment": self.environment,
            "from": self.current.as_document(),
            "to": self.target.as_document(),
            "database": {
                "action": self.database,
                "reason": self.reason,
                "backup": self.backup,
                "target_time": self.target_time,
                "migrated_by": [r.release for r in self.migrated],
            },
            "pin": self.pin.body() | {"digest": self.pin.digest},
            "commands": list(self.commands),
        }


def plan_rollback(
    current: Pin,
    *,
    unit: str,
    fleet_dir: Path,
    to: str | None = None,
    at: dt.datetime,
    shown_fleet: str | None = None,
) -> RollbackPlan:
    """The rollback of ``current`` (the deployment unit ``unit`` names its objects) to
    release ``to`` (default: the previous pin), as of ``at``."""
    pin = rollback_pin(current, to=to, at=at)
    target = next(h for h in current.history if h.release == pin.current.release)
    index = current.history.index(target)
    over = (current.current, *current.history[:index])  # newest first
    migrated = tuple(reversed([r for r in over if r.migrates]))
    fleet = shown_fleet or str(fleet_dir)
    plant, env = current.plant, current.environment
    quoted = " ".join(shlex.quote(x) for x in ("--fleet", fleet, "--plant", plant, "--env", env))
    apply = f"plantops rollback {quoted} --to {target.release} --apply --as YOU --reason 'WHY'"
    rel_pin = pin_path(Path(), plant, env).as_posix().removeprefix("./")
    commit = (
        f"git -C {shlex.quote(fleet)} add {rel_pin} && git -C {shlex.quote(fleet)} commit -m "
        + shlex.quote(
            f"rollback {plant}/{env}: {current.current.release[:19]} -> {target.release[:19]}"
        )
        + f" && git -C {shlex.quote(fleet)} push"
    )
    if not migrated:
        return RollbackPlan(
            plant,
            env,
            current.current,
            target,
            pin,
            current,
            "none",
            "no release rolled back over updated modules (image or configuration only): "
            "re-pin; the database stays as it is",
            commands=(apply, commit),
        )
    first = migrated[0]
    backup = f"{unit}-pre-upgrade-{first.upgrade_id}"
    when = first.promoted_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    modules = ",".join(sorted({m for r in migrated for m in r.update_modules}))
    return RollbackPlan(
        plant,
        env,
        current.current,
        target,
        pin,
        current,
        "restore",
        f"release(s) {', '.join(r.release[:19] for r in migrated)} updated modules "
        f"({modules}); Odoo cannot downgrade them, so the database is restored to before "
        f"the first update (pre-upgrade Backup {backup}, or point in time {when})",
        migrated=migrated,
        backup=backup,
        target_time=when,
        commands=(
            f"plantops dr plan {quoted} --target-time {when} --out "
            + shlex.quote(f"dr/{plant}-{env}"),
            "# follow the runbook it writes: recover the database (from Backup "
            f"{backup}, or to {when}) before the old release serves it",
            apply,
            commit,
        ),
    )


def apply_rollback(fleet_dir: Path, plan: RollbackPlan, *, force: bool = False) -> Path:
    """Write the plan's pin, if the file still holds the pin the plan was made from."""
    if plan.pin.key != plan.replaces.key:
        raise PinError("rollback plan and pin disagree on the deployment")
    return write_pin(fleet_dir, plan.pin, replaces=plan.replaces, force=force)


__all__ = ["RollbackPlan", "apply_rollback", "plan_rollback"]

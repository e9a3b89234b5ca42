"""The rendered upgrade of a pinned release on a VM plant: ``upgrade.sh`` and the
``odoo-upgrade`` service.

The Compose counterpart of the Argo CD PreSync hooks (render.kubernetes.upgrade), for a
deployment whose release pin changes the image or lists modules to update:

1. **pre-upgrade backup**: a full pgBackRest backup of the plant's stanza, taken inside
   the PostgreSQL container as the backup timers take theirs (render.compose.systemd),
   under the same lock, annotated ``plantops-backup=<unit>-pre-upgrade-<upgrade id>`` —
   the name the rollback plan gives (release.rollback) — so ``pgbackrest info
   --output=json`` finds it. pgBackRest's ``--annotation`` (``backup`` command, 2.41+)
   stores it in the backup's manifest.
2. **old workers stopped** (modules to update only): ``odoo-web`` and ``odoo-cron`` are
   stopped before the update runs, so no worker of the old release writes to a database
   being migrated — a stronger order than on Kubernetes, where the old pods serve during
   the hooks.
3. **module update**, one run per tenant database, in the ``odoo-upgrade`` service: the
   ``odoo-init`` service's container (the pinned image, the same credentials, hardening,
   network and mounts) running render.kubernetes.upgrade.upgrade_script — ``odoo -u
   MODULES --stop-after-init`` unless the database already carries the upgrade id in
   ``ir_config_parameter`` (``plantops.upgrade``), then the marker. The service is in
   Compose's ``upgrade`` profile: a plain ``docker compose up`` never starts it
   (compose-spec ``profiles``: a service with profiles starts only when one is enabled).
4. ``docker compose up -d``: the new release starts.

``upgrade.sh`` runs the steps with ``set -eu``: any failure stops it before the next step,
so nothing is migrated before the backup completed and the new release never starts on a
failed update (the old one stays stopped: a failed update is a human's decision — roll
back with ``plantops rollback`` or fix and promote again).
"""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantops.render.compose.systemd import LOCK
from plantops.render.compose.tls import secret_path
from plantops.render.dbinit import pgpass_script
from plantops.render.kubernetes.upgrade import needs_backup, needs_upgrade, upgrade_script

if TYPE_CHECKING:
    from plantops.plan import Deployment

SERVICE = "odoo-upgrade"
PROFILE = "upgrade"
CONF = "/etc/odoo/odoo-cron.conf"
# The libpq password file odoo-init writes too (its ``PGPASSFILE``): no password in the
# environment of Odoo's children.
_PASSWORD = f"{pgpass_script(secret_path('odoo_db_password'))}\n"


@dataclass(frozen=True)
class VmUpgrade:
    service: dict[str, Any]
    """The ``odoo-upgrade`` Compose service (profile ``upgrade``); empty when no module
    is updated."""
    script: str
    """``upgrade.sh``: the ordered steps."""


def backup_label(dep: Deployment) -> str:
    """``<unit>-pre-upgrade-<upgrade id>``, the name release.rollback gives the backup."""
    assert dep.release is not None
    return f"{dep.unit}-pre-upgrade-{dep.release.upgrade_id}"


def _service(dep: Deployment, init: dict[str, Any]) -> dict[str, Any]:
    assert dep.release is not None
    svc = copy.deepcopy(init)
    script = upgrade_script(CONF, dep.release.upgrade_id, dep.release.update_modules)
    script = script.replace("set -eu\n", "set -eu\n" + _PASSWORD, 1)
    # ``docker compose run odoo-upgrade DB`` appends DB to the entrypoint: it is ``$1``.
    svc["entrypoint"] = ["/bin/sh", "-c", script.replace("$", "$$"), "upgrade"]
    svc["environment"] = {**svc["environment"], "PGAPPNAME": "plantops-upgrade"}
    svc["depends_on"] = {
        **svc["depends_on"],
        "odoo-init": {"condition": "service_completed_successfully"},
    }
    svc["profiles"] = [PROFILE]
    return svc


def _script(dep: Deployment, stanza: str) -> str:
    assert dep.release is not None
    r = dep.release
    backup = (
        f"flock {LOCK} docker compose exec -T --user postgres postgres pgbackrest "
        f"--stanza={shlex.quote(stanza)} --type=full "
        f"--annotation=plantops-backup={shlex.quote(backup_label(dep))} backup"
    )
    lines = [
        "#!/bin/sh",
        f"# The upgrade of {dep.namespace} to release {r.release[:19]} (upgrade {r.upgrade_id}),",
        "# rendered by plantops (render.compose.upgrade). Run it on the VM from this directory",
        "# once the new bundle is in place, instead of `docker compose up -d` (it ends with it).",
        "set -eu",
        'cd "$(dirname "$0")"',
        'echo "plantops: pre-upgrade backup"',
        "docker compose up -d --wait postgres",
        backup,
    ]
    if needs_upgrade(dep):
        modules = ",".join(r.update_modules)
        lines += [
            f'echo "plantops: stopping the old release, then updating {modules}"',
            "docker compose stop odoo-web odoo-cron",
            *(
                f"docker compose --profile {PROFILE} run --rm {SERVICE} {shlex.quote(t.database)}"
                for t in dep.tenants
            ),
        ]
    lines += [
        'echo "plantops: starting the new release"',
        "docker compose up -d",
        f'echo "plantops: {dep.namespace} upgraded ({r.upgrade_id})"',
    ]
    return "\n".join(lines) + "\n"


def render_vm_upgrade(dep: Deployment, init: dict[str, Any], stanza: str) -> VmUpgrade | None:
    """The upgrade of a pinned VM deployment; ``None`` when its pin changes nothing the
    database sees (or it has no pin). ``init`` is its rendered ``odoo-init`` service."""
    if not needs_backup(dep):
        return None
    service = _service(dep, init) if needs_upgrade(dep) else {}
    return VmUpgrade(service, _script(dep, stanza))


__all__ = ["PROFILE", "SERVICE", "VmUpgrade", "backup_label", "render_vm_upgrade"]

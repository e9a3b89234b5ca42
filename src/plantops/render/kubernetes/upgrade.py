"""The rendered upgrade of a pinned release: a pre-upgrade backup, then ``odoo -u``.

Rendered only for a deployment whose release pin changes something the database sees:

* **pre-upgrade backup** (a new image, or modules to update): a CloudNativePG ``Backup``
  of the deployment's cluster through the Barman Cloud plugin, the same method as its
  ``ScheduledBackup``. Argo CD waits for it: its built-in health check for
  ``postgresql.cnpg.io/Backup`` (argo-cd resource_customizations/postgresql.cnpg.io/Backup/
  health.lua) is Healthy at ``status.phase == completed`` and Degraded at ``failed`` /
  ``walArchivingFailing``, which fails the sync before anything else runs.
* **upgrade Job** (modules to update), one per tenant database:
  ``odoo --config=… --database=DB --db_user=OWNER --update=MODULES --stop-after-init``
  (odoo/tools/config.py: ``-u/--update`` "update one or more modules (comma-separated
  list …). Requires -d."; ``--stop-after-init`` exits with the registry's status,
  odoo/cli/server.py main → ``sys.exit(rc)``, rc −1 when preload_registries fails).

Both are Argo CD **PreSync** hooks (wave −2 then −1): Argo CD runs every PreSync hook to
completion before it applies any resource of the Sync phase, so the new Deployments are
applied only after the backup completed and the update succeeded; a failed hook fails the
sync and the old pods keep serving the database as it was (nothing was migrated, or the
migration rolled back its transaction). Unlike the database-initialisation Job (a Sync hook:
on a first sync nothing exists yet), an upgrade only ever runs against a deployment that
is already running, so its namespace, secrets and database exist.

Old-code workers: the web Deployment switches to ``Recreate`` in an upgrade render (cron
always is), so after the hooks no old pod runs next to a new one against the migrated
database. During the hooks the old pods still run; see docs/releases.md.

Argo CD runs PreSync hooks on every sync of the Application, not only the first after a
pin change, so the Job is idempotent: it records the upgrade id in the database
(``ir_config_parameter`` key ``plantops.upgrade``) after a successful update and skips a
database that already carries it. The Backup is taken again on such a sync (cheap with
WAL archiving; one per sync). Names carry the pin's upgrade id, so every promotion has its
own objects; ``BeforeHookCreation`` replaces them only on a re-sync of the same promotion.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.dbinit import _sh_dquote, _sh_quote
from plantops.render.kubernetes.common import BARMAN_PLUGIN, name, pg_cluster_name
from plantops.render.kubernetes.odoo import (
    DB_INIT_CONF,
    DB_INIT_TTL_S,
    HOOK,
    HOOK_DELETE_POLICY,
    render_db_init_job,
)

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

WAVE_PRE_UPGRADE_BACKUP = -2
WAVE_UPGRADE = -1
UPGRADE_DEADLINE_S = 3600  # a module update of a large database takes minutes, rarely an hour
MARKER_KEY = "plantops.upgrade"
_K8S_NAME_MAX = 63


def _short(full: str) -> str:
    if len(full) <= _K8S_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: _K8S_NAME_MAX - 9].rstrip('-')}-{digest}"


def needs_backup(dep: Deployment) -> bool:
    r = dep.release
    return r is not None and (r.migrates or r.previous_image != f"{r.image}@{r.digest}")


def needs_upgrade(dep: Deployment) -> bool:
    return dep.release is not None and dep.release.migrates


def pre_upgrade_backup_name(dep: Deployment) -> str:
    """The CloudNativePG Backup a rollback restores (``<unit>-pre-upgrade-<upgrade id>``)."""
    assert dep.release is not None
    return _short(name(dep, f"pre-upgrade-{dep.release.upgrade_id}"))


def upgrade_job_name(dep: Deployment, plant: str) -> str:
    assert dep.release is not None
    return _short(name(dep, f"upgrade-{plant}-{dep.release.upgrade_id}"))


def _hook(wave_n: int) -> dict[str, str]:
    return {
        HOOK: "PreSync",
        HOOK_DELETE_POLICY: "BeforeHookCreation",
        "argocd.argoproj.io/sync-wave": str(wave_n),
    }


def render_pre_upgrade_backup(dep: Deployment) -> dict[str, Any]:
    assert dep.release is not None
    spec = {
        "cluster": {"name": pg_cluster_name(dep)},
        "method": "plugin",
        "pluginConfiguration": {"name": BARMAN_PLUGIN},
        # The primary: the backup must hold everything written up to the upgrade, with no
        # standby replay lag to wait for.
        "target": "primary",
    }
    return k8s_object(
        dep,
        "postgresql.cnpg.io/v1",
        "Backup",
        pre_upgrade_backup_name(dep),
        "postgres",
        labels={"plantops.io/release": dep.release.release.removeprefix("sha256:")[:12]},
        annotations=_hook(WAVE_PRE_UPGRADE_BACKUP),
        body={"spec": spec},
    )


def upgrade_script(conf: str, upgrade_id: str, modules: tuple[str, ...]) -> str:
    """POSIX sh: update ``modules`` in database ``$1`` unless it already carries
    ``upgrade_id``, then record it. Exits non-zero when Odoo does."""
    psql = "psql --no-psqlrc --no-align --tuples-only --quiet --set=ON_ERROR_STOP=1"
    probe = (
        f"SELECT coalesce((SELECT value FROM ir_config_parameter WHERE key = '{MARKER_KEY}'), '-')"
    )
    mark = (
        "INSERT INTO ir_config_parameter (key, value, create_date, write_date) "
        f"VALUES ('{MARKER_KEY}', '{upgrade_id}', now() at time zone 'UTC', "
        "now() at time zone 'UTC') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
        "write_date = EXCLUDED.write_date"
    )
    odoo = " ".join(
        [
            "odoo",
            f"--config={_sh_quote(conf)}",
            '--database="$db"',
            '--db_user="$PGUSER"',
            f"--update={','.join(modules)}",
            "--stop-after-init",
            "--no-http",
            "--workers=0",
            "--max-cron-threads=0",
        ]
    )
    lines = [
        "set -eu",
        'db="$1"',
        f'done_id="$({psql} --dbname="$db" --command={_sh_dquote(probe)})"',
        f'if [ "$done_id" = {_sh_quote(upgrade_id)} ]; then',
        f'  echo "plantops: $db already upgraded ({upgrade_id}), nothing to do"',
        "  exit 0",
        "fi",
        f'echo "plantops: updating {",".join(modules)} in $db (upgrade {upgrade_id})"',
        odoo,
        f'{psql} --dbname="$db" --command={_sh_dquote(mark)}',
        f'echo "plantops: $db upgraded ({upgrade_id})"',
    ]
    return "\n".join(lines) + "\n"


def render_upgrade_job(dep: Deployment, ctx: RenderContext, tenant_index: int) -> dict[str, Any]:
    """The database-initialisation Job's pod (same image — the pinned one —, owner
    credentials, hardening, mounts, filestore affinity and network access: its pods keep
    the ``db-init`` component for that), running the module update instead."""
    assert dep.release is not None
    t = dep.tenants[tenant_index]
    job = render_db_init_job(dep, ctx, tenant_index)
    meta = job["metadata"]
    meta["name"] = upgrade_job_name(dep, t.plant)
    meta["labels"] = {**meta["labels"], "plantops.io/job": "upgrade"}
    meta["annotations"] = _hook(WAVE_UPGRADE)
    spec = job["spec"]
    template = spec["template"]
    template["metadata"]["labels"] = {
        **template["metadata"]["labels"],
        "plantops.io/job": "upgrade",
    }
    container = template["spec"]["containers"][0]
    container["name"] = "upgrade"
    container["env"] = [
        {"name": "PGAPPNAME", "value": "plantops-upgrade"} if e["name"] == "PGAPPNAME" else e
        for e in container["env"]
    ]
    container["command"] = [
        "/bin/sh",
        "-c",
        upgrade_script(DB_INIT_CONF, dep.release.upgrade_id, dep.release.update_modules),
        "upgrade",
        t.database,
    ]
    # No retry: a failed update is a decision for a human (roll back, or fix and promote
    # again), never a second run over a half-understood state.
    spec["backoffLimit"] = 0
    spec["activeDeadlineSeconds"] = UPGRADE_DEADLINE_S
    spec["ttlSecondsAfterFinished"] = DB_INIT_TTL_S
    return job


def render_upgrade_hooks(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """The PreSync hooks of a pinned deployment's upgrade, in order; empty otherwise."""
    if dep.cluster is None or not needs_backup(dep):
        return []
    objects = [render_pre_upgrade_backup(dep)]
    if needs_upgrade(dep):
        objects += [render_upgrade_job(dep, ctx, i) for i in range(len(dep.tenants))]
    return objects


__all__ = [
    "MARKER_KEY",
    "UPGRADE_DEADLINE_S",
    "needs_backup",
    "needs_upgrade",
    "pre_upgrade_backup_name",
    "render_upgrade_hooks",
    "upgrade_job_name",
    "upgrade_script",
]

"""Use cases behind ``plantops backup …`` and ``plantops dr …``.

Every decision the commands make lives here: which policy applies (the fleet's tier, an
explicit ``--tier``, or the ad hoc one), where the database URL comes from (the option or
``$PLANTOPS_DB_URL_<PLANT>_<ENV>``), which store and catalog are opened, what is reclaimed
first. Each function takes the world it needs as arguments and returns data (records,
results, paths); the CLI parses options, calls one of them and prints. Nothing here prints
or exits.

Heavy modules (SQLAlchemy/Alembic via the catalog, boto3, pyrage, zstandard, psycopg) are
imported inside the functions: ``plantops plan`` must not pay for them at start-up.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantops.errors import UserError, resolve_path
from plantops.outputs import check_output_dir

if TYPE_CHECKING:
    from plantops.backup.fleet import BackupTarget
    from plantops.backup.importer import ImportResult
    from plantops.backup.pg import PgTarget
    from plantops.backup.pgbackrest import BackupInfo, PgBackRest
    from plantops.backup.restore import RestoreResult
    from plantops.backup.scratch import Reclaimed
    from plantops.backup.service import PruneResult

    # Re-exported for the CLI's annotations (it never imports plantops.backup itself).
    from plantops.backup.verify import VerificationResult as VerificationResult  # noqa: PLC0414
    from plantops.render.recovery import DrPlan
    from plantops.store import BackupRecord, Catalog

RESTORE_SERVER_ENV = "PLANTOPS_RESTORE_DB_URL"
PG_SCHEMES = ("postgresql", "postgres")


def utc_today() -> dt.date:
    """The fleet's calendar day: UTC, as ``plan`` and ``classify`` use it."""
    return dt.datetime.now(dt.UTC).date()


# Inputs, checked before anything connects (exit 2 with the option and the fix).


def deployment_db_env(plant: str, env: str) -> str:
    """``PLANTOPS_DB_URL_<PLANT>_<ENV>``: where fleet mode finds a deployment's database."""
    norm = f"{plant}_{env}".upper().replace("-", "_").replace(".", "_")
    return f"PLANTOPS_DB_URL_{norm}"


def no_password_in_argv(url: str | None, option: str) -> None:
    """A password on the command line is readable by every local user (``ps``)."""
    from plantops.backup.pg import url_has_password

    if url and url_has_password(url):
        raise UserError(
            f"{option} carries a password, which every local user can read with `ps`:"
            " drop it from the URL and use libpq's password file (~/.pgpass or $PGPASSFILE),"
            " a service (service=NAME in ~/.pg_service.conf), or the environment variable"
            " instead"
        )


def check_pg_url(url: str, option: str) -> str:
    """A PostgreSQL URL or libpq ``key=value`` string; any other scheme is named as such
    (libpq would call ``mysql://…`` a syntax error)."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme.lower() not in PG_SCHEMES:
        shown = scheme if len(scheme) <= 20 else scheme[:20] + "…"
        raise UserError(
            f"{option}: URL scheme {shown!r} is not supported; plantops backs up PostgreSQL:"
            " use postgresql://USER@HOST:PORT/DBNAME (or postgres://, or libpq"
            " 'host=… dbname=…')"
        )
    return url


def restore_server(url: str | None, environ: Mapping[str, str] = os.environ) -> PgTarget:
    """The server restores and verifications run on: ``--server`` or the environment."""
    from plantops.backup.pg import PgTarget

    no_password_in_argv(url, "--server")
    url = url or environ.get(RESTORE_SERVER_ENV)
    if not url:
        raise UserError("no PostgreSQL server to restore into: pass --server URL")
    return PgTarget.from_url(check_pg_url(url, "--server"), default_db="postgres")


def check_labels(plant: str | None, env: str | None) -> None:
    from plantops.names import check_label

    if plant is not None:
        check_label(plant, "--plant")
    if env is not None:
        check_label(env, "--env")


def check_restore_filestore(path: Path) -> None:
    """``--filestore`` must be a directory to create or (with --force) replace, never a
    file; its parent must exist (an error here is bad input, not a storage failure)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        from plantops.inputs import file_kind

        mode = path.lstat().st_mode
        what = (
            "a symbolic link"
            if stat.S_ISLNK(mode)
            else "a regular file"
            if stat.S_ISREG(mode)
            else file_kind(mode)
        )
        raise UserError(f"--filestore {path} is {what}; name a directory (new, or with --force)")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UserError(f"--filestore {path}: folder {parent} does not exist; create it first")


def check_out_dir(path: Path) -> None:
    """``--out`` is a directory: an existing one, or a new one in an existing folder."""
    check_output_dir(path)
    parent = path.absolute().parent
    if not path.exists() and not parent.is_dir():
        raise UserError(f"--out {path}: folder {parent} does not exist; create it first")


def parse_target_time(value: str) -> dt.datetime:
    """``--target-time``: ISO 8601 with a zone."""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(
            f"--target-time {value!r} is not ISO 8601 (2025-01-31T14:05:00+00:00)"
        ) from exc
    if when.tzinfo is None:
        raise UserError(f"--target-time {value!r} needs a time zone (e.g. +00:00 or Z)")
    return when


def _not_future(when: dt.datetime, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    if when > now:
        raise UserError(
            f"--target-time {when.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ});"
            " recovery can only reach a time already archived: omit --target-time for the"
            " latest point"
        )


# The fleet: one loader for every command (services.open_fleet: parse cache, UTC date).


def open_target(
    fleet: Path, plant: str, env: str, tier: str | None = None, today: dt.date | None = None
) -> BackupTarget:
    """Load, classify and plan the fleet at ``fleet``; return ``plant`` × ``env``."""
    from plantops.backup.fleet import target_for
    from plantops.services import open_fleet

    loaded = open_fleet(fleet, today=today or utc_today())
    return target_for(loaded.fleet, plant, env, tier)


def _catalog(url: str | None) -> closing[Catalog]:
    """The catalog at ``url``, closed when the ``with`` block ends."""
    from plantops.store import open_catalog

    return closing(open_catalog(url))


# Use cases.


def take_backup(
    *,
    fleet: Path | None,
    plant: str | None,
    env: str | None,
    db_url: str | None,
    filestore: Path | None,
    store: str | None,
    fmt: str,
    key: Path | None,
    tier: str | None,
    jobs: int,
    allow_non_odoo: bool,
    state_db: str | None,
    environ: Mapping[str, str] = os.environ,
) -> BackupRecord:
    """``backup run``: the fleet's policy for ``--fleet/--plant/--env`` (database URL from
    ``--db-url`` or the environment), else the ad hoc (or ``--tier``) policy for
    ``--db-url``; reclaims what killed runs left, then backs up into the store."""
    from plantops.backup.archive import BackupRequest, reap_abandoned, run_backup
    from plantops.backup.crypto import load_key
    from plantops.backup.pg import PgTarget
    from plantops.backup.policy import ADHOC_POLICY, BackupPolicy, policy_for_tier
    from plantops.backup.scratch import reclaim
    from plantops.backup.stores import default_store_url, open_store
    from plantops.names import is_label

    check_labels(plant, env)
    if db_url is not None:
        check_pg_url(db_url, "--db-url")
    no_password_in_argv(db_url, "--db-url")
    policy: BackupPolicy
    if fleet is not None:
        if not plant or not env:
            raise UserError("--fleet needs --plant and --env")
        policy = open_target(fleet, plant, env, tier).policy
        url = db_url or environ.get(deployment_db_env(plant, env))
        if not url:
            raise UserError(
                f"no database URL for {plant}/{env}: pass --db-url or set"
                f" ${deployment_db_env(plant, env)}"
            )
        plant_name, env_name = plant, env
    else:
        if not db_url:
            raise UserError("pass --db-url URL (and --filestore PATH), or --fleet/--plant/--env")
        url = db_url
        policy = policy_for_tier(tier) if tier else ADHOC_POLICY
        target0 = PgTarget.from_url(url)
        if plant is None and not is_label(target0.dbname):
            raise UserError(
                f"database name {target0.dbname!r} cannot serve as the plant name (it"
                " becomes a folder of the store): pass --plant CODE"
            )
        plant_name, env_name = plant or target0.dbname, env or "adhoc"
    check_pg_url(url, f"${deployment_db_env(plant_name, env_name)}" if not db_url else "--db-url")
    keys = load_key(key)
    with _catalog(state_db) as catalog:
        reap_abandoned(catalog, open_store)
        reclaim(None)  # spool directories of killed runs (databases: verify/cleanup)
        req = BackupRequest(
            db=PgTarget.from_url(url),
            filestore=filestore,
            plant=plant_name,
            env=env_name,
            policy=policy,
            fmt=fmt,
            jobs=jobs,
            allow_non_odoo=allow_non_odoo,
        )
        return run_backup(req, catalog, open_store(store or default_store_url()), keys)


def import_zip(
    file: Path,
    *,
    fleet: Path | None,
    plant: str | None,
    env: str | None,
    store: str | None,
    key: Path | None,
    tier: str | None,
    max_uncompressed_gib: int,
    max_members: int,
    state_db: str | None,
) -> ImportResult:
    """``backup import``: check an Odoo database-manager zip (series against the fleet's
    deployment with ``--fleet``) and catalogue it as a backup."""
    from plantops.backup.archive import reap_abandoned
    from plantops.backup.crypto import load_key
    from plantops.backup.importer import ImportLimits, ImportRequest, import_backup
    from plantops.backup.policy import ADHOC_POLICY, policy_for_tier
    from plantops.backup.stores import default_store_url, open_store

    series: str | None = None
    target = ""
    if fleet is not None:
        if not plant or not env:
            raise UserError("--fleet needs --plant and --env")
        resolved = open_target(fleet, plant, env, tier)
        policy = resolved.policy
        series = resolved.deployment.series
        target = f"{plant}/{env}"
    else:
        policy = policy_for_tier(tier) if tier else ADHOC_POLICY
    limits = ImportLimits(
        max_members=max_members, max_uncompressed_bytes=max_uncompressed_gib * 1024**3
    )
    keys = load_key(key)
    with _catalog(state_db) as catalog:
        reap_abandoned(catalog, open_store)
        req = ImportRequest(
            path=file,
            plant=plant,
            env=env,
            policy=policy,
            series=series,
            target=target,
            limits=limits,
        )
        return import_backup(req, catalog, open_store(store or default_store_url()), keys)


def list_backups(plant: str | None, env: str | None, state_db: str | None) -> list[BackupRecord]:
    check_labels(plant, env)
    with _catalog(state_db) as catalog:
        return catalog.list_backups(plant=plant, env=env)


def verify_backups(
    backup_id: str | None,
    *,
    due: bool,
    server: str | None,
    key: Path | None,
    jobs: int,
    state_db: str | None,
) -> list[VerificationResult]:
    """``backup verify``: one backup, or every one the tier policies say is due."""
    from plantops.backup import service
    from plantops.backup.crypto import load_key
    from plantops.names import check_backup_id

    if (backup_id is None) == (not due):
        raise UserError("pass a backup ID or --due (not both)")
    if backup_id is not None:
        check_backup_id(backup_id, "BACKUP_ID")
    keys = load_key(key)
    target = restore_server(server)
    with _catalog(state_db) as catalog:
        if backup_id is None:
            return service.verify_due(catalog, target, keys, jobs=jobs)
        return [service.verify(catalog, backup_id, target, keys, jobs=jobs)]


def restore_backup(
    backup_id: str,
    *,
    to_db: str,
    filestore: Path | None,
    neutralize: bool,
    force: bool,
    server: str | None,
    key: Path | None,
    jobs: int,
    state_db: str | None,
    owner: str | None,
) -> RestoreResult:
    from plantops.backup import service
    from plantops.backup.crypto import load_key
    from plantops.names import check_backup_id, check_database

    check_backup_id(backup_id, "BACKUP_ID")
    check_database(to_db, "--to-db")
    if filestore is not None:
        check_restore_filestore(filestore)
    keys = load_key(key)
    target = restore_server(server)
    with _catalog(state_db) as catalog:
        return service.restore(
            catalog,
            backup_id,
            target,
            to_db,
            filestore,
            keys,
            neutralize=neutralize,
            force=force,
            jobs=jobs,
            owner=owner,
        )


def has_catalog(url: str | None, environ: Mapping[str, str] = os.environ) -> bool:
    """A state database to clean: one named (``--state-db``, ``$PLANTOPS_DB``), or the
    default one if it exists (cleanup never creates one)."""
    from plantops.store.catalog import DEFAULT_DB_URL

    if url or environ.get("PLANTOPS_DB"):
        return True
    return Path(DEFAULT_DB_URL.removeprefix("sqlite:///")).is_file()


def cleanup(
    server: str | None, state_db: str | None = None, environ: Mapping[str, str] = os.environ
) -> list[Reclaimed]:
    """``backup cleanup``: spool directories always; databases and roles (and databases
    a killed ``restore --force`` moved aside) with a server; backups whose run died, in
    the state database when there is one."""
    from plantops.backup import service

    target = restore_server(server, environ) if server or environ.get(RESTORE_SERVER_ENV) else None
    if not has_catalog(state_db, environ):
        return service.cleanup(target, None)
    with _catalog(state_db) as catalog:
        return service.cleanup(target, catalog)


def prune(
    *, dry_run: bool, plant: str | None, env: str | None, state_db: str | None
) -> PruneResult:
    from plantops.backup import service

    check_labels(plant, env)
    with _catalog(state_db) as catalog:
        return service.prune(catalog, dry_run=dry_run, plant=plant, env=env)


def recovery_plan(
    fleet: Path,
    plant: str,
    env: str,
    target_time: dt.datetime | None,
    tier: str | None = None,
    *,
    now: dt.datetime | None = None,
    today: dt.date | None = None,
) -> DrPlan:
    """The recovery plan of ``plant`` × ``env``; with ``now``, ``target_time`` is checked
    against it and against the tier's recovery window first."""
    from plantops.backup.drplan import check_target_time, plan_for_target

    target = open_target(fleet, plant, env, tier, today)
    if target_time is not None and now is not None:
        check_target_time(target, target_time, now)
    return plan_for_target(target, target_time)


def dr_plan(
    fleet: Path,
    *,
    plant: str,
    env: str,
    target_time: str | None,
    out_dir: Path,
    tier: str | None,
    now: dt.datetime | None = None,
) -> list[Path]:
    """``dr plan``: the plant's recovery plan, its target time checked against now and
    the tier's recovery window, written into ``out_dir``; returns the files written."""
    from plantops.backup.drplan import write_plan

    when = parse_target_time(target_time) if target_time else None
    check_out_dir(out_dir)
    plan = recovery_plan(fleet, plant, env, when, tier, now=now or dt.datetime.now(dt.UTC))
    return write_plan(plan, out_dir)


# pgBackRest on VM plants.


def pitr_config(fleet: Path, plant: str, env: str) -> tuple[str, str]:
    """``(stanza, pgbackrest.conf)`` of a VM plant, as ``plan`` renders it."""
    from plantops.backup.pgbackrest import fleet_config

    return fleet_config(open_target(fleet, plant, env))


def pgbackrest(config: Path, stanza: str | None, run_as: str) -> PgBackRest:
    from plantops.backup.pgbackrest import PgBackRest, config_stanza

    if not config.is_file():
        raise UserError(f"pgBackRest config {config} does not exist")
    return PgBackRest(resolve_path(config), config_stanza(config, stanza), run_as=run_as)


def pitr_init(config: Path, stanza: str | None, run_as: str) -> str:
    """Create the stanza and check WAL archiving end to end; returns the stanza."""
    br = pgbackrest(config, stanza, run_as)
    br.stanza_create()
    br.check()
    return br.stanza


def pitr_check(config: Path, stanza: str | None, run_as: str) -> str:
    br = pgbackrest(config, stanza, run_as)
    br.check()
    return br.stanza


def pitr_backup(config: Path, stanza: str | None, backup_type: str, run_as: str) -> BackupInfo:
    """Take a pgBackRest backup; returns what ``info`` reports for it."""
    br = pgbackrest(config, stanza, run_as)
    br.backup(backup_type)
    backups = br.backups()
    if not backups:
        raise UserError(f"pgbackrest reports no backup in stanza {br.stanza}")
    return backups[-1]


def pitr_info(config: Path, stanza: str | None, run_as: str) -> list[BackupInfo]:
    return pgbackrest(config, stanza, run_as).backups()


def pitr_restore(
    config: Path,
    *,
    to: Path,
    target_time: str | None,
    latest: bool,
    pause: bool,
    stanza: str | None,
    run_as: str,
) -> str:
    """Restore into a new data directory, to ``target_time`` (checked against now and the
    oldest backup) or the end of the archived WAL; returns the stanza."""
    if (target_time is None) == (not latest):
        raise UserError("pass --target-time TIME or --latest (one of them)")
    if latest and pause:
        raise UserError("--pause needs --target-time: --latest promotes at the end of WAL")
    when = parse_target_time(target_time) if target_time is not None else None
    br = pgbackrest(config, stanza, run_as)
    if when is not None:
        _not_future(when)
        backups = br.backups()
        if not backups:
            raise UserError(f"stanza {br.stanza} has no backup to recover from")
        oldest = min(b.stopped for b in backups)
        if when < oldest:
            raise UserError(
                f"--target-time {when.isoformat()} is before the end of the oldest backup"
                f" of stanza {br.stanza} ({oldest.isoformat()}): the earliest point it can"
                " recover to"
            )
    br.restore_to_time(when, to, promote=not pause)
    return br.stanza


# Results as data for ``--format json`` (the text forms are the CLI's).


def record_as_dict(b: BackupRecord) -> dict[str, Any]:
    last = b.last_verification
    return {
        "id": b.id,
        "plant": b.plant,
        "env": b.env,
        "tier": b.tier,
        "policy": b.policy or None,
        "format": b.format,
        "status": b.status,
        "started_at": b.started_at.isoformat(),
        "finished_at": b.finished_at.isoformat() if b.finished_at else None,
        "size_bytes": b.size_bytes,
        "store": b.store_url,
        "location": b.location,
        "key_id": b.key_id,
        "db_name": b.db_name,
        "pg_version": b.pg_version,
        "odoo_version": b.odoo_version,
        "source": b.source,
        "origin": b.origin or None,
        "objects": [
            {"name": o.name, "size_bytes": o.size_bytes, "sha256": o.sha256} for o in b.objects
        ],
        "verification": None
        if last is None
        else {
            "status": last.status,
            "at": last.started_at.isoformat(),
            "rto_seconds": last.rto_seconds,
            "rpo_seconds": last.rpo_seconds,
        },
        "error": b.error or None,
    }


def prune_as_dict(res: PruneResult) -> dict[str, Any]:
    return {
        "dry_run": res.dry_run,
        "deleted": res.deleted,
        "decisions": [
            {
                "id": d.backup_id,
                "plant": d.plant,
                "env": d.env,
                "keep": d.keep,
                "reasons": list(d.reasons),
            }
            for d in res.decisions
        ],
    }


def pitr_info_as_dicts(backups: list[BackupInfo]) -> list[dict[str, Any]]:
    return [
        {
            "label": b.label,
            "type": b.type,
            "started": b.started.isoformat(),
            "stopped": b.stopped.isoformat(),
            "size_bytes": b.size_bytes,
            "repo_bytes": b.repo_bytes,
        }
        for b in backups
    ]


def reclaimed_as_dicts(done: list[Reclaimed]) -> list[dict[str, Any]]:
    from plantops.backup.scratch import describe

    return describe(done)

"""``plantops backup …`` and ``plantops dr …``: back up, import, list, verify, restore, prune,
plan DR.

Exit codes: 0 ok · 1 verification failed · 2 bad input · 3 database/storage/key failure.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plantops.cli.console import err, fail, out, run_guarded
from plantops.errors import EXIT_FINDINGS, UserError

# Heavy modules (SQLAlchemy/Alembic via the catalog, boto3, pyrage, zstandard, psycopg)
# are imported inside the commands: `plantops plan` must not pay for them at start-up.
if TYPE_CHECKING:
    from plantops.backup import service
    from plantops.backup.pg import PgTarget
    from plantops.backup.policy import BackupPolicy
    from plantops.backup.restore import RestoreResult
    from plantops.backup.verify import VerificationResult
    from plantops.store import BackupRecord, Catalog

backup_app = typer.Typer(help="Back up Odoo databases and filestores, and prove they restore.")
dr_app = typer.Typer(help="Disaster recovery: point-in-time recovery plans and runbooks.")
pitr_app = typer.Typer(
    help="Point-in-time recovery of VM plants with pgBackRest (CloudNativePG does it on"
    " Kubernetes: see `plantops dr plan`)."
)
backup_app.add_typer(pitr_app, name="pitr")


class ArchiveFormat(str, Enum):
    odoo_zip = "odoo-zip"
    native = "native"
    dump = "dump"


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


StateDb = Annotated[
    str | None,
    typer.Option(
        "--state-db", help="State database URL (default $PLANTOPS_DB or .plantops/state.db)."
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key", help="age key file (secret key to restore; recipient enough to back up)."
    ),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="PostgreSQL server to restore into, as a URL (default $PLANTOPS_RESTORE_DB_URL).",
    ),
]
# `--format` is the output format everywhere in the CLI; `--output` is its old spelling,
# still accepted.
OutputOpt = Annotated[
    OutputFormat, typer.Option("--format", "--output", help="Output: text or json.")
]


class RunFormat(str, Enum):
    """``backup run --format``: the output format; the archive formats are the option's
    old meaning (now ``--archive-format``), accepted with a deprecation warning."""

    text = "text"
    json = "json"
    odoo_zip = "odoo-zip"
    native = "native"
    dump = "dump"


def _catalog(url: str | None) -> Catalog:
    from plantops.store import open_catalog

    return open_catalog(url)


def deployment_db_env(plant: str, env: str) -> str:
    """``PLANTOPS_DB_URL_<PLANT>_<ENV>``: where fleet mode finds a deployment's database."""
    norm = f"{plant}_{env}".upper().replace("-", "_").replace(".", "_")
    return f"PLANTOPS_DB_URL_{norm}"


def _no_password_in_argv(url: str | None, option: str) -> None:
    """A password on the command line is readable by every local user (``ps``)."""
    from plantops.backup.pg import url_has_password

    if url and url_has_password(url):
        raise UserError(
            f"{option} carries a password, which every local user can read with `ps`:"
            " drop it from the URL and use libpq's password file (~/.pgpass or $PGPASSFILE),"
            " a service (service=NAME in ~/.pg_service.conf), or the environment variable"
            " instead"
        )


PG_SCHEMES = ("postgresql", "postgres")


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


def _server(url: str | None) -> PgTarget:
    from plantops.backup.pg import PgTarget

    _no_password_in_argv(url, "--server")
    url = url or os.environ.get("PLANTOPS_RESTORE_DB_URL")
    if not url:
        raise UserError("no PostgreSQL server to restore into: pass --server URL")
    return PgTarget.from_url(check_pg_url(url, "--server"), default_db="postgres")


def _labels(plant: str | None, env: str | None) -> None:
    from plantops.names import check_label

    if plant is not None:
        check_label(plant, "--plant")
    if env is not None:
        check_label(env, "--env")


def _record_dict(b: BackupRecord) -> dict[str, Any]:
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


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@backup_app.command("run")
def run_cmd(
    fleet: Annotated[Path | None, typer.Option("--fleet", help="Fleet repository.")] = None,
    plant: Annotated[str | None, typer.Option("--plant", help="Plant code.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Environment (stage).")] = None,
    db_url: Annotated[str | None, typer.Option("--db-url", help="Database URL.")] = None,
    filestore: Annotated[
        Path | None, typer.Option("--filestore", help="<data_dir>/filestore/<db>.")
    ] = None,
    store: Annotated[str | None, typer.Option("--store", help="Store URL or path.")] = None,
    fmt: Annotated[
        ArchiveFormat,
        typer.Option(
            "--archive-format", help="Archive format: odoo-zip (Odoo's own), native or dump."
        ),
    ] = ArchiveFormat.odoo_zip,
    key: KeyOpt = None,
    tier: Annotated[
        str | None,
        typer.Option(
            "--tier",
            help="Tier whose objectives apply: ad hoc (built-in policies), or an explicit"
            " override of the fleet's classification.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Parallel pg_dump jobs.")] = 2,
    allow_non_odoo: Annotated[
        bool,
        typer.Option(
            "--allow-non-odoo",
            help="Back up a database without Odoo's module registry (refused otherwise).",
        ),
    ] = False,
    state_db: StateDb = None,
    run_format: Annotated[
        RunFormat,
        typer.Option(
            "--format",
            "--output",
            help="Output: text or json (odoo-zip, native, dump: deprecated spelling of"
            " --archive-format).",
        ),
    ] = RunFormat.text,
) -> None:
    """Take a backup (``--fleet/--plant/--env`` or ``--db-url/--filestore``)."""
    output = OutputFormat.json if run_format is RunFormat.json else OutputFormat.text
    if run_format not in (RunFormat.text, RunFormat.json):
        err.print(
            f"warning: --format {run_format.value} is deprecated: the archive format is"
            f" --archive-format {run_format.value} (--format is text or json)",
            markup=False,
        )
        fmt = ArchiveFormat(run_format.value)

    def go() -> BackupRecord:
        from plantops.names import is_label

        _labels(plant, env)
        if db_url is not None:
            check_pg_url(db_url, "--db-url")
        from plantops.backup.archive import BackupRequest, reap_abandoned, run_backup
        from plantops.backup.crypto import load_key
        from plantops.backup.pg import PgTarget
        from plantops.backup.policy import ADHOC_POLICY, policy_for_tier
        from plantops.backup.stores import default_store_url, open_store

        _no_password_in_argv(db_url, "--db-url")
        policy: BackupPolicy
        if fleet is not None:
            if not plant or not env:
                raise UserError("--fleet needs --plant and --env")
            from plantops.backup.fleet import resolve_target

            policy = resolve_target(fleet, plant, env, tier).policy
            url = db_url or os.environ.get(deployment_db_env(plant, env))
            if not url:
                raise UserError(
                    f"no database URL for {plant}/{env}: pass --db-url or set"
                    f" ${deployment_db_env(plant, env)}"
                )
            plant_name, env_name = plant, env
        else:
            if not db_url:
                raise UserError(
                    "pass --db-url URL (and --filestore PATH), or --fleet/--plant/--env"
                )
            url = db_url
            policy = policy_for_tier(tier) if tier else ADHOC_POLICY
            target0 = PgTarget.from_url(url)
            if plant is None and not is_label(target0.dbname):
                raise UserError(
                    f"database name {target0.dbname!r} cannot serve as the plant name (it"
                    " becomes a folder of the store): pass --plant CODE"
                )
            plant_name, env_name = plant or target0.dbname, env or "adhoc"
        check_pg_url(
            url, f"${deployment_db_env(plant_name, env_name)}" if not db_url else "--db-url"
        )
        keys = load_key(key)
        catalog = _catalog(state_db)
        try:
            reap_abandoned(catalog, open_store)
            from plantops.backup.scratch import reclaim

            reclaim(None)  # spool directories of killed runs (databases: verify/cleanup)
            req = BackupRequest(
                db=PgTarget.from_url(url),
                filestore=filestore,
                plant=plant_name,
                env=env_name,
                policy=policy,
                fmt=fmt.value,
                jobs=jobs,
                allow_non_odoo=allow_non_odoo,
            )
            return run_backup(req, catalog, open_store(store or default_store_url()), keys)
        finally:
            catalog.close()

    rec = run_guarded(go)
    if output is OutputFormat.json:
        out.print_json(json.dumps(_record_dict(rec)))
    else:
        out.print(
            f"backup {rec.id} complete: {rec.plant}/{rec.env} {rec.format}"
            f" {_size(rec.size_bytes)} in {len(rec.objects)} object(s)"
            f"{' encrypted ' + rec.key_id if rec.key_id else ' NOT encrypted'}"
            f" → {rec.store_url}/{rec.location}",
            markup=False,
        )
    skipped = rec.origin.get("filestore_skipped") or []
    if skipped:
        err.print(
            f"warning: {len(skipped)} filestore entr{'y' if len(skipped) == 1 else 'ies'}"
            " not archived (only regular files inside the filestore are):",
            markup=False,
        )
        for item in skipped[:50]:
            err.print(f"  skipped {item['path']}: {item['reason']}", markup=False)
        if len(skipped) > 50:
            err.print(f"  … and {len(skipped) - 50} more (see --format json)", markup=False)


@backup_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="Zip made by Odoo's database manager.")],
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", help="Fleet repository: tier, objectives and Odoo series check."),
    ] = None,
    plant: Annotated[
        str | None, typer.Option("--plant", help="Plant code (default: the dump's db_name).")
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="Environment (default: adhoc).")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Store URL or path.")] = None,
    key: KeyOpt = None,
    tier: Annotated[
        str | None,
        typer.Option("--tier", help="Tier whose objectives apply (as for `backup run`)."),
    ] = None,
    max_uncompressed_gib: Annotated[
        int,
        typer.Option(
            "--max-uncompressed-gib", min=1, help="Refuse zips expanding beyond this (zip bombs)."
        ),
    ] = 1024,
    max_members: Annotated[
        int, typer.Option("--max-members", min=3, help="Refuse zips with more members.")
    ] = 2_000_000,
    state_db: StateDb = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Check an Odoo database-manager zip and catalogue it as a backup (exit 2 if refused)."""

    def go() -> Any:
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
            from plantops.backup.fleet import resolve_target

            resolved = resolve_target(fleet, plant, env, tier)
            policy = resolved.policy
            series = resolved.deployment.series
            target = f"{plant}/{env}"
        else:
            policy = policy_for_tier(tier) if tier else ADHOC_POLICY
        limits = ImportLimits(
            max_members=max_members, max_uncompressed_bytes=max_uncompressed_gib * 1024**3
        )
        keys = load_key(key)
        catalog = _catalog(state_db)
        try:
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
        finally:
            catalog.close()

    res = run_guarded(go)
    rec = res.record
    if output is OutputFormat.json:
        out.print_json(json.dumps({**_record_dict(rec), "notes": res.notes}))
        return
    m = rec.manifest
    out.print(
        f"imported {file.name} as backup {rec.id}: {rec.plant}/{rec.env} Odoo {m.get('version')}"
        f" (PostgreSQL {rec.pg_version}, {len(m.get('modules') or {})} modules,"
        f" {len(rec.row_counts)} tables, {res.checked.filestore_files} filestore files)"
        f" {_size(rec.size_bytes)}"
        f"{' encrypted ' + rec.key_id if rec.key_id else ''} → {rec.store_url}/{rec.location}",
        markup=False,
    )
    for note in res.notes:
        out.print(f"  note: {note}", markup=False)


@backup_app.command("list")
def list_cmd(
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this stage.")] = None,
    output: OutputOpt = OutputFormat.text,
    state_db: StateDb = None,
) -> None:
    """List backups in the catalog, newest first."""

    def go() -> list[BackupRecord]:
        _labels(plant, env)
        catalog = _catalog(state_db)
        try:
            return catalog.list_backups(plant=plant, env=env)
        finally:
            catalog.close()

    backups = run_guarded(go)
    if output is OutputFormat.json:
        out.print_json(json.dumps([_record_dict(b) for b in backups]))
        return
    if not backups:
        out.print("no backups")
        return
    out.print(
        f"{'ID':12}  {'PLANT/ENV':20}  {'FORMAT':8}  {'SOURCE':8}  {'STATUS':9}  {'STARTED':20}  "
        f"{'SIZE':>10}  VERIFIED"
    )
    for b in backups:
        last = b.last_verification
        ver = "-" if last is None else f"{last.status} {last.started_at:%Y-%m-%d}"
        out.print(
            f"{b.id:12}  {b.plant + '/' + b.env:20}  {b.format:8}  {b.source:8}  {b.status:9}  "
            f"{b.started_at:%Y-%m-%dT%H:%M:%SZ}  {_size(b.size_bytes):>10}  {ver}"
        )


def _print_verification(r: VerificationResult) -> None:
    verdict = "[green]PASSED[/]" if r.passed else "[bold red]FAILED[/]"
    failed = [c.name for c in r.checks if c.status == "failed"]
    not_run = [c.name for c in r.checks if c.status == "not run"]
    why = f" ({', '.join(failed)} failed)" if failed else ""
    why += f" ({', '.join(not_run)} not run)" if not_run else ""
    out.print(f"verification of {r.backup_id}: {verdict}{why}", markup=True)
    for c in r.checks:
        mark = {"ok": "ok  ", "failed": "FAIL", "not run": "SKIP"}[c.status]
        out.print(f"  {mark} {c.name}: {c.detail}", markup=False)

    def obj(label: str, got: float | None, want: float | None, met: bool | None) -> None:
        if got is None:
            out.print(f"  {label}: not measured")
            return
        state = "met" if met else "NOT met"
        out.print(f"  {label}: {got:.1f}s against objective {want:.0f}s ({state})")

    obj("RTO (measured restore time)", r.rto_seconds, r.rto_objective_seconds, r.rto_met)
    obj("RPO (backup age)", r.rpo_seconds, r.rpo_objective_seconds, r.rpo_met)


@backup_app.command("verify")
def verify_cmd(
    backup_id: Annotated[str | None, typer.Argument(help="Backup id (or unique prefix).")] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Verify what the tier policies say is due.")
    ] = False,
    server: ServerOpt = None,
    key: KeyOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Parallel pg_restore jobs.")] = 2,
    state_db: StateDb = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Restore a backup into scratch space and check it (exit 1 when it fails)."""
    if (backup_id is None) == (not due):
        raise fail(UserError("pass a backup ID or --due (not both)"))

    def go() -> list[VerificationResult]:
        from plantops.backup import service
        from plantops.backup.crypto import load_key
        from plantops.names import check_backup_id

        if backup_id is not None:
            check_backup_id(backup_id, "BACKUP_ID")
        keys = load_key(key)
        target = _server(server)
        catalog = _catalog(state_db)
        try:
            if due:
                return service.verify_due(catalog, target, keys, jobs=jobs)
            assert backup_id is not None
            return [service.verify(catalog, backup_id, target, keys, jobs=jobs)]
        finally:
            catalog.close()

    results = run_guarded(go)
    if output is OutputFormat.json:
        out.print_json(json.dumps([r.as_dict() for r in results]))
    else:
        if not results:
            out.print("no backup is due for verification")
        for r in results:
            _print_verification(r)
    if not all(r.passed for r in results):
        raise typer.Exit(EXIT_FINDINGS)


@backup_app.command("restore")
def restore_cmd(
    backup_id: Annotated[str, typer.Argument(help="Backup id (or unique prefix).")],
    to_db: Annotated[str, typer.Option("--to-db", help="Database to create.")],
    filestore: Annotated[Path | None, typer.Option("--filestore", help="Filestore dir.")] = None,
    neutralize: Annotated[
        bool, typer.Option("--neutralize", help="Make a safe non-prod copy.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing db/filestore.")
    ] = False,
    server: ServerOpt = None,
    key: KeyOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Parallel pg_restore jobs.")] = 2,
    state_db: StateDb = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="Role that owns the restored database (default: the --server user).",
        ),
    ] = None,
) -> None:
    """Restore a backup into a new database (and filestore).

    The dump is loaded by a throwaway role without privileges, then handed to --owner.
    """

    def go() -> RestoreResult:
        from plantops.backup import service
        from plantops.backup.crypto import load_key
        from plantops.names import check_backup_id, check_database

        check_backup_id(backup_id, "BACKUP_ID")
        check_database(to_db, "--to-db")
        if filestore is not None:
            _check_restore_filestore(filestore)
        keys = load_key(key)
        target = _server(server)
        catalog = _catalog(state_db)
        try:
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
        finally:
            catalog.close()

    res = run_guarded(go)
    out.print(
        f"restored backup {res.backup_id} into database {res.database}"
        f"{' and filestore ' + res.filestore if res.filestore else ''}"
        f" ({res.files} files) in {res.seconds:.1f}s"
    )
    for line in res.neutralized:
        out.print(f"  neutralized: {line}")


@backup_app.command("cleanup")
def cleanup_cmd(
    server: ServerOpt = None,
    state_db: StateDb = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Reclaim what killed backup, verify and restore runs left behind.

    Spool directories (plantops-dump-*, plantops-restore-*, plantops-verify-fs-*),
    scratch databases, half-built restores and restore roles: every one is recorded
    before it is made; those of runs that are no longer alive are removed. Databases
    and roles need --server (or $PLANTOPS_RESTORE_DB_URL). Backups whose run died are
    marked abandoned in the state database and their objects deleted. Exit 1 when some
    remain.
    """

    def go() -> list[Any]:
        from plantops.backup import service

        target = _server(server) if server or os.environ.get("PLANTOPS_RESTORE_DB_URL") else None
        catalog = _catalog(state_db) if service.has_catalog(state_db) else None
        try:
            return service.cleanup(target, catalog)
        finally:
            if catalog is not None:
                catalog.close()

    done = run_guarded(go)
    if output is OutputFormat.json:
        from plantops.backup.scratch import describe

        out.print_json(json.dumps(describe(done)))
    elif not done:
        out.print("nothing to reclaim")
    for r in done if output is OutputFormat.text else ():
        state = "removed" if r.done else f"left: {r.detail}"
        out.print(f"  {r.kind:8} {r.name}: {state}", markup=False)
    if not all(r.done for r in done):
        raise typer.Exit(EXIT_FINDINGS)


def _check_restore_filestore(path: Path) -> None:
    """``--filestore`` must be a directory to create or (with --force) replace, never a
    file; its parent must exist (an error here is bad input, not a storage failure)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        import stat

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


@backup_app.command("prune")
def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go and why.")] = False,
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this stage.")] = None,
    state_db: StateDb = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Delete backups beyond the tier's grandfather-father-son retention."""

    def go() -> service.PruneResult:
        from plantops.backup import service

        _labels(plant, env)
        catalog = _catalog(state_db)
        try:
            return service.prune(catalog, dry_run=dry_run, plant=plant, env=env)
        finally:
            catalog.close()

    res = run_guarded(go)
    if output is OutputFormat.json:
        out.print_json(
            json.dumps(
                {
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
            )
        )
        return
    verb = "would delete" if res.dry_run else "deleted"
    for d in res.decisions:
        action = "keep  " if d.keep else ("DELETE" if not res.dry_run else "delete")
        out.print(
            f"{action} {d.backup_id} {d.plant}/{d.env} {d.started_at:%Y-%m-%dT%H:%M:%SZ}:"
            f" {'; '.join(d.reasons)}",
            markup=False,
        )
    gone = [d for d in res.decisions if not d.keep]
    out.print(f"{verb} {len(gone)} of {len(res.decisions)} complete backup(s)")


@dr_app.command("plan")
def plan_cmd(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository.")],
    plant: Annotated[str, typer.Option("--plant", help="Plant code.")],
    env: Annotated[str, typer.Option("--env", help="Environment.")] = "prod",
    target_time: TargetTimeOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path("dr"),
    tier: Annotated[
        str | None, typer.Option("--tier", help="Override the fleet's classification.")
    ] = None,
) -> None:
    """Write a recovery runbook and the CloudNativePG recovery Cluster manifest."""

    def go() -> list[Path]:
        from plantops.backup.drplan import plan_for_fleet, write_plan

        when = _parse_time(target_time) if target_time else None
        _check_out_dir(out_dir)
        plan = plan_for_fleet(fleet, plant, env, when, tier, now=dt.datetime.now(dt.UTC))
        return write_plan(plan, out_dir)

    for path in run_guarded(go):
        out.print(f"wrote {path}")


def _check_out_dir(path: Path) -> None:
    """``--out`` is a directory: an existing one, or a new one in an existing folder."""
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path} exists and is not a directory; name a directory")
    parent = path.absolute().parent
    if not path.exists() and not parent.is_dir():
        raise UserError(f"--out {path}: folder {parent} does not exist; create it first")


def _not_future(when: dt.datetime, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    if when > now:
        raise UserError(
            f"--target-time {when.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ});"
            " recovery can only reach a time already archived: omit --target-time for the"
            " latest point"
        )


def _parse_time(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(
            f"--target-time {value!r} is not ISO 8601 (2025-01-31T14:05:00+00:00)"
        ) from exc
    if when.tzinfo is None:
        raise UserError(f"--target-time {value!r} needs a time zone (e.g. +00:00 or Z)")
    return when


def _check_time(value: str | None) -> str | None:
    """Reject a bad --target-time while the command line is parsed (exit 2), so a printed
    runbook command is known good before anything runs."""
    if value is not None:
        try:
            _parse_time(value)
        except UserError as exc:
            raise typer.BadParameter(str(exc)) from exc
    return value


TargetTimeOpt = Annotated[
    str | None,
    typer.Option("--target-time", help="Recover to (ISO 8601, with zone).", callback=_check_time),
]


class PitrType(str, Enum):
    full = "full"
    diff = "diff"
    incr = "incr"


ConfigOpt = Annotated[
    Path, typer.Option("--config", help="pgbackrest.conf (as `backup pitr config` renders it).")
]
StanzaOpt = Annotated[
    str | None, typer.Option("--stanza", help="Stanza (default: the config's only stanza).")
]
RunAsOpt = Annotated[
    str,
    typer.Option("--run-as", help="OS user that owns the data directory (used when root)."),
]


def _pgbackrest(config: Path, stanza: str | None, run_as: str) -> Any:
    from plantops.backup.pgbackrest import PgBackRest, config_stanza

    if not config.is_file():
        raise UserError(f"pgBackRest config {config} does not exist")
    return PgBackRest(config.resolve(), config_stanza(config, stanza), run_as=run_as)


@pitr_app.command("config")
def pitr_config_cmd(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository.")],
    plant: Annotated[str, typer.Option("--plant", help="Plant code (a VM plant).")],
    env: Annotated[str, typer.Option("--env", help="Environment.")] = "prod",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """The pgbackrest.conf of a VM plant, the same file `plantops plan` renders."""

    def go() -> tuple[str, str]:
        from plantops.backup.fleet import resolve_target
        from plantops.backup.pgbackrest import fleet_config

        return fleet_config(resolve_target(fleet, plant, env))

    stanza, text = run_guarded(go)
    if out is None:
        typer.echo(text, nl=False)
        return
    run_guarded(out.write_text, text)
    err.print(f"wrote {out} (stanza {stanza})", markup=False)


@pitr_app.command("init")
def pitr_init_cmd(
    config: ConfigOpt, stanza: StanzaOpt = None, run_as: RunAsOpt = "postgres"
) -> None:
    """Create the stanza in the repository and check WAL archiving end to end."""

    def go() -> str:
        br = _pgbackrest(config, stanza, run_as)
        br.stanza_create()
        br.check()
        return str(br.stanza)

    name = run_guarded(go)
    out.print(f"stanza {name} created; WAL archiving checked")


@pitr_app.command("check")
def pitr_check_cmd(
    config: ConfigOpt, stanza: StanzaOpt = None, run_as: RunAsOpt = "postgres"
) -> None:
    """Check that PostgreSQL archives WAL into the repository."""

    def go() -> str:
        br = _pgbackrest(config, stanza, run_as)
        br.check()
        return str(br.stanza)

    name = run_guarded(go)
    out.print(f"stanza {name}: WAL archiving ok")


@pitr_app.command("backup")
def pitr_backup_cmd(
    config: ConfigOpt,
    stanza: StanzaOpt = None,
    backup_type: Annotated[
        PitrType, typer.Option("--type", help="pgBackRest backup type: full, diff or incr.")
    ] = PitrType.full,
    run_as: RunAsOpt = "postgres",
) -> None:
    """Take a full, differential or incremental pgBackRest backup."""

    def go() -> Any:
        br = _pgbackrest(config, stanza, run_as)
        br.backup(backup_type.value)
        backups = br.backups()
        if not backups:
            raise UserError(f"pgbackrest reports no backup in stanza {br.stanza}")
        return backups[-1]

    b = run_guarded(go)
    out.print(
        f"pgBackRest {b.type} backup {b.label} in {(b.stopped - b.started).total_seconds():.0f}s:"
        f" {_size(b.size_bytes)} database, {_size(b.repo_bytes)} stored"
    )


@pitr_app.command("info")
def pitr_info_cmd(
    config: ConfigOpt,
    stanza: StanzaOpt = None,
    run_as: RunAsOpt = "postgres",
    output: OutputOpt = OutputFormat.text,
) -> None:
    """List the stanza's backups (the earliest point you can recover to is the oldest's end)."""
    backups = run_guarded(lambda: _pgbackrest(config, stanza, run_as).backups())
    rows = [
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
    if output is OutputFormat.json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("no backups")
    for b in backups:
        out.print(f"{b.label:32} {b.type:5} {b.stopped:%Y-%m-%dT%H:%M:%SZ} {_size(b.size_bytes)}")


@pitr_app.command("restore")
def pitr_restore_cmd(
    config: ConfigOpt,
    to: Annotated[
        Path, typer.Option("--to", help="New, empty data directory (never the live one).")
    ],
    target_time: TargetTimeOpt = None,
    latest: Annotated[
        bool,
        typer.Option("--latest", help="Recover to the end of the archived WAL instead of a time."),
    ] = False,
    stanza: StanzaOpt = None,
    pause: Annotated[
        bool, typer.Option("--pause", help="Pause at the target instead of promoting.")
    ] = False,
    run_as: RunAsOpt = "postgres",
) -> None:
    """Restore the stanza into a new data directory, to a point in time (--target-time) or
    to the end of the archived WAL (--latest)."""
    if (target_time is None) == (not latest):
        raise fail(UserError("pass --target-time TIME or --latest (one of them)"))
    if latest and pause:
        raise fail(UserError("--pause needs --target-time: --latest promotes at the end of WAL"))

    def go() -> str:
        when = _parse_time(target_time) if target_time is not None else None
        br = _pgbackrest(config, stanza, run_as)
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
        return str(br.stanza)

    name = run_guarded(go)
    point = target_time or "the end of the archived WAL"
    action = "pauses" if pause else "promotes"
    out.print(
        f"restored stanza {name} into {to}, recovering to {point} ({action} when reached)."
        " Start PostgreSQL on it; while the old server still archives to this stanza, start"
        " it with archive_mode = off"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.add_typer(dr_app, name="dr")

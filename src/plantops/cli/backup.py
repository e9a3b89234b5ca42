"""``plantops backup …`` and ``plantops dr …``: back up, import, list, verify, restore, prune,
plan DR.

Exit codes: 0 ok · 1 verification failed · 2 bad input · 3 database/storage/key failure.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plantops.cli.console import err, fail, out, run_guarded
from plantops.errors import EXIT_FINDINGS, UserError
from plantops.services import backup as use

# Every decision is the use case's (plantops.services.backup); this module parses the
# options, calls one use case and prints. Heavy modules stay out of `plantops plan`'s
# start-up: the use cases import them when they run.
if TYPE_CHECKING:
    from plantops.services.backup import VerificationResult

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
# `--format`/`-f` is the output format in every command of the CLI, and `--output`/`-o`
# a file to write (`schema`, `check`, `ledger export`). The backup commands once spelled
# the output format `--output`: that spelling still works, hidden from the help, with a
# warning naming `--format` (docs/backup.md, tests/backup/test_backup_cli.py).
OutputOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output: text or json.")]
OldOutputOpt = Annotated[
    OutputFormat | None,
    typer.Option("--output", hidden=True, help="Old spelling of --format (deprecated)."),
]


def _output(chosen: OutputFormat, old: OutputFormat | None) -> OutputFormat:
    """``--format``, or the deprecated ``--output`` spelling of it (with a warning)."""
    if old is None:
        return chosen
    err.print(
        f"warning: --output {old.value} is deprecated here: use --format {old.value}"
        " (in plantops, --output names a file to write)",
        markup=False,
    )
    return old


class RunFormat(str, Enum):
    """``backup run --format``: the output format; the archive formats are the option's
    old meaning (now ``--archive-format``), accepted with a deprecation warning."""

    text = "text"
    json = "json"
    odoo_zip = "odoo-zip"
    native = "native"
    dump = "dump"


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
            "-f",
            help="Output: text or json (odoo-zip, native, dump: deprecated spelling of"
            " --archive-format).",
        ),
    ] = RunFormat.text,
    old_output: OldOutputOpt = None,
) -> None:
    """Take a backup (``--fleet/--plant/--env`` or ``--db-url/--filestore``)."""
    output = _output(
        OutputFormat.json if run_format is RunFormat.json else OutputFormat.text, old_output
    )
    if run_format not in (RunFormat.text, RunFormat.json):
        err.print(
            f"warning: --format {run_format.value} is deprecated: the archive format is"
            f" --archive-format {run_format.value} (--format is text or json)",
            markup=False,
        )
        fmt = ArchiveFormat(run_format.value)

    rec = run_guarded(
        use.take_backup,
        fleet=fleet,
        plant=plant,
        env=env,
        db_url=db_url,
        filestore=filestore,
        store=store,
        fmt=fmt.value,
        key=key,
        tier=tier,
        jobs=jobs,
        allow_non_odoo=allow_non_odoo,
        state_db=state_db,
    )
    if output is OutputFormat.json:
        out.print_json(json.dumps(use.record_as_dict(rec)))
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
    old_output: OldOutputOpt = None,
) -> None:
    """Check an Odoo database-manager zip and catalogue it as a backup (exit 2 if refused)."""
    output = _output(output, old_output)

    res = run_guarded(
        use.import_zip,
        file,
        fleet=fleet,
        plant=plant,
        env=env,
        store=store,
        key=key,
        tier=tier,
        max_uncompressed_gib=max_uncompressed_gib,
        max_members=max_members,
        state_db=state_db,
    )
    rec = res.record
    if output is OutputFormat.json:
        out.print_json(json.dumps({**use.record_as_dict(rec), "notes": res.notes}))
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
    old_output: OldOutputOpt = None,
    state_db: StateDb = None,
) -> None:
    """List backups in the catalog, newest first."""
    output = _output(output, old_output)

    backups = run_guarded(use.list_backups, plant, env, state_db)
    if output is OutputFormat.json:
        out.print_json(json.dumps([use.record_as_dict(b) for b in backups]))
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
    old_output: OldOutputOpt = None,
) -> None:
    """Restore a backup into scratch space and check it (exit 1 when it fails)."""
    output = _output(output, old_output)
    if (backup_id is None) == (not due):
        raise fail(UserError("pass a backup ID or --due (not both)"))

    results = run_guarded(
        use.verify_backups, backup_id, due=due, server=server, key=key, jobs=jobs, state_db=state_db
    )
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

    res = run_guarded(
        use.restore_backup,
        backup_id,
        to_db=to_db,
        filestore=filestore,
        neutralize=neutralize,
        force=force,
        server=server,
        key=key,
        jobs=jobs,
        state_db=state_db,
        owner=owner,
    )
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
    old_output: OldOutputOpt = None,
) -> None:
    """Reclaim what killed backup, verify and restore runs left behind.

    Spool directories (plantops-dump-*, plantops-restore-*, plantops-verify-fs-*),
    scratch databases, half-built restores and restore roles: every one is recorded
    before it is made; those of runs that are no longer alive are removed. Databases
    and roles need --server (or $PLANTOPS_RESTORE_DB_URL). Backups whose run died are
    marked abandoned in the state database and their objects deleted. Exit 1 when some
    remain.
    """
    output = _output(output, old_output)

    done = run_guarded(use.cleanup, server, state_db)
    if output is OutputFormat.json:
        out.print_json(json.dumps(use.reclaimed_as_dicts(done)))
    elif not done:
        out.print("nothing to reclaim")
    for r in done if output is OutputFormat.text else ():
        state = "removed" if r.done else f"left: {r.detail}"
        out.print(f"  {r.kind:8} {r.name}: {state}", markup=False)
    if not all(r.done for r in done):
        raise typer.Exit(EXIT_FINDINGS)


@backup_app.command("prune")
def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go and why.")] = False,
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this stage.")] = None,
    state_db: StateDb = None,
    output: OutputOpt = OutputFormat.text,
    old_output: OldOutputOpt = None,
) -> None:
    """Delete backups beyond the tier's grandfather-father-son retention."""
    output = _output(output, old_output)

    res = run_guarded(use.prune, dry_run=dry_run, plant=plant, env=env, state_db=state_db)
    if output is OutputFormat.json:
        out.print_json(json.dumps(use.prune_as_dict(res)))
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

    for path in run_guarded(
        use.dr_plan,
        fleet,
        plant=plant,
        env=env,
        target_time=target_time,
        out_dir=out_dir,
        tier=tier,
    ):
        out.print(f"wrote {path}")


def _check_time(value: str | None) -> str | None:
    """Reject a bad --target-time while the command line is parsed (exit 2), so a printed
    runbook command is known good before anything runs."""
    if value is not None:
        try:
            use.parse_target_time(value)
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

    stanza, text = run_guarded(use.pitr_config, fleet, plant, env)
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

    name = run_guarded(use.pitr_init, config, stanza, run_as)
    out.print(f"stanza {name} created; WAL archiving checked")


@pitr_app.command("check")
def pitr_check_cmd(
    config: ConfigOpt, stanza: StanzaOpt = None, run_as: RunAsOpt = "postgres"
) -> None:
    """Check that PostgreSQL archives WAL into the repository."""

    name = run_guarded(use.pitr_check, config, stanza, run_as)
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

    b = run_guarded(use.pitr_backup, config, stanza, backup_type.value, run_as)
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
    old_output: OldOutputOpt = None,
) -> None:
    """List the stanza's backups (the earliest point you can recover to is the oldest's end)."""
    output = _output(output, old_output)
    backups = run_guarded(use.pitr_info, config, stanza, run_as)
    rows = use.pitr_info_as_dicts(backups)
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

    name = run_guarded(
        use.pitr_restore,
        config,
        to=to,
        target_time=target_time,
        latest=latest,
        pause=pause,
        stanza=stanza,
        run_as=run_as,
    )
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

"""Proving a backup: restore it into a scratch database and filestore, then check it.

Checks: checksums (on every read), restore success, per-table row counts against
those recorded in the backup's snapshot, Odoo sanity, every attachment's file in
the filestore, and physical integrity with ``pg_amcheck``. The scratch database is
always dropped, the scratch filestore always removed — on success and on failure (and,
after a crash, by the next run: ``backup.scratch``).

The restore and every check that reads restored data run as the unprivileged role that
built the scratch database (``restore.ScratchDatabase``); only ``pg_amcheck`` runs as
the admin, and amcheck runs index expressions as the table's owner.

Every check that ran, failed or could not run is listed with its reason, and the verdict
follows from that list alone: passed when no check failed. A check that could not run
(``pg_amcheck`` without the privilege to install amcheck) is listed as not run and does
not by itself fail the backup.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plantops.backup import scratch
from plantops.backup.archive import utcnow
from plantops.backup.crypto import KeyProvider
from plantops.backup.errors import CorruptArchive, DatabaseError, WrongKey
from plantops.backup.pg import (
    PgTarget,
    count_rows,
    find_pg_tool,
    table_exists,
)
from plantops.backup.policy import BackupPolicy
from plantops.backup.restore import (
    BackupReader,
    ScratchDatabase,
    reclaim_leftovers,
    restore_all,
)
from plantops.backup.stores import ObjectStore
from plantops.store import BackupRecord, Catalog

Clock = Callable[[], datetime]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    ran: bool = True  # False: could not run; ``detail`` says why

    @property
    def status(self) -> str:
        if not self.ran:
            return "not run"
        return "ok" if self.ok else "failed"


@dataclass
class VerificationResult:
    backup_id: str
    passed: bool
    checks: list[Check] = field(default_factory=list)
    rto_seconds: float | None = None
    rto_objective_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_objective_seconds: float | None = None
    db_restore_seconds: float | None = None  # the database half alone (cf. pg_restore)
    filestore_restore_seconds: float | None = None
    scratch_db: str = ""
    verification_id: int = 0

    @property
    def rto_met(self) -> bool | None:
        if self.rto_seconds is None or self.rto_objective_seconds is None:
            return None
        return self.rto_seconds <= self.rto_objective_seconds

    @property
    def rpo_met(self) -> bool | None:
        if self.rpo_seconds is None or self.rpo_objective_seconds is None:
            return None
        return self.rpo_seconds <= self.rpo_objective_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "passed": self.passed,
            "rto_seconds": self.rto_seconds,
            "rto_objective_seconds": self.rto_objective_seconds,
            "rto_met": self.rto_met,
            "rpo_seconds": self.rpo_seconds,
            "rpo_objective_seconds": self.rpo_objective_seconds,
            "rpo_met": self.rpo_met,
            "db_restore_seconds": self.db_restore_seconds,
            "filestore_restore_seconds": self.filestore_restore_seconds,
            "checks": {
                c.name: {"ok": c.ok, "ran": c.ran, "status": c.status, "detail": c.detail}
                for c in self.checks
            },
        }


def compare_row_counts(expected: dict[str, Any], actual: dict[str, int]) -> list[str]:
    """Differences between recorded and restored row counts (pure)."""
    problems: list[str] = []
    for table in sorted(set(expected) | set(actual)):
        want = expected.get(table)
        got = actual.get(table)
        if want is None:
            problems.append(f"{table}: not in the backup's snapshot, restored with {got} rows")
        elif got is None:
            problems.append(f"{table}: missing after restore (expected {want} rows)")
        elif int(want) != got:
            problems.append(f"{table}: {got} rows restored, {want} recorded at backup time")
    return problems


def _odoo_checks(target: PgTarget, manifest: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    with target.connect() as conn:
        if not table_exists(conn, "ir_module_module"):
            return [Check("odoo.modules", False, "ir_module_module table missing")]
        row = conn.execute("SELECT state FROM ir_module_module WHERE name = 'base'").fetchone()
        base_ok = row is not None and row[0] == "installed"
        checks.append(
            Check(
                "odoo.base_installed", base_ok, "" if base_ok else f"base state: {row and row[0]}"
            )
        )
        rows = conn.execute(
            "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
        ).fetchall()
        restored = {str(n): (None if v is None else str(v)) for n, v in rows}
        expected = dict(manifest.get("modules") or {})
        diff = sorted(
            f"{m}: {expected.get(m)} → {restored.get(m)}"
            for m in set(expected) | set(restored)
            if expected.get(m) != restored.get(m)
        )
        checks.append(
            Check(
                "odoo.module_versions",
                not diff,
                "; ".join(diff[:10]) if diff else f"{len(restored)} modules match the manifest",
            )
        )
        uuid_row = None
        if table_exists(conn, "ir_config_parameter"):
            uuid_row = conn.execute(
                "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'"
            ).fetchone()
        has_uuid = bool(uuid_row and uuid_row[0])
        checks.append(
            Check("odoo.database_uuid", has_uuid, "" if has_uuid else "database.uuid not set")
        )
    return checks


def _attachment_check(target: PgTarget, filestore: Path) -> Check:
    missing: list[str] = []
    total = 0
    with target.connect(autocommit=False) as conn:
        if not table_exists(conn, "ir_attachment"):
            return Check("filestore.attachments", True, "no ir_attachment table")
        with conn.cursor(name="plantops_attachments") as cur:
            cur.itersize = 5000
            cur.execute(
                "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
            )
            for (fname,) in cur:
                total += 1
                if not (filestore / str(fname)).is_file():
                    missing.append(str(fname))
        conn.rollback()
    if missing:
        return Check(
            "filestore.attachments",
            False,
            f"{len(missing)} of {total} attachment files missing, e.g. {', '.join(missing[:5])}",
        )
    return Check("filestore.attachments", True, f"{total} attachment files present")


AMCHECK_SCHEMA = "plantops_amcheck"


def _amcheck(admin_db: PgTarget, heapallindexed: bool, major: int | None, jobs: int) -> Check:
    """``pg_amcheck`` over the scratch database, as the admin (amcheck is not a trusted
    extension). The extension goes into a schema the admin owns, so nothing the dump put
    in ``public`` is on its script's search path; amcheck itself switches to the table
    owner before it evaluates index expressions (contrib/amcheck/verify_nbtree.c
    bt_index_check_internal: SetUserIdAndSecContext(heaprel->rd_rel->relowner, …))."""
    label = "pg_amcheck --heapallindexed" if heapallindexed else "pg_amcheck"
    try:
        tool = find_pg_tool("pg_amcheck", major)
    except DatabaseError as exc:
        return Check("pg_amcheck", True, f"not run: {exc}", ran=False)
    try:
        with admin_db.connect() as conn:
            row = conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not (row and row[0]):
                return Check(
                    "pg_amcheck",
                    True,
                    "not run: installing the amcheck extension needs a superuser"
                    " --server (CloudNativePG: enableSuperuserAccess, or run verify on a VM)",
                    ran=False,
                )
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {AMCHECK_SCHEMA}")
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {AMCHECK_SCHEMA}")
    except DatabaseError as exc:
        return Check("pg_amcheck", True, f"not run: {exc}", ran=False)
    cmd = [tool, "-d", admin_db.dbname, f"--jobs={max(1, jobs)}"]
    if heapallindexed:
        cmd.append("--heapallindexed")
    proc = subprocess.run(cmd, env=admin_db.env(), capture_output=True, check=False)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()
        return Check("pg_amcheck", False, "; ".join(out[:5]) or f"exit {proc.returncode}")
    return Check("pg_amcheck", True, f"{label}: no corruption")


def _guarded(name: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """Run a check; a database error while checking is that check's failure, listed."""
    try:
        return fn()
    except DatabaseError as exc:
        return [Check(name, False, f"could not check: {exc}")]


def verify_backup(
    record: BackupRecord,
    store: ObjectStore,
    server: PgTarget,
    policy: BackupPolicy,
    catalog: Catalog,
    keys: KeyProvider | None = None,
    *,
    clock: Clock = utcnow,
    jobs: int = 2,
    spool_dir: Path | None = None,
) -> VerificationResult:
    """Restore into scratch space, run every check, record the result in the catalog."""
    reclaim_leftovers(server)
    started = clock()
    result = VerificationResult(
        backup_id=record.id,
        passed=False,
        rto_objective_seconds=policy.rto_minutes * 60.0,
        rpo_objective_seconds=policy.rpo_minutes * 60.0,
        rpo_seconds=(started - record.started_at).total_seconds(),
    )
    scratch_name = f"plantops_verify_{uuid.uuid4().hex[:12]}"
    result.scratch_db = scratch_name
    error = ""
    db: ScratchDatabase | None = None
    scratch_fs, fs_entry = scratch.make_dir("plantops-verify-fs-", spool_dir)
    try:
        reader = BackupReader(record, store, keys)
        t0 = time.monotonic()
        db = ScratchDatabase(server, scratch_name)
        target = db.target
        try:
            timings = restore_all(reader, target, scratch_fs, jobs=jobs, spool_dir=spool_dir)
        except (CorruptArchive, WrongKey, DatabaseError) as exc:
            result.checks.append(Check("restore", False, str(exc)))
            raise
        result.rto_seconds = time.monotonic() - t0
        result.db_restore_seconds = timings.db_seconds
        result.filestore_restore_seconds = timings.filestore_seconds
        result.checks.append(Check("checksums", True, f"{len(record.objects)} objects match"))
        result.checks.append(
            Check(
                "restore",
                True,
                f"database in {timings.db_seconds:.1f}s and {timings.files} filestore files"
                f" in {timings.filestore_seconds:.1f}s, side by side",
            )
        )

        def rows() -> list[Check]:
            with target.connect() as conn:
                counts = count_rows(conn)
            problems = compare_row_counts(record.row_counts, counts)
            detail = "; ".join(problems[:10]) if problems else f"{len(counts)} tables match"
            return [Check("row_counts", not problems, detail)]

        result.checks.extend(_guarded("row_counts", rows))
        result.checks.extend(_guarded("odoo", lambda: _odoo_checks(target, record.manifest)))
        result.checks.extend(
            _guarded("filestore.attachments", lambda: [_attachment_check(target, scratch_fs)])
        )
        major = int(str(record.manifest.get("pg_version", "0")).split(".")[0] or 0) or None
        result.checks.append(
            _amcheck(server.with_db(scratch_name), policy.heapallindexed, major, jobs)
        )
    except (CorruptArchive, WrongKey, DatabaseError) as exc:
        error = str(exc)
        if not any(c.ran and not c.ok for c in result.checks):
            name = "restore" if not any(c.name == "restore" for c in result.checks) else "verify"
            result.checks.append(Check(name, False, error))
    finally:
        if db is not None:
            db.drop()
        scratch.remove_dir(scratch_fs, fs_entry)
    # The verdict is the list's: an error outside every check is listed as "restore".
    result.passed = not any(c.ran and not c.ok for c in result.checks)
    finished = clock()
    result.verification_id = catalog.add_verification(
        record.id,
        status="passed" if result.passed else "failed",
        started_at=started,
        finished_at=finished,
        rto_seconds=result.rto_seconds,
        rto_objective_seconds=result.rto_objective_seconds,
        rpo_seconds=result.rpo_seconds,
        rpo_objective_seconds=result.rpo_objective_seconds,
        checks=result.as_dict()["checks"],
        error=error,
    )
    return result


def due_for_verification(
    backups: list[BackupRecord], policy_of: Callable[[BackupRecord], BackupPolicy], now: datetime
) -> list[BackupRecord]:
    """Which complete backups the tier policies say must be verified now (pure).

    ``every``: each complete backup never verified. ``weekly``: per deployment, the
    newest unverified backup when nothing passed verification in the last 7 days.
    """
    due: list[BackupRecord] = []
    by_deployment: dict[tuple[str, str], list[BackupRecord]] = {}
    for b in backups:
        if b.status == "complete":
            by_deployment.setdefault((b.plant, b.env), []).append(b)
    for _key, items in sorted(by_deployment.items()):
        items.sort(key=lambda b: b.started_at, reverse=True)
        policy = policy_of(items[0])
        if policy.verify == "every":
            due.extend(b for b in items if not b.verifications)
            continue
        recent = any(
            v.status == "passed" and v.started_at >= now - timedelta(days=7)
            for b in items
            for v in b.verifications
        )
        if not recent:
            candidate = next((b for b in items if not b.verifications), None)
            if candidate is not None:
                due.append(candidate)
    return due

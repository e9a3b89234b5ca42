"""Use cases behind ``plantops backup …``: compose catalog, stores and the core.

Returns data; the CLI formats and prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plantops.backup.archive import Clock, reap_abandoned, utcnow
from plantops.backup.crypto import KeyProvider
from plantops.backup.pg import PgTarget
from plantops.backup.policy import BackupPolicy, recorded_policy
from plantops.backup.restore import (
    BackupReader,
    RestoreResult,
    reclaim_leftovers,
    restore_backup,
)
from plantops.backup.retention import RetentionDecision, plan_retention
from plantops.backup.scratch import Reclaimed
from plantops.backup.stores import ObjectStore, open_store
from plantops.backup.verify import VerificationResult, due_for_verification, verify_backup
from plantops.store import BackupRecord, Catalog

PolicyOf = Callable[[BackupRecord], BackupPolicy]


def default_policy_of(record: BackupRecord) -> BackupPolicy:
    """The objectives recorded with the backup (from the fleet at backup time)."""
    return recorded_policy(record.tier, record.policy)


@dataclass(frozen=True)
class PruneResult:
    decisions: list[RetentionDecision]
    deleted: list[str]
    dry_run: bool


def cleanup(
    server: PgTarget | None,
    catalog: Catalog | None,
    *,
    store_of: Callable[[str], ObjectStore] = open_store,
) -> list[Reclaimed]:
    """Reclaim what dead runs left: scratch resources (``backup.scratch``), then backups
    whose process died (their objects deleted, the row marked abandoned)."""
    done = reclaim_leftovers(server)
    if catalog is not None:
        done += [
            Reclaimed("backup", backup_id, True, "run died: objects deleted")
            for backup_id in reap_abandoned(catalog, store_of)
        ]
    return done


def prune(
    catalog: Catalog,
    *,
    dry_run: bool,
    plant: str | None = None,
    env: str | None = None,
    policy_of: PolicyOf = default_policy_of,
    store_of: Callable[[str], ObjectStore] = open_store,
) -> PruneResult:
    """Apply GFS retention; the dry run only reports what would go and why."""
    backups = catalog.list_backups(plant=plant, env=env)
    decisions = plan_retention(backups, policy_of)
    deleted: list[str] = []
    if not dry_run:
        reap_abandoned(catalog, store_of)
        by_id = {b.id: b for b in backups}
        for d in decisions:
            if d.keep:
                continue
            b = by_id[d.backup_id]
            store_of(b.store_url).delete_prefix(b.location)
            catalog.set_status(b.id, "deleted")
            deleted.append(b.id)
    return PruneResult(decisions, deleted, dry_run)


def verify(
    catalog: Catalog,
    backup_id: str,
    server: PgTarget,
    keys: KeyProvider | None,
    *,
    policy_of: PolicyOf = default_policy_of,
    store_of: Callable[[str], ObjectStore] = open_store,
    clock: Clock = utcnow,
    jobs: int = 2,
) -> VerificationResult:
    record = catalog.get(backup_id)
    return verify_backup(
        record,
        store_of(record.store_url),
        server,
        policy_of(record),
        catalog,
        keys,
        clock=clock,
        jobs=jobs,
    )


def verify_due(
    catalog: Catalog,
    server: PgTarget,
    keys: KeyProvider | None,
    *,
    policy_of: PolicyOf = default_policy_of,
    store_of: Callable[[str], ObjectStore] = open_store,
    clock: Clock = utcnow,
    jobs: int = 2,
) -> list[VerificationResult]:
    due = due_for_verification(catalog.list_backups(statuses=["complete"]), policy_of, clock())
    return [
        verify_backup(
            b, store_of(b.store_url), server, policy_of(b), catalog, keys, clock=clock, jobs=jobs
        )
        for b in due
    ]


def restore(
    catalog: Catalog,
    backup_id: str,
    server: PgTarget,
    to_db: str,
    filestore: Path | None,
    keys: KeyProvider | None,
    *,
    neutralize: bool,
    force: bool,
    store_of: Callable[[str], ObjectStore] = open_store,
    jobs: int = 2,
    owner: str | None = None,
) -> RestoreResult:
    record = catalog.get(backup_id)
    reader = BackupReader(record, store_of(record.store_url), keys)
    return restore_backup(
        reader,
        server,
        to_db,
        filestore,
        neutralize_copy=neutralize,
        force=force,
        jobs=jobs,
        owner=owner,
    )

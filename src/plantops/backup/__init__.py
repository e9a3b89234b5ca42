"""Backup and disaster recovery: archive formats, stores, encryption, retention,
verification by restoring, restore with neutralization, import of Odoo-made backups and
pgBackRest PITR.

Orchestrators take the world (catalog, store, PostgreSQL, clock) as arguments;
nothing here prints or exits — the CLI does.
"""

from __future__ import annotations

from plantops.backup.archive import FORMATS, BackupRequest, reap_abandoned, run_backup
from plantops.backup.crypto import AgeKeys, KeyProvider, load_key
from plantops.backup.importer import ImportLimits, ImportRefused, ImportRequest, import_backup
from plantops.backup.policy import DEFAULT_POLICIES, BackupPolicy, policy_for_tier
from plantops.backup.restore import (
    BackupReader,
    RestoreResult,
    RestoreTimings,
    restore_all,
    restore_backup,
)
from plantops.backup.retention import RetentionDecision, plan_retention
from plantops.backup.stores import LocalStore, ObjectStore, S3Store, open_store
from plantops.backup.verify import VerificationResult, due_for_verification, verify_backup

__all__ = [
    "DEFAULT_POLICIES",
    "FORMATS",
    "AgeKeys",
    "BackupPolicy",
    "BackupReader",
    "BackupRequest",
    "ImportLimits",
    "ImportRefused",
    "ImportRequest",
    "KeyProvider",
    "LocalStore",
    "ObjectStore",
    "RestoreResult",
    "RestoreTimings",
    "RetentionDecision",
    "S3Store",
    "VerificationResult",
    "due_for_verification",
    "import_backup",
    "load_key",
    "open_store",
    "plan_retention",
    "policy_for_tier",
    "reap_abandoned",
    "restore_all",
    "restore_backup",
    "run_backup",
    "verify_backup",
]

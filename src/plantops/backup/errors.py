"""Backup-specific errors, each a precise subclass of the plantops hierarchy."""

from __future__ import annotations

from plantops.errors import GateFailed, InfrastructureError, UserError


class StoreError(InfrastructureError):
    """The object store failed (unreachable, denied, full, missing object)."""


class CorruptArchive(InfrastructureError):
    """An object's bytes do not match the checksum recorded at backup time."""


class WrongKey(InfrastructureError):
    """The key given cannot decrypt this backup."""


class DatabaseError(InfrastructureError):
    """PostgreSQL or one of its tools failed."""


class TargetExists(UserError):
    """A restore would overwrite an existing database or filestore without --force."""


class VerificationFailed(GateFailed):
    """A restore test said no; the verification record holds the failed checks."""


__all__ = [
    "CorruptArchive",
    "DatabaseError",
    "StoreError",
    "TargetExists",
    "VerificationFailed",
    "WrongKey",
]

"""Releases: the immutable release lock and the per-deployment release pins (stages, gates,
promotion and the ledger later).

Orchestrator layer: reads addons paths, runs ``git`` for source commits; never prints.
"""

from __future__ import annotations

from plantops.release.lock import (
    GitSource,
    ImageRef,
    Lock,
    LockError,
    build_lock_content,
    git_source,
    lock_id,
    parse_image_ref,
    read_lock,
    render_lock,
)
from plantops.release.pins import (
    Pin,
    PinConflict,
    PinError,
    PinRecord,
    modules_to_update,
    next_pin,
    read_pin,
    read_pins,
    record_from_lock,
    rollback_pin,
    write_pin,
)

__all__ = [
    "GitSource",
    "ImageRef",
    "Lock",
    "LockError",
    "Pin",
    "PinConflict",
    "PinError",
    "PinRecord",
    "build_lock_content",
    "git_source",
    "lock_id",
    "modules_to_update",
    "next_pin",
    "parse_image_ref",
    "read_lock",
    "read_pin",
    "read_pins",
    "record_from_lock",
    "render_lock",
    "rollback_pin",
    "write_pin",
]

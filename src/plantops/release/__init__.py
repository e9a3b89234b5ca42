"""Releases: the immutable release lock (stages, gates, promotion and the ledger later).

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

__all__ = [
    "GitSource",
    "ImageRef",
    "Lock",
    "LockError",
    "build_lock_content",
    "git_source",
    "lock_id",
    "parse_image_ref",
    "read_lock",
    "render_lock",
]

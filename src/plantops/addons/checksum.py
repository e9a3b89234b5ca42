"""Per-addon checksums: which modules changed between two releases.

The walk follows click-odoo-update (click_odoo_contrib/_addon_hash.py ``addon_hash``, its
``DEFAULT_EXCLUDE_PATTERNS`` in update.py): files in sorted order, each relative path
hashed before its content so an empty or renamed file changes the sum, excluding compiled
Python, ``.pot`` templates, ``static/*`` and ``tests/*`` — files that change nothing an
``odoo -u`` would write to the database. plantops uses SHA-256 (click-odoo-update uses
SHA-1), so the sums are plantops' own, not comparable with its database parameter.

Hostile trees: a symbolic link is hashed as its link text (never followed, so a link out
of the addon reads nothing outside); a FIFO, socket or device is refused; the number of
files and bytes is bounded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path

from plantops.inputs import BadInput, file_kind

EXCLUDE_PATTERNS = ("*.pyc", "*.pyo", "i18n/*.pot", "i18n_extra/*.pot", "static/*", "tests/*")
MAX_FILES = 50_000
MAX_BYTES = 2 * 1024 * 1024 * 1024


def _walk(top: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        rel = "" if rel == "." else rel
        # os.walk lists a link to a directory among dirnames but never enters it
        # (followlinks=False): hash the link itself.
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in sorted([*filenames, *links]):
            path = Path(rel, name).as_posix()
            if not any(fnmatch(path, p) for p in EXCLUDE_PATTERNS):
                yield path


def addon_checksum(top: Path, shown: str) -> str:
    """``sha256:<hex>`` of an addon directory's files (see the module docstring)."""
    digest = hashlib.sha256()
    files = 0
    size = 0
    for rel in _walk(top):
        files += 1
        if files > MAX_FILES:
            raise BadInput(shown, 1, 1, f"addon holds over {MAX_FILES:,} files")
        path = top / rel
        digest.update(rel.encode("utf-8", "surrogateescape"))
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            digest.update(b"symlink:" + os.fsencode(path.readlink()))
            continue
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"{shown}/{rel}", 1, 1, f"is {file_kind(info.st_mode)} inside an addon")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, 1024 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise BadInput(shown, 1, 1, f"addon files exceed {MAX_BYTES:,} bytes")
                digest.update(chunk)
        finally:
            os.close(fd)
    return f"sha256:{digest.hexdigest()}"


def changed_addons(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Addons of ``new`` whose checksum differs from ``old`` or that ``old`` lacks: the
    modules a migration must update (``odoo -u``)."""
    return sorted(name for name, digest in new.items() if old.get(name) != digest)


__all__ = ["EXCLUDE_PATTERNS", "addon_checksum", "changed_addons"]

"""Where plantops keeps its caches: never needed for correctness, only for speed."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def cache_base() -> Path:
    """``$XDG_CACHE_HOME/plantops``, else ``~/.cache/plantops``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "plantops"


def user_cache_dir(kind: str, env: str) -> Path | None:
    """``$<env>`` if set (empty disables the cache: ``None``), else ``cache_base()/<kind>``."""
    explicit = os.environ.get(env)
    if explicit is not None:
        return Path(explicit) if explicit else None
    return cache_base() / kind


def store_atomically(path: Path, data: bytes) -> None:
    """Write a cache entry atomically (a crash never leaves half of one); a read-only or
    full cache directory only costs speed, so write errors are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        pass


# A sealed cache file: this header, the SHA-256 of the payload, the payload. The rename in
# ``store_atomically`` already means a killed writer leaves the old file or the new one;
# the digest also refuses a file damaged afterwards (truncated, a lost write-back after a
# power cut, bytes flipped, another tool's file under the name) before a byte of it is
# unpickled.
SEAL = b"plantops-cache-1\n"
_DIGEST = 32


def seal(data: bytes) -> bytes:
    return SEAL + hashlib.sha256(data).digest() + data


def unseal(blob: bytes) -> bytes | None:
    """The payload of a sealed file, or None when it is not one intact."""
    if not blob.startswith(SEAL) or len(blob) < len(SEAL) + _DIGEST:
        return None
    digest, data = blob[len(SEAL) : len(SEAL) + _DIGEST], blob[len(SEAL) + _DIGEST :]
    return data if hashlib.sha256(data).digest() == digest else None


def store_sealed(path: Path, data: bytes) -> None:
    """``store_atomically`` of ``seal(data)``."""
    store_atomically(path, seal(data))


def load_sealed(path: Path) -> bytes | None:
    """The payload ``store_sealed`` wrote at ``path``; None if missing, unreadable or
    not intact."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    return unseal(blob)


def is_private_file(path: Path) -> bool:
    """A regular file owned by this user, it and its folder writable by nobody else: a
    cache another user could have written is never unpickled."""
    try:
        for st in (path.parent.stat(), path.lstat()):
            if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False

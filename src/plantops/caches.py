"""Where plantops keeps its caches: never needed for correctness, only for speed."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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


def store_atomically(path: Path, data: bytes) -> bool:
    """Write a cache entry atomically (a crash never leaves half of one); a read-only or
    full cache directory only costs speed, so write errors are ignored (False)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        return False
    return True


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


def store_sealed(path: Path, data: bytes) -> bool:
    """``store_atomically`` of ``seal(data)``; False when it was not written."""
    return store_atomically(path, seal(data))


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


# --- the process memo (``plantops.services.warm``) -----------------------------------
#
# Off unless a long-lived process (the plan server) turns it on: then what a run decoded
# from plantops' own cache files, and the results of pure steps keyed by the hash of
# their inputs, stay in this process for the next run. The normal CLI never enables it,
# so it pays one boolean test per call site.

Signature = tuple[int, int, int, int, int]
"""A file's (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)."""


class _Warm:
    enabled = False
    files: dict[str, tuple[Signature, object]] = {}  # noqa: RUF012
    tables: dict[str, WarmTable] = {}  # noqa: RUF012


def warm_enabled() -> bool:
    """Whether the process memo is on (``plantops.services.warm.enable``)."""
    return _Warm.enabled


def set_warm(on: bool) -> None:
    """Turn the process memo on or off; off forgets everything it held."""
    _Warm.enabled = on
    if not on:
        _Warm.files = {}
        _Warm.tables = {}


def signature_of(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_signature(path: Path) -> Signature | None:
    """The signature of the file at ``path`` (links followed); None if it cannot be stat'ed."""
    try:
        return signature_of(path.stat())
    except OSError:
        return None


def load_remembered(path: Path, decode: Callable[[Path], T | None]) -> T | None:
    """``decode(path)``, or — with the memo on — the object it gave for the file with the
    same signature. Only for plantops' cache files, which are replaced by an atomic rename
    (a rewrite is a new inode). The object is shared between runs: callers must not
    mutate it (copy what they change)."""
    if not _Warm.enabled:
        return decode(path)
    sig = file_signature(path)
    key = str(path)
    found = _Warm.files.get(key)
    if sig is not None and found is not None and found[0] == sig:
        return found[1]  # type: ignore[return-value]
    obj = decode(path)
    # the signature read before the decode: a file replaced meanwhile is missed next time
    if sig is not None and obj is not None:
        _Warm.files[key] = (sig, obj)
    else:
        _Warm.files.pop(key, None)
    return obj


def remember_written(path: Path, before: Signature | None, written: bool, obj: object) -> None:
    """After a run wrote ``obj``'s encoding to ``path`` (``written``: the write succeeded;
    ``before``: the signature of the file it replaced), keep ``obj`` for the next load.
    The caller must not mutate ``obj`` afterwards."""
    if not _Warm.enabled:
        return
    key = str(path)
    sig = file_signature(path)
    if not written or sig is None or sig == before:
        _Warm.files.pop(key, None)  # not written, or not by us: read it again
        return
    _Warm.files[key] = (sig, obj)


def store_remembered(path: Path, payload: bytes, obj: object) -> bool:
    """``store_sealed(path, payload)``, ``payload`` being ``obj``'s encoding, and — with
    the memo on — ``obj`` kept for the next :func:`load_remembered` of ``path`` (see
    :func:`remember_written`); False when it was not written."""
    before = file_signature(path) if _Warm.enabled else None
    written = store_sealed(path, payload)
    remember_written(path, before, written, obj)
    return written


def forget_file(path: Path) -> None:
    """Drop what is kept for ``path`` (it was removed or changed by other means)."""
    _Warm.files.pop(str(path), None)


class WarmTable:
    """Results by input key; entries not used by the last run are dropped at the next."""

    def __init__(self) -> None:
        self.used: dict[Hashable, Any] = {}
        self.old: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any | None:
        found = self.used.get(key)
        if found is None:
            found = self.old.get(key)
            if found is not None:
                self.used[key] = found
        return found

    def put(self, key: Hashable, value: Any) -> None:
        self.used[key] = value

    def rotate(self) -> None:
        self.old, self.used = self.used, {}


def warm_table(name: str) -> WarmTable | None:
    """The process memo table ``name`` (None when the memo is off)."""
    if not _Warm.enabled:
        return None
    table = _Warm.tables.get(name)
    if table is None:
        table = _Warm.tables[name] = WarmTable()
    return table


def warm_new_run() -> None:
    """Start a run: what the previous run did not use is dropped from every table."""
    for table in _Warm.tables.values():
        table.rotate()


RACY_SECONDS = 2.0
"""A source file modified within this long before its signature was recorded may change
again without a visible change of mtime (its granularity): it is read again (Git's
racily-clean rule)."""


def settled(sig: Signature, recorded_at_ns: int) -> bool:
    """Whether a file of signature ``sig`` recorded at ``recorded_at_ns`` can be trusted
    by its signature alone."""
    return sig[3] < recorded_at_ns - int(RACY_SECONDS * 1e9)


def now_ns() -> int:
    return time.time_ns()

"""Where plantops keeps its caches: never needed for correctness, only for speed."""

from __future__ import annotations

import os
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

"""A cache of parsed fleet files, keyed by the SHA-256 of their text.

Parsing YAML is most of what loading a large fleet costs, and between two runs
almost every plant file is unchanged. The parse of a file is a pure function of its
text (and of the parser), so a file whose digest was parsed before is taken from the
cache; everything after parsing — validation, cross-file checks, error positions from
the text — runs as always. One pickle per fleet directory, written atomically, only
when it changed; a missing, stale or damaged cache only costs speed.

Trust: like ``.pyc`` files, the cache lives in the user's own cache directory
(``$PLANTOPS_SPEC_CACHE``, empty to disable; else ``$XDG_CACHE_HOME/plantops/specs``).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import yaml

from plantops.caches import store_atomically, user_cache_dir

# Bump when the parse of a text changes (loader or plain-data conversion).
PARSE_VERSION = 1


def spec_cache_dir() -> Path | None:
    return user_cache_dir("specs", "PLANTOPS_SPEC_CACHE")


class ParseCache:
    """Parsed documents of one fleet directory, by text digest."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tag = f"{PARSE_VERSION}|{yaml.__version__}"
        self._old: dict[str, Any] = {}
        self._used: dict[str, Any] = {}
        self._dirty = False
        if path is None:
            return
        try:
            with path.open("rb") as fh:
                data = pickle.load(fh)  # the user's own cache, trusted like .pyc
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            return
        if isinstance(data, dict) and data.get("tag") == self._tag:
            entries = data.get("entries")
            self._old = entries if isinstance(entries, dict) else {}

    @classmethod
    def for_fleet(cls, root: Path) -> ParseCache:
        base = spec_cache_dir()
        if base is None:
            return cls(None)
        key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:24]
        return cls(base / f"{key}.pickle")

    def get(self, digest: str) -> Any | None:
        found = self._old.get(digest)
        if found is not None:
            self._used[digest] = found
        return found

    def put(self, digest: str, data: Any) -> None:
        self._used[digest] = data
        self._dirty = True

    def save(self) -> None:
        """Keep what this load used (so deleted and edited files drop out)."""
        if self.path is None or not (self._dirty or self._used.keys() != self._old.keys()):
            return
        data = pickle.dumps({"tag": self._tag, "entries": self._used}, protocol=5)
        store_atomically(self.path, data)

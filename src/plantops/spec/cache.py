"""A cache of parsed fleet files, keyed by the SHA-256 of their text.

Parsing YAML is most of what loading a large fleet costs, and between two runs
almost every plant file is unchanged. The parse of a file is a pure function of its
text (and of the parser), so a file whose digest was parsed before is taken from the
cache; everything after parsing — validation, cross-file checks, error positions from
the text — runs as always.

Beside each parse it keeps, once a run asked for them, the file's key and value
positions (``SourceMap``'s index, a pure function of the text too): a re-plan of a large
fleet locates its sizing warnings in fleet.yaml on every run, and indexing a
2,000-line fleet.yaml again each time cost ~0.1 s of a one-plant re-plan.

On disk: one sealed pickle per fleet directory (``plantops.caches.store_sealed``: written
atomically, refused unless its digest matches), and a small *delta* file beside it with
what later runs parsed. A one-plant re-plan writes the delta (one entry), not the whole
fleet's parses again; the base is rewritten once the delta and the entries no longer
used outgrow ``DELTA_SHARE`` of it. A missing, stale, damaged or foreign file (another
plantops or PyYAML version: its tag) only costs speed: it is ignored.

Trust: like ``.pyc`` files, the cache lives in the user's own cache directory
(``$PLANTOPS_SPEC_CACHE``, empty to disable; else ``$XDG_CACHE_HOME/plantops/specs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import secrets
from pathlib import Path
from typing import Any

import yaml

from plantops.caches import (
    load_remembered,
    load_sealed,
    store_remembered,
    user_cache_dir,
)

# Bump when the parse of a text changes (loader or plain-data conversion) or the layout
# of the file does (2: positions beside the parses; 3: sealed base + delta files).
PARSE_VERSION = 3

# The base is rewritten when the delta's entries and the base's unused ones together
# pass this share of the base.
DELTA_SHARE = 0.2

Positions = tuple[dict[Any, tuple[int, int]], dict[Any, tuple[int, int]]]
"""A file's (key positions, value positions), as ``spec.loader.SourceMap`` holds them."""


def spec_cache_dir() -> Path | None:
    return user_cache_dir("specs", "PLANTOPS_SPEC_CACHE")


def _decode(path: Path) -> Any:
    data = load_sealed(path)
    if data is None:
        return None
    try:
        return pickle.loads(data)  # the user's own cache, trusted like .pyc, and sealed
    except Exception:
        return None


def _store(path: Path, data: dict[str, Any]) -> None:
    store_remembered(path, pickle.dumps(data, protocol=5), data)


def _read(path: Path, tag: str) -> dict[str, Any] | None:
    """A cache file's mapping, if it is intact and of this ``tag`` (shared with later runs
    by the process memo: only read, never mutated)."""
    found = load_remembered(path, _decode)
    if (
        not isinstance(found, dict)
        or found.get("tag") != tag
        or not isinstance(found.get("token"), str)
        or not isinstance(found.get("entries"), dict)
        or not isinstance(found.get("positions"), dict)
    ):
        return None
    return found


def _valid_positions(found: object) -> bool:
    return (
        isinstance(found, tuple)
        and len(found) == 2
        and isinstance(found[0], dict)
        and isinstance(found[1], dict)
    )


class ParseCache:
    """Parsed documents of one fleet directory, by text digest."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tag = f"{PARSE_VERSION}|{yaml.__version__}"
        self._token = ""  # the base's; "" when there is no usable base
        self._base_keys: frozenset[str] = frozenset()
        self._base_positions: frozenset[str] = frozenset()
        self._old: dict[str, Any] = {}
        self._used: dict[str, Any] = {}
        self._pos_old: dict[str, Positions] = {}
        self._pos_new: dict[str, Positions] = {}
        self._stored: tuple[frozenset[str], frozenset[str]] | None = None
        self._saved = False
        if path is None:
            return
        base = _read(path, self._tag)
        if base is None:
            return
        self._token = base["token"]
        self._old, self._pos_old = dict(base["entries"]), dict(base["positions"])
        self._base_keys = frozenset(self._old)
        self._base_positions = frozenset(self._pos_old)
        delta = _read(self.delta_path, self._tag)
        if delta is not None and delta["token"] == self._token:
            self._old.update(delta["entries"])
            self._pos_old.update(delta["positions"])
            # what the delta on disk holds: saving the same again is skipped
            self._stored = (frozenset(delta["entries"]), frozenset(delta["positions"]))
        else:
            self._stored = (frozenset(), frozenset())

    @property
    def delta_path(self) -> Path:
        assert self.path is not None
        return self.path.with_suffix(".delta")

    @classmethod
    def for_fleet(cls, root: Path) -> ParseCache:
        base = spec_cache_dir()
        if base is None:
            return cls(None)
        key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:24]
        return cls(base / f"{key}.pickle")

    def get(self, digest: str) -> Any | None:
        found = self._old.get(digest)
        if not isinstance(found, dict):
            return None  # only mappings are ever stored (the loader refuses the rest)
        self._used[digest] = found
        return found

    def put(self, digest: str, data: Any) -> None:
        self._used[digest] = data

    def positions(self, digest: str) -> Positions | None:
        """The positions indexed for the text of ``digest``, if a run stored them."""
        found = self._pos_new.get(digest) or self._pos_old.get(digest)
        return found if _valid_positions(found) else None

    def put_positions(self, digest: str, positions: Positions) -> None:
        """Keep the positions of a parsed text (stored now if the load was saved already)."""
        if digest not in self._used:
            return  # not a file of this load: nothing to keep it beside
        self._pos_new[digest] = positions
        if self._saved:
            self.save()

    def save(self) -> None:
        """Keep what this load used (so deleted and edited files drop out): in the delta
        while it stays small against the base, else as a new base."""
        self._saved = True
        if self.path is None:
            return
        known = {**self._pos_old, **self._pos_new}
        positions = {d: known[d] for d in self._used if d in known}
        new = {d: v for d, v in self._used.items() if d not in self._base_keys}
        new_positions = {d: p for d, p in positions.items() if d not in self._base_positions}
        unused = len(self._base_keys) - (len(self._used) - len(new))
        if self._token and len(new) + len(new_positions) + unused <= DELTA_SHARE * len(
            self._base_keys
        ):
            stored = (frozenset(new), frozenset(new_positions))
            if stored == self._stored:
                return  # the delta on disk holds exactly this already
            data = {
                "tag": self._tag,
                "token": self._token,
                "entries": new,
                "positions": new_positions,
            }
            _store(self.delta_path, data)
            self._stored = stored
            return
        token = secrets.token_hex(8)
        data = {
            "tag": self._tag,
            "token": token,
            "entries": dict(self._used),
            "positions": positions,
        }
        _store(self.path, data)
        with contextlib.suppress(OSError):
            self.delta_path.unlink()
        self._token = token
        self._base_keys = frozenset(self._used)
        self._base_positions = frozenset(positions)
        self._stored = (frozenset(), frozenset())

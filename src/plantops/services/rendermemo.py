"""Verdicts and emitted text of rendered objects, kept between plans of one fleet.

A re-plan after a one-plant change renders the fleet-wide Argo CD files again (each
AppProject lists its plants' namespaces) and the changed plant's deployments, and the
schema gate validates every object it renders. Almost all of those objects are the
same as the previous run's, and an object's verdict — and, for a fleet-wide file, its
emitted YAML — is a pure function of the object and of the code and schemas that judge
and emit it. So an object is keyed by the SHA-256 of its pickle (exact: types, and key
order, which the emitter follows, included; equal objects shared differently only miss)
and the *scope* of what judged it (``SchemaValidator
.verdict_scope``, which covers the schema rewrites, kubernetes-validate's version and
the bundled CRD bytes, with ``renderer_fingerprint`` for the emitter); only objects with
no schema finding are kept. A kept object is neither validated nor emitted again, and a
kind all of whose objects were kept is never compiled. Anything not kept is validated
as always, so findings are exactly those of a cold plan.

One sealed pickle per fleet directory under ``$PLANTOPS_RENDER_CACHE`` (empty disables
it; else ``$XDG_CACHE_HOME/plantops/render``), written atomically and holding only the
entries the last run used; a missing, damaged, foreign or stale file only costs speed.
Read only when this user owns it and neither it nor its folder is writable by others.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plantops import __version__
from plantops.caches import (
    is_private_file,
    load_remembered,
    load_sealed,
    store_remembered,
    user_cache_dir,
)
from plantops.errors import resolve_path

RENDER_CACHE_ENV = "PLANTOPS_RENDER_CACHE"
# Bump when the layout of the file or the meaning of a key changes.
MEMO_VERSION = 1

VALIDATED = ""
"""The value of an object that was validated but whose text is not kept (a deployment's
objects are emitted into multi-document files by the renderer itself)."""


def memo_file(root: Path) -> Path | None:
    base = user_cache_dir("render", RENDER_CACHE_ENV)
    if base is None:
        return None
    name = hashlib.sha256(str(resolve_path(root)).encode()).hexdigest()[:32]
    return base / f"{name}.pickle"


class ObjectMemo:
    """Kept verdicts (and texts) by object key; ``path`` None: nothing is read or kept."""

    def __init__(self, path: Path | None, fingerprint: str) -> None:
        self.path = path
        self._tag = f"{MEMO_VERSION}|{__version__}|{fingerprint}"
        self._old: dict[bytes, str] = {}
        self._used: dict[bytes, str] = {}
        self._dirty = False
        self.hits = 0
        if path is None or not is_private_file(path):
            return
        found = load_remembered(path, _decode)
        if (
            isinstance(found, tuple)
            and len(found) == 2
            and found[0] == self._tag
            and isinstance(found[1], dict)
        ):
            self._old = found[1]  # only read (the process memo may share it with later runs)

    @classmethod
    def for_fleet(cls, root: Path, fingerprint: str) -> ObjectMemo:
        return cls(memo_file(root), fingerprint)

    @staticmethod
    def key(scope: str | None, obj: Mapping[str, Any]) -> bytes | None:
        """The key of ``obj`` judged under ``scope``; None when it cannot be kept (no
        scope, or an object that does not pickle)."""
        if scope is None:
            return None
        try:
            data = pickle.dumps(obj, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return None
        return hashlib.sha256(scope.encode() + b"\0" + data).digest()

    def get(self, key: bytes | None) -> str | None:
        """The kept value of ``key`` (``VALIDATED`` or the emitted text), else None."""
        if key is None:
            return None
        found = self._used.get(key)
        if found is None:
            found = self._old.get(key)
            if not isinstance(found, str):
                return None
            self._used[key] = found
        self.hits += 1
        return found

    def put(self, key: bytes | None, value: str) -> None:
        """Keep ``value`` for an object that passed the gate."""
        if key is None:
            return
        if self._old.get(key) != value:
            self._dirty = True
        self._used[key] = value

    def save(self) -> None:
        """Keep what this run used, if that differs from what was read."""
        if self.path is None:
            return
        if not self._dirty and self._used.keys() == self._old.keys():
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return
        kept = (self._tag, dict(self._used))
        store_remembered(self.path, pickle.dumps(kept, protocol=5), kept)
        self._old, self._dirty = kept[1], False


def _decode(path: Path) -> object:
    data = load_sealed(path)
    if data is None:
        return None
    try:
        return pickle.loads(data)  # sealed, and the user's own private file
    except Exception:
        return None

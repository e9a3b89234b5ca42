"""The plan memo on disk: classifications and unit sizing by input hash, between runs.

One file per fleet directory under ``$PLANTOPS_PLAN_CACHE`` (default
``~/.cache/plantops/plan``; empty disables it), beside the parse, validator and tree
caches. Its scope is the code fingerprint and the date: a new plantops or a new day starts
empty. Within it, an entry is keyed by the digests of the files it was computed from
(``plan.PlanMemo``), so a changed plant, fleet.yaml or override is computed again.

Computed entries of a small change go to a delta file beside it (see ``DELTA_SHARE``).
The files are sealed pickles (``plantops.caches.store_sealed``: written atomically, read
only when their SHA-256 matches) of plain frozen dataclasses (locations pickled resolved,
without the source maps). It is read only when this user owns it
and neither it nor its folder is writable by anyone else; anything unreadable, foreign or
stale is ignored. Never needed for correctness: deleting it costs one plan's sizing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.caches import (
    is_private_file,
    load_remembered,
    load_sealed,
    store_remembered,
    user_cache_dir,
)
from plantops.errors import resolve_path
from plantops.plan import PlanMemo

PLAN_CACHE_ENV = "PLANTOPS_PLAN_CACHE"


def memo_file(root: Path) -> Path | None:
    base = user_cache_dir("plan", PLAN_CACHE_ENV)
    if base is None:
        return None
    name = hashlib.sha256(str(resolve_path(root)).encode()).hexdigest()[:32]
    return base / f"{name}.pickle"


def _delta_file(path: Path) -> Path:
    return path.with_suffix(".delta")


# A re-plan after a small change computes a few entries: they go to a small delta file
# next to the memo, so the run does not rewrite (and the next one re-read) the whole memo;
# the memo is rewritten when the delta grows past this share of it.
DELTA_SHARE = 0.2


def _load(path: Path) -> tuple[Any, ...] | None:
    """The file's tuple (shared with later runs by the process memo: never mutated)."""
    if not is_private_file(path):
        return None
    return load_remembered(path, _decode)


def _decode(path: Path) -> tuple[Any, ...] | None:
    blob = load_sealed(path)
    if blob is None:
        return None  # missing, or not intact (truncated, damaged, not ours)
    try:
        data = pickle.loads(blob)
    except Exception:
        return None
    return data if isinstance(data, tuple) and len(data) == _FIELDS else None


_FIELDS = 4  # (scope, token, classifications, sizings)


def memo_scope(fingerprint: str, today: dt.date) -> str:
    return f"{fingerprint}:{today.isoformat()}"


@dataclass
class MemoFile:
    """Where the memo of one fleet is stored, and what was read from it."""

    path: Path | None
    token: str = ""
    base_size: int = 0
    delta: tuple[dict[str, Any], dict[str, Any]] = ({}, {})


def open_plan_memo(root: Path, scope: str) -> tuple[PlanMemo, MemoFile]:
    """The stored memo of the fleet at ``root`` (its delta merged) if its scope is
    ``scope``, else an empty one; and where to store it (path None: cache disabled)."""
    path = memo_file(root)
    if path is None:
        return PlanMemo(scope), MemoFile(None)
    base = _load(path)
    if base is None or base[0] != scope:
        return PlanMemo(scope), MemoFile(path)
    _, token, classifications, sizings = base
    # copies: the run adds to them, and the file's tuple may be kept for the next run
    memo = PlanMemo(scope, dict(classifications), dict(sizings))
    where = MemoFile(path, token, len(classifications) + len(sizings))
    delta = _load(_delta_file(path))
    if delta is not None and delta[0] == scope and delta[1] == token:
        memo.classifications.update(delta[2])
        memo.sizings.update(delta[3])
        where.delta = (delta[2], delta[3])
    return memo, where


def store_plan_memo(memo: PlanMemo, where: MemoFile) -> None:
    """Store what this run computed: in the delta file while it stays small, else the
    whole memo as this run used it (folder private to the user)."""
    path = where.path
    if path is None or not memo.added:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return
    new_c = {
        **where.delta[0],
        **{k: memo.classifications[k] for k in memo.new if k in memo.classifications},
    }
    new_s = {**where.delta[1], **{k: memo.sizings[k] for k in memo.new if k in memo.sizings}}
    if where.token and len(new_c) + len(new_s) <= DELTA_SHARE * where.base_size:
        data = (memo.scope, where.token, new_c, new_s)
        _store(_delta_file(path), data)
        return
    kept = memo.pruned()
    token = secrets.token_hex(8)
    data = (memo.scope, token, kept.classifications, kept.sizings)
    _store(path, data)
    with contextlib.suppress(OSError):
        _delta_file(path).unlink()


def _store(path: Path, data: tuple[Any, ...]) -> None:
    store_remembered(path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL), data)

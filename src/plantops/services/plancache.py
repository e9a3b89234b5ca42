"""The plan memo on disk: classifications and unit sizing by input hash, between runs.

One file per fleet directory under ``$PLANTOPS_PLAN_CACHE`` (default
``~/.cache/plantops/plan``; empty disables it), beside the parse, validator and tree
caches. Its scope is the code fingerprint and the date: a new plantops or a new day starts
empty. Within it, an entry is keyed by the digests of the files it was computed from
(``plan.PlanMemo``), so a changed plant, fleet.yaml or override is computed again.

The file is a pickle of plain frozen dataclasses. It is read only when this user owns it
and neither it nor its folder is writable by anyone else; anything unreadable, foreign or
stale is ignored. Never needed for correctness: deleting it costs one plan's sizing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
import stat
from pathlib import Path

from plantops.caches import store_atomically, user_cache_dir
from plantops.plan import PlanMemo

PLAN_CACHE_ENV = "PLANTOPS_PLAN_CACHE"


def memo_file(root: Path) -> Path | None:
    base = user_cache_dir("plan", PLAN_CACHE_ENV)
    if base is None:
        return None
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return base / f"{name}.pickle"


def _trusted(path: Path) -> bool:
    """Owned by this user and writable by nobody else (the file and its folder)."""
    try:
        for st in (path.parent.stat(), path.lstat()):
            if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def memo_scope(fingerprint: str, today: dt.date) -> str:
    return f"{fingerprint}:{today.isoformat()}"


def open_plan_memo(root: Path, scope: str) -> tuple[PlanMemo, Path | None]:
    """The stored memo of the fleet at ``root`` if its scope is ``scope``, else an empty one;
    and where to store it (None: the cache is disabled)."""
    path = memo_file(root)
    if path is None or not _trusted(path):
        return PlanMemo(scope), path
    try:
        memo = pickle.loads(path.read_bytes())
    except Exception:
        return PlanMemo(scope), path
    if not isinstance(memo, PlanMemo) or memo.scope != scope:
        return PlanMemo(scope), path
    memo.used = set()
    memo.added = 0
    return memo, path


def store_plan_memo(memo: PlanMemo, path: Path | None) -> None:
    """Store what this run used, if it computed anything new (folder private to the user)."""
    if path is None or not memo.added:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return
    store_atomically(path, pickle.dumps(memo.pruned(), protocol=pickle.HIGHEST_PROTOCOL))

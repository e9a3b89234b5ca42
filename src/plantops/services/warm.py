"""The process memo of a resident plan server: later runs of ``plan`` in one process
reuse what earlier ones computed.

The plan server (a daemon that keeps plantops imported) calls :func:`enable` once; the
normal CLI never does, and then every call site below costs one boolean test and behaves
exactly as without it. :func:`disable` turns it off and forgets everything it held;
:func:`is_enabled` tells.

What is kept, and under which key (``plantops.caches`` holds the memo itself):

- **plantops' own cache files** — the plan memo and its delta (``services.plancache``),
  the parse cache and its delta (``spec.cache``), the render memo
  (``services.rendermemo``) and the tree's ``.plantops/state.json``
  (``gitops.tree``): the decoded object by the file's path and its (st_dev, st_ino,
  st_size, st_mtime_ns, st_ctime_ns). Each is replaced by an atomic rename, so a
  rewrite is a new inode; a run that writes one keeps what it wrote under the new
  signature. The permission checks on each file still run on every load, and the
  objects are only read (callers copy what they change).
- **fleet files' texts** — fleet.yaml's and each plant file's text and SHA-256, by the
  path, its lstat signature and the folder it resolves to (a link is always read); a
  file modified within ``plantops.caches.RACY_SECONDS`` (2 s) before it was read is read
  again (Git's racily-clean rule: timestamps may be coarser than a quick edit).
- **validated fleet files** — the pydantic model of fleet.yaml and of each plant file,
  by the model and the SHA-256 of the text (the parse cache's key). The cross-file
  checks run on every load.
- **unit plans** — each unit's deployments, sizing warnings and sizings
  (``plan.build_plan``), by the plan memo's scope (the code's fingerprint and the date),
  fleet.yaml's digest, the unit, its cluster and each member plant's code, file digest
  and active overrides (what the plan memo keys classifications and sizings by).
- **Argo CD projects** (``render.argocd.project``) while their member deployments are the
  very same objects and the render context is equal (an unchanged unit's deployments
  are), handed out as a fresh copy; **cost** (``plan.cost``, ``sizing.cost``): a
  deployment's ``UnitCost`` and a unit's own cost lines the same way; **state.json
  lines** (``gitops.tree``) per reused entry object.

Tables drop what the previous run did not use when a run starts (every use case that
loads a fleet, ``services.open_fleet``, starts one; :func:`new_run` marks one by hand), so
the memo follows the fleet, not its history; the cache files are kept per path. The memo is process state without locks: run one plan at a time. A warm run
writes the same tree and prints the same bytes as a cold one
(``tests/plan/test_warm_process.py``).
"""

from __future__ import annotations

from plantops.caches import set_warm, warm_enabled, warm_new_run


def enable() -> None:
    """Keep what runs compute in this process for the next run."""
    set_warm(True)


def disable() -> None:
    """Stop keeping, and forget what was kept."""
    set_warm(False)


def is_enabled() -> bool:
    return warm_enabled()


def new_run() -> None:
    """Mark the start of a run: entries the previous run did not use are dropped."""
    if warm_enabled():
        warm_new_run()


__all__ = ["disable", "enable", "is_enabled", "new_run"]

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
- **validated fleet files** — the pydantic model of fleet.yaml and of each plant file,
  by the SHA-256 of the file's text (the parse cache's key) and the model; the file is
  still read and hashed on every run, and the cross-file checks always run.
- **unit plans** — each unit's deployments and sizing warnings (``plan.build_plan``), by
  the plan memo's scope (the code's fingerprint and the date), fleet.yaml's digest and
  each member plant's code, file digest and active overrides.
- **Argo CD projects** (``render.argocd.project``) by the pickle digest of their input.

Tables drop what the previous run did not use when a run starts (:func:`new_run`, called
by the use cases), so the memo follows the fleet, not its history. A warm run writes the
same tree and prints the same bytes as a cold one (``tests/plan/test_warm_process.py``).
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

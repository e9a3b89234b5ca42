"""Switches for a resident process (the plan server, :mod:`plantops.cli.planserver`):
what a fresh command line reads back from disk on every run is kept in memory instead,
always checked against the files it came from, so a change is never missed.

- :mod:`plantops.services.warm`: decoded cache files, fleet texts, validated specs, unit
  plans, AppProjects and cost lines kept in memory, keyed by file signatures and input
  digests (docs/architecture.md, "In memory, for a resident plan server");
- :mod:`plantops.gitops.fsmonitor`: each rendered tree a run writes is watched
  (inotify), so the next run's hand-edit check stats only the files that changed since
  they were last proved intact, instead of every file.

Off by default: a command line's behaviour and cost do not change. ``enable()`` turns
every accelerator on; ``reset()`` drops what they hold (after a run that was cut short,
whose half-updated state is not trusted); ``disable()`` turns them off (tests).
"""

from __future__ import annotations


def enable() -> None:
    from plantops.gitops import fsmonitor
    from plantops.services import warm

    fsmonitor.enable()  # the rendered trees watched: the hand-edit check stats what changed
    warm.enable()  # decoded caches, fleet texts, validated specs, unit plans kept in memory


def disable() -> None:
    from plantops.gitops import fsmonitor
    from plantops.services import warm

    fsmonitor.disable()
    warm.disable()


def reset() -> None:
    from plantops.services import warm

    if warm.is_enabled():
        disable()
        enable()

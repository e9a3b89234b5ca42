"""Switches for a resident process (the plan server, :mod:`plantops.cli.planserver`):
what a fresh command line reads back from disk on every run is kept in memory instead,
always checked against the files it came from, so a change is never missed.

Off by default: a command line's behaviour and cost do not change. ``enable()`` turns
every accelerator on; ``reset()`` drops what they hold (after a run that was cut short,
whose half-updated state is not trusted); ``disable()`` turns them off (tests).
"""

from __future__ import annotations


class _Switch:
    on = False


def enabled() -> bool:
    return _Switch.on


def enable() -> None:
    _Switch.on = True


def disable() -> None:
    _Switch.on = False


def reset() -> None:
    if _Switch.on:
        disable()
        enable()

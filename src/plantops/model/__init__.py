"""The resolved fleet: stages in promotion order, plants with their active exceptions.

Pure: no I/O and no clock — ``today`` comes in from the caller.
"""

from plantops.model.fleet import (
    PATTERNS,
    TIER_LEVELS,
    ActiveOverride,
    Environment,
    Fleet,
    Plant,
    build_fleet,
)

__all__ = [
    "PATTERNS",
    "TIER_LEVELS",
    "ActiveOverride",
    "Environment",
    "Fleet",
    "Plant",
    "build_fleet",
]

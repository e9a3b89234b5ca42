"""Plant profile → tier and deployment pattern, each decision with its reasons."""

from plantops.classify.factors import CHANGE_CONTROLLED, Factor, coverage_hours_per_week
from plantops.classify.rules import (
    PATTERNS,
    TIERS,
    Classification,
    Reason,
    classify_fleet,
    classify_plant,
)

__all__ = [
    "CHANGE_CONTROLLED",
    "PATTERNS",
    "TIERS",
    "Classification",
    "Factor",
    "Reason",
    "classify_fleet",
    "classify_plant",
    "coverage_hours_per_week",
]

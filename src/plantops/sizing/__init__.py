"""Odoo deployment arithmetic: workers, memory limits, connections, PG/Redis, quotas, cost."""

from plantops.sizing.odoo import (
    Cost,
    InfeasibleSizing,
    Quota,
    Resources,
    Sizing,
    SizingInputs,
    size_unit,
)

__all__ = [
    "Cost",
    "InfeasibleSizing",
    "Quota",
    "Resources",
    "Sizing",
    "SizingInputs",
    "size_unit",
]

"""Odoo deployment arithmetic: workers, memory limits, connections, PG/Redis, quotas, cost."""

from plantops.sizing.odoo import (
    Cost,
    InfeasibleSizing,
    Quota,
    Resources,
    Sizing,
    SizingInputs,
    price_unit,
    size_unit,
)

__all__ = [
    "Cost",
    "InfeasibleSizing",
    "Quota",
    "Resources",
    "Sizing",
    "SizingInputs",
    "price_unit",
    "size_unit",
]

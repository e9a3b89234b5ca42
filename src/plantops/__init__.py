"""plantops: one governed platform for a manufacturing group's Odoo plants."""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The control-plane server: a JSON API, server-rendered pages and an event stream
over the same use cases as the CLI (``plantops.services``) and the state store.

This package imports ``plantops.services``, ``plantops.store`` and ``plantops.errors``
only (an import-linter contract): it never renders, plans or backs up by itself.
"""

from __future__ import annotations

from plantops.server.app import create_app
from plantops.server.state import OidcSettings, ServerSettings

__all__ = ["OidcSettings", "ServerSettings", "create_app"]

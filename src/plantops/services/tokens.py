"""API tokens for the control-plane server: ``plantops token create|list|revoke``
(docs/server.md). Only the hash of a token's secret is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from plantops.store import default_db_url
from plantops.store.server import ServerStore, TokenRecord, open_server_store


def _server_store(db_url: str | None) -> ServerStore:
    return open_server_store(db_url or default_db_url())


def create_api_token(
    *,
    role: str,
    plants: Sequence[str],
    expires: dt.date | None,
    now: dt.datetime,
    db_url: str | None = None,
) -> tuple[str, TokenRecord]:
    """``plantops token create``: the plaintext token (shown once) and its record. A token
    expiring on DATE stops working at 00:00 UTC that day."""
    store = _server_store(db_url)
    try:
        expires_at = (
            dt.datetime.combine(expires, dt.time(), tzinfo=dt.UTC) if expires is not None else None
        )
        return store.create_token(role=role, plants=plants, expires_at=expires_at, now=now)
    finally:
        store.close()


def revoke_api_token(token_id: str, *, now: dt.datetime, db_url: str | None = None) -> TokenRecord:
    store = _server_store(db_url)
    try:
        return store.revoke_token(token_id, now=now)
    finally:
        store.close()


def list_api_tokens(*, db_url: str | None = None) -> list[TokenRecord]:
    store = _server_store(db_url)
    try:
        return store.list_tokens()
    finally:
        store.close()


def default_state_db() -> str:
    """``PLANTOPS_DB`` or the embedded SQLite file (what ``--db`` defaults to)."""
    return default_db_url()

"""``plantops serve`` and ``plantops token create|list|revoke``.

``serve`` builds the server's settings from its options and the environment (the OIDC
client secret and the session secret are read from the environment, never argv) and
runs uvicorn. Tokens are created, listed and revoked through ``plantops.services``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from plantops.cli.console import err, out, run_guarded
from plantops.errors import UserError, resolve_path
from plantops.services import tokens

token_app = typer.Typer(
    help="API tokens for the server (`Authorization: Bearer`).", no_args_is_help=True
)
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="State database URL (default: PLANTOPS_DB or sqlite:///.plantops/state.db)."
    ),
]


def serve(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8080,
    db: DbOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Tree `POST /api/plan` writes (default: out/<fleet name>)."),
    ] = None,
    locks: Annotated[
        Path,
        typer.Option(
            "--locks",
            help="Directory of release locks (`*.lock`): `POST /api/releases` writes there; "
            "status, approvals and the promotion matrix find a release's lock there by id.",
        ),
    ] = Path(".plantops/locks"),
    insecure_cookies: Annotated[
        bool,
        typer.Option(
            "--insecure-cookies",
            help="Send the session cookie over plain HTTP too (development only; the default "
            "is Secure: serve behind TLS, or on localhost).",
        ),
    ] = False,
    webhook_timeout: Annotated[
        float,
        typer.Option(
            "--webhook-timeout", help="Seconds a webhook receiver has to answer.", min=0.1, max=120
        ),
    ] = 15.0,
    webhook_backoff: Annotated[
        float,
        typer.Option(
            "--webhook-backoff",
            help="Seconds before the first retry of a failed delivery (doubling, with jitter).",
            min=0.01,
        ),
    ] = 5.0,
    webhook_backoff_max: Annotated[
        float,
        typer.Option("--webhook-backoff-max", help="Longest wait between retries.", min=0.01),
    ] = 3600.0,
    webhook_attempts: Annotated[
        int,
        typer.Option(
            "--webhook-attempts",
            help="Attempts before a delivery is dead (it then holds its plant's queue "
            "until redriven).",
            min=1,
            max=1000,
        ),
    ] = 12,
    webhook_allow_network: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-allow-network",
            help="A network (CIDR) webhooks may be delivered to besides public addresses;"
            " loopback, private and link-local ones are refused otherwise (repeatable).",
        ),
    ] = None,
) -> None:
    """Run the control-plane server: API (`/openapi.json`), pages and `/events`.

    OIDC sign-in is on when PLANTOPS_OIDC_ISSUER, PLANTOPS_OIDC_CLIENT_ID and
    PLANTOPS_OIDC_CLIENT_SECRET are set. Set PLANTOPS_SESSION_SECRET when more than one
    process serves one database, so sessions are valid on each. PLANTOPS_WEBHOOK_KEY
    (16+ characters, the same on every process) seals webhook signing secrets; without
    it webhooks cannot be registered or delivered. To rotate it, set the old key in
    PLANTOPS_WEBHOOK_KEY_PREVIOUS: secrets are sealed again under the new key at start.
    """
    import uvicorn

    from plantops.server import OidcSettings, ServerSettings, create_app
    from plantops.services.webhooks import RetryPolicy

    if not (fleet / "fleet.yaml").is_file():
        run_guarded(_raise, UserError(f"--fleet {fleet}: no fleet.yaml there"))
    issuer = os.environ.get("PLANTOPS_OIDC_ISSUER", "")
    oidc = None
    if issuer:
        client_id = os.environ.get("PLANTOPS_OIDC_CLIENT_ID", "")
        client_secret = os.environ.get("PLANTOPS_OIDC_CLIENT_SECRET", "")
        if not client_id or not client_secret:
            run_guarded(
                _raise,
                UserError(
                    "PLANTOPS_OIDC_ISSUER is set: set PLANTOPS_OIDC_CLIENT_ID and"
                    " PLANTOPS_OIDC_CLIENT_SECRET too"
                ),
            )
        oidc = OidcSettings(issuer, client_id, client_secret)
    settings = ServerSettings(
        fleet=fleet,
        db_url=db or tokens.default_state_db(),
        out=out_dir or Path("out") / resolve_path(fleet).name,
        session_secret=os.environ.get("PLANTOPS_SESSION_SECRET") or secrets.token_urlsafe(32),
        oidc=oidc,
        secure_cookies=not insecure_cookies,
        locks=locks,
        webhook_key=os.environ.get("PLANTOPS_WEBHOOK_KEY") or None,
        # old keys, one per line or space-separated (a key rotation; docs/server.md)
        webhook_previous_keys=tuple(os.environ.get("PLANTOPS_WEBHOOK_KEY_PREVIOUS", "").split()),
        webhook_allow_networks=tuple(webhook_allow_network or ()),
        webhook_retry=RetryPolicy(
            base_seconds=webhook_backoff,
            cap_seconds=max(webhook_backoff_max, webhook_backoff),
            max_attempts=webhook_attempts,
            timeout_seconds=webhook_timeout,
        ),
    )
    app = run_guarded(create_app, settings)
    err.print(f"plantops serving {fleet} on http://{host}:{port} (API: /openapi.json)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def _raise(exc: Exception) -> None:
    raise exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@token_app.command("create")
def create(
    role: Annotated[
        str,
        typer.Option(
            "--role", help="platform-engineer, release-manager, plant-it, auditor or viewer."
        ),
    ],
    plant: Annotated[
        list[str] | None,
        typer.Option("--plant", help="A plant a plant-it token may act on (repeat)."),
    ] = None,
    expires: Annotated[
        dt.datetime | None,
        typer.Option(
            "--expires",
            formats=["%Y-%m-%d"],
            help="Last day is the day before DATE (YYYY-MM-DD, UTC).",
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    token, record = run_guarded(
        tokens.create_api_token,
        role=role,
        plants=plant or (),
        expires=expires.date() if expires else None,
        now=_now(),
        db_url=db,
    )
    err.print(f"token {record.id} ({record.role}); shown once, store it now:")
    out.print(token, markup=False)


@token_app.command("list")
def list_tokens(db: DbOpt = None) -> None:
    """Tokens (id, role, scope, state); never the secrets."""
    now = _now()
    for t in run_guarded(tokens.list_api_tokens, db_url=db):
        expires = t.expires_at.date().isoformat() if t.expires_at else "never"
        scope = ",".join(t.plants) or "*"
        out.print(
            f"{t.id}  {t.role:<17} {scope:<20} expires {expires:<10} {t.state(now)}", markup=False
        )


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (from `plantops token list`).")],
    db: DbOpt = None,
) -> None:
    """Revoke a token: it stops working on every server at once."""
    record = run_guarded(tokens.revoke_api_token, token_id, now=_now(), db_url=db)
    out.print(f"revoked {record.id}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")

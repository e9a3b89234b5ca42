"""Sign-in with OpenID Connect (authorization code flow, authlib's Starlette client).

The provider's ``role_claim`` (default ``plantops_role``) names the plantops role and
``plants_claim`` a plant-it's plants; a user without a known role signs in as viewer.
The session keeps only subject, role and plants (signed, HttpOnly, SameSite=Lax,
Secure cookie); provider tokens are not kept.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from plantops.server.auth import check_csrf_form, state_of
from plantops.server.problems import ProblemError
from plantops.store.server import ROLES

router = APIRouter(prefix="/auth", include_in_schema=False)
_CLIENTS: dict[int, Any] = {}


def _client(request: Request) -> Any:
    settings = state_of(request).settings.oidc
    if settings is None:
        raise ProblemError(
            404,
            "OIDC sign-in is not configured (PLANTOPS_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET);"
            " use an API token",
        )
    key = id(request.app)
    if key not in _CLIENTS:
        oauth = OAuth()
        oauth.register(
            "oidc",
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile"},
        )
        _CLIENTS[key] = oauth.create_client("oidc")
    return _CLIENTS[key]


@router.get("/login")
async def login(request: Request) -> Any:
    client = _client(request)
    return await client.authorize_redirect(request, str(request.url_for("callback")))


@router.get("/callback")
async def callback(request: Request) -> RedirectResponse:
    client = _client(request)
    settings = state_of(request).settings.oidc
    assert settings is not None
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        raise ProblemError(401, f"sign-in failed: {exc.error}", slug="unauthorized") from exc
    claims = dict(token.get("userinfo") or {})
    role = claims.get(settings.role_claim)
    plants = claims.get(settings.plants_claim) or []
    if role not in ROLES:
        role = "viewer"
    if not isinstance(plants, list) or not all(isinstance(p, str) for p in plants):
        plants = []
    if role == "plant-it" and not plants:
        role = "viewer"  # a plant-it with no plants may touch nothing
    request.session.clear()
    request.session["user"] = {
        "sub": str(claims.get("email") or claims.get("sub", "")),
        "role": role,
        "plants": sorted(plants),
    }
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    form = dict(await request.form())
    check_csrf_form(request, form)
    request.session.clear()
    return RedirectResponse("/", status_code=303)

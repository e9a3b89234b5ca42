"""OIDC sign-in against a real provider (oidc-provider-mock on loopback): the role comes
from the ID token, the session cookie is Secure/HttpOnly/SameSite=Lax, and every form
post needs the session's CSRF token."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from plantops.server import OidcSettings, ServerSettings, create_app
from tests.conftest import EXAMPLE
from tests.server.conftest import OTHER, SCOPED, WEBHOOK_KEY

with warnings.catch_warnings():
    # the mock provider imports authlib.jose, which authlib deprecates (not our code)
    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import User, run_server_in_thread

# The provider (not plantops) calls authlib APIs authlib has deprecated, in its own thread.
pytestmark = [
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
]

USERS = [
    User(
        sub="rm@acme.example",
        claims={"email": "rm@acme.example", "plantops_role": "release-manager"},
    ),
    User(
        sub="it@acme.example",
        claims={
            "email": "it@acme.example",
            "plantops_role": "plant-it",
            "plantops_plants": [SCOPED],
        },
    ),
    User(
        sub="pe@acme.example",
        claims={"email": "pe@acme.example", "plantops_role": "platform-engineer"},
    ),
    User(
        sub="nobody@acme.example", claims={"email": "nobody@acme.example", "plantops_role": "root"}
    ),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=USERS) as srv:
        yield f"http://localhost:{srv.server_port}"


@pytest.fixture
def web(tmp_path: Path, provider: str) -> Iterator[TestClient]:
    settings = ServerSettings(
        fleet=EXAMPLE,
        db_url=f"sqlite:///{tmp_path}/state.db",
        out=tmp_path / "out",
        session_secret="s" * 32,
        oidc=OidcSettings(provider, "plantops-test", "client-secret-not-in-pages"),
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


def sign_in(web: TestClient, sub: str) -> httpx.Response:
    r = web.get("/auth/login", follow_redirects=False)
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    # the provider's consent form, answered as the browser would
    answer = httpx.post(authorize, data={"sub": sub}, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert back.path == "/auth/callback"
    return web.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_sign_in_sets_a_secure_session_with_the_role(web: TestClient) -> None:
    r = sign_in(web, "rm@acme.example")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "plantops_session=" in cookie
    for attr in ("secure", "httponly", "samesite=lax"):
        assert attr in cookie, cookie
    page = web.get("/")
    assert page.status_code == 200
    assert "rm@acme.example · release-manager" in page.text
    assert "client-secret-not-in-pages" not in page.text


def test_unknown_role_claim_signs_in_as_viewer(web: TestClient) -> None:
    sign_in(web, "nobody@acme.example")
    assert "· viewer" in web.get("/").text


def test_csrf_is_required_on_every_form_post(web: TestClient) -> None:
    sign_in(web, "it@acme.example")
    page = web.get(f"/plants/{SCOPED}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    # no token / a wrong token: refused, nothing written
    for data in ({}, {"csrf_token": "forged"}):
        r = web.post(f"/plants/{SCOPED}/plan", data=data, follow_redirects=False)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    # cookie-authenticated API writes need the header
    assert web.post("/api/plan", json={"plants": [SCOPED]}).status_code == 403
    # outside its plants, even with the token
    r = web.post(
        f"/plants/{OTHER}/plan", data={"csrf_token": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 403
    r = web.post(
        f"/plants/{SCOPED}/plan", data={"csrf_token": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert "planned" in web.get(r.headers["location"]).text
    ok = web.post("/api/plan", json={"plants": [SCOPED]}, headers={"X-CSRF-Token": token.group(1)})
    assert ok.status_code == 200, ok.text
    # sign-out is a form post with the token too
    assert web.post("/auth/logout", data={}, follow_redirects=False).status_code == 403
    assert (
        web.post(
            "/auth/logout", data={"csrf_token": token.group(1)}, follow_redirects=False
        ).status_code
        == 303
    )
    assert "Sign in" in web.get("/").text


def test_a_signed_in_secret_rotation_needs_the_csrf_header(tmp_path: Path, provider: str) -> None:
    """The webhook writes follow the API's rule for cookie sessions: the X-CSRF-Token
    header, or 403 and nothing rotated."""
    settings = ServerSettings(
        fleet=EXAMPLE,
        db_url=f"sqlite:///{tmp_path}/state.db",
        out=tmp_path / "out",
        session_secret="s" * 32,
        oidc=OidcSettings(provider, "plantops-test", "client-secret-not-in-pages"),
        webhook_key=WEBHOOK_KEY,
        deliver_webhooks=False,
        webhook_allow_networks=("127.0.0.0/8",),
    )
    with TestClient(create_app(settings), base_url="https://testserver") as web:
        sign_in(web, "pe@acme.example")
        page = web.get(f"/plants/{SCOPED}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        csrf = {"X-CSRF-Token": token.group(1)}
        made = web.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=csrf)
        assert made.status_code == 201, made.text
        url = f"/api/webhooks/{made.json()['id']}/rotate-secret"
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            r = web.post(url, json={"overlap_hours": 1}, headers=headers)
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
            assert (
                web.get(url.removesuffix("/rotate-secret")).json()["previous_secret_until"] is None
            )
        r = web.post(url, json={"overlap_hours": 1}, headers=csrf)
        assert r.status_code == 200, r.text
        assert r.json()["secret"] != made.json()["secret"]
        assert r.json()["previous_secret_until"] is not None

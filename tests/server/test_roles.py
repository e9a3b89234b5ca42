"""Every write endpoint × every role → the expected 2xx or 403 (generated from the app's
routes, so a new write route without an entry here fails the test), plus scope, expiry
and revocation of tokens, and the token CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from plantops.cli.main import app as cli_app
from plantops.store.server import ROLES
from tests.addons.test_addons import addon
from tests.server.conftest import OTHER, SCOPED, Server

IMAGE = "registry.acme.example/odoo/odoo:17.0@sha256:" + "ab" * 32
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ALL = set(ROLES)
# (method, path template) → roles that may; everything else must get 403.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/api/plan"): {"platform-engineer", "plant-it"},
    ("POST", "/api/releases"): {"platform-engineer", "release-manager"},
    ("POST", "/api/tokens"): {"platform-engineer"},
    ("DELETE", "/api/tokens/{token_id}"): {"platform-engineer"},
    ("POST", "/plants/{code}/plan"): {"platform-engineer", "plant-it"},
    ("POST", "/api/releases/{release_id}/approvals"): {"release-manager"},
    ("POST", "/promotions/{release_id}/approvals"): {"release-manager"},
    ("POST", "/api/releases/{release_id}/promotions"): {"platform-engineer", "release-manager"},
    ("POST", "/promotions/{release_id}/promotions"): {"platform-engineer", "release-manager"},
    ("POST", "/api/webhooks"): {"platform-engineer"},
    ("DELETE", "/api/webhooks/{webhook_id}"): {"platform-engineer"},
    ("POST", "/api/webhooks/{webhook_id}/redrive"): {"platform-engineer"},
    ("POST", "/api/webhooks/{webhook_id}/rotate-secret"): {"platform-engineer"},
}
# Routes that need a release in the ledger first (made by the platform engineer, so the
# release manager is not its author).
NEEDS_RELEASE = {
    "/api/releases/{release_id}/approvals",
    "/promotions/{release_id}/approvals",
    "/api/releases/{release_id}/promotions",
    "/promotions/{release_id}/promotions",
}
# Routes whose request makes something to act on first (so the log grows before it).
MAKES_FIRST = {
    "/api/tokens/{token_id}",
    "/api/webhooks/{webhook_id}",
    "/api/webhooks/{webhook_id}/redrive",
    "/api/webhooks/{webhook_id}/rotate-secret",
}
# Write routes that are not role-gated: sign-out only ends the caller's own session.
UNGATED = {("POST", "/auth/logout")}


@pytest.fixture
def server_fleet(tmp_path: Path) -> Path:
    import shutil

    from tests.conftest import EXAMPLE

    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, fleet)
    addon(fleet / "addons", "acme_mrp", depends=["mrp"])
    return fleet


def all_routes(routes: list[Any]) -> list[Any]:
    """The app's routes, through FastAPI's included routers (mounted without a prefix)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        out += all_routes(inner.routes) if inner is not None else [r]
    return out


def write_routes(server: Server) -> set[tuple[str, str]]:
    found = set()
    for route in all_routes(server.app.routes):
        methods = getattr(route, "methods", None) or set()
        for m in methods & WRITES:
            found.add((m, route.path))
    return found


def prepare(server: Server, path: str) -> str:
    """A release in the ledger, authored by the platform engineer (for approval routes)."""
    if path not in NEEDS_RELEASE:
        return ""
    r = server.client.post(
        "/api/releases",
        headers=server.as_role("platform-engineer"),
        json={"image": IMAGE, "addons_paths": ["addons"]},
    )
    assert r.status_code == 201, r.text
    release: str = r.json()["id"]
    return release


def ledger_entries(server: Server) -> int:
    from plantops.store.ledger import open_ledger

    led = open_ledger(server.settings.db_url)
    try:
        return sum(1 for _ in led.iter_entries())
    finally:
        led.close()


def call(
    server: Server, method: str, path: str, role: str, plant: str = SCOPED, release: str = ""
) -> Any:
    h = server.as_role(role)
    c = server.client
    if path == "/api/plan":
        return c.post(path, headers=h, json={"plants": [plant]})
    if path == "/api/releases":
        return c.post(path, headers=h, json={"image": IMAGE, "addons_paths": ["addons"]})
    if path == "/api/tokens":
        return c.post(path, headers=h, json={"role": "viewer"})
    if path == "/api/tokens/{token_id}":
        made = c.post(
            "/api/tokens", headers=server.as_role("platform-engineer"), json={"role": "viewer"}
        )
        return c.delete(f"/api/tokens/{made.json()['id']}", headers=h)
    if path == "/api/webhooks":
        return c.post(path, headers=h, json={"url": "http://127.0.0.1:9/hook"})
    if path.startswith("/api/webhooks/{webhook_id}"):
        made = c.post(
            "/api/webhooks",
            headers=server.as_role("platform-engineer"),
            json={"url": "http://127.0.0.1:9/hook"},
        )
        assert made.status_code == 201, made.text
        url = f"/api/webhooks/{made.json()['id']}"
        if path.endswith("/redrive"):
            return c.post(url + "/redrive", headers=h)
        if path.endswith("/rotate-secret"):
            return c.post(url + "/rotate-secret", headers=h, json={"overlap_hours": 1})
        return c.delete(url, headers=h)
    if path == "/plants/{code}/plan":
        return c.post(f"/plants/{plant}/plan", headers=h, data={}, follow_redirects=False)
    if path == "/api/releases/{release_id}/approvals":
        return c.post(f"/api/releases/{release}/approvals", headers=h, json={"stage": "prod"})
    if path == "/promotions/{release_id}/approvals":
        url = f"/promotions/{release}/approvals"
        return c.post(url, headers=h, data={"stage": "prod"}, follow_redirects=False)
    if path == "/api/releases/{release_id}/promotions":
        return c.post(f"/api/releases/{release}/promotions", headers=h, json={"stage": "dev"})
    if path == "/promotions/{release_id}/promotions":
        url = f"/promotions/{release}/promotions"
        return c.post(url, headers=h, data={"stage": "dev"}, follow_redirects=False)
    raise AssertionError(f"no request for {method} {path}: add one to call()")


def test_every_write_route_is_in_the_matrix(server: Server) -> None:
    assert write_routes(server) == set(EXPECTED) | UNGATED
    gated = [
        r for r in all_routes(server.app.routes)
        if isinstance(r, APIRoute) and r.methods & WRITES and r.path.startswith("/api/")
    ]  # fmt: skip
    for r in gated:  # every API write route names its action through require()
        actions = [getattr(d.call, "plantops_action", None) for d in r.dependant.dependencies]
        assert any(actions), r.path


@pytest.mark.parametrize(("route", "role"), list(itertools.product(sorted(EXPECTED), ROLES)))
def test_matrix(server: Server, route: tuple[str, str], role: str) -> None:
    method, path = route
    release = prepare(server, path)
    before = server.client.get("/api/events", headers=server.as_role("auditor")).json()["items"]
    entries = ledger_entries(server)
    r = call(server, method, path, role, release=release)
    if role in EXPECTED[route]:
        assert r.status_code in (200, 201, 303), r.text
    else:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        after = server.client.get("/api/events", headers=server.as_role("auditor")).json()
        if path not in MAKES_FIRST:
            assert after["items"] == before, "a refused write recorded something"
        assert ledger_entries(server) == entries, "a refused write touched the ledger"


@pytest.mark.parametrize("route", [("POST", "/api/plan"), ("POST", "/plants/{code}/plan")])
def test_plant_it_outside_its_plants(server: Server, route: tuple[str, str]) -> None:
    r = call(server, *route, "plant-it", plant=OTHER)
    assert r.status_code == 403
    assert SCOPED in r.json()["detail"] and OTHER in r.json()["detail"]
    assert not server.settings.out.exists()


def test_reads_need_a_valid_token(server: Server) -> None:
    c = server.client
    assert c.get("/api/fleet").status_code == 401
    for bad in ("Bearer nope", "Bearer pot_abc_def", "Basic dXNlcjpwdw==", "Bearer "):
        r = c.get("/api/fleet", headers={"Authorization": bad})
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    # the auditor reads everything, the viewer not the token list
    assert c.get("/api/tokens", headers=server.as_role("auditor")).status_code == 200
    assert c.get("/api/tokens", headers=server.as_role("viewer")).status_code == 403
    listed = c.get("/api/tokens", headers=server.as_role("auditor")).text
    for token in server.tokens.values():  # only ids, never the secrets
        assert token.split("_", 2)[2] not in listed


def test_token_cli_create_list_expire_revoke(server: Server) -> None:
    runner = CliRunner()
    db = ["--db", server.settings.db_url]
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    r = runner.invoke(
        cli_app,
        ["token", "create", "--role", "plant-it", "--plant", SCOPED, "--expires", tomorrow, *db],
    )
    assert r.exit_code == 0, r.output
    token = re.search(r"pot_\S+", r.stdout)
    assert token
    h = {"Authorization": f"Bearer {token.group(0)}"}
    assert server.client.get("/api/fleet", headers=h).status_code == 200
    tid = token.group(0).split("_")[1]
    listed = runner.invoke(cli_app, ["token", "list", *db])
    assert (
        tid in listed.stdout and "plant-it" in listed.stdout and token.group(0) not in listed.stdout
    )
    assert runner.invoke(cli_app, ["token", "revoke", tid, *db]).exit_code == 0
    assert server.client.get("/api/fleet", headers=h).status_code == 401
    assert "revoked" in runner.invoke(cli_app, ["token", "list", *db]).stdout
    # bad input: exit 2 with the option named
    for args, words in (
        (["--role", "admin"], "--role"),
        (["--role", "plant-it"], "--plant"),
        (["--role", "viewer", "--expires", "2001-01-01"], "--expires"),
    ):
        r = runner.invoke(cli_app, ["token", "create", *args, *db])
        assert r.exit_code == 2 and words in r.output, r.output
    assert runner.invoke(cli_app, ["token", "revoke", "nothere", *db]).exit_code == 2


def test_expired_token_is_refused(server: Server) -> None:
    store = server.app.state.plantops.store
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    token, _ = store.create_token(
        role="viewer", expires_at=long_ago + dt.timedelta(days=1), now=long_ago
    )
    r = server.client.get("/api/fleet", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]

"""The pages in real headless Chromium (Debian's ``chromium`` driven by Playwright, no
browser download): sign in through the OIDC provider, browse fleet → search → plant,
re-plan through the CSRF-protected form, see the event on the releases page. No console
error, and no request from a plantops page leaves loopback. Screenshots are kept in
the test's tmp directory."""

from __future__ import annotations

import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import EXAMPLE
from tests.server.conftest import SCOPED, start_serve, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium not installed (make system-deps)"
    ),
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
]
LOOPBACK = {"localhost", "127.0.0.1"}

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import User, run_server_in_thread


@pytest.fixture
def provider() -> Iterator[str]:
    users = [
        User(
            sub="pe@acme.example",
            claims={"email": "pe@acme.example", "plantops_role": "platform-engineer"},
        )
    ]
    with run_server_in_thread(user_claims=users) as srv:
        yield f"http://localhost:{srv.server_port}"


def test_sign_in_browse_and_plan(tmp_path: Path, provider: str) -> None:
    from playwright.sync_api import sync_playwright

    env = {
        "PLANTOPS_OIDC_ISSUER": provider,
        "PLANTOPS_OIDC_CLIENT_ID": "plantops-browser",
        "PLANTOPS_OIDC_CLIENT_SECRET": "browser-test-secret",
        "PLANTOPS_SESSION_SECRET": "x" * 32,
    }
    proc = start_serve(EXAMPLE, f"sqlite:///{tmp_path}/state.db", tmp_path, env=env)
    base = proc.url.replace("127.0.0.1", "localhost")  # a secure context: Secure cookies work
    console: list[str] = []
    external: list[str] = []
    lock = threading.Lock()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()

            def on_request(request: object) -> None:
                url = request.url  # type: ignore[attr-defined]
                frame_url = request.frame.url  # type: ignore[attr-defined]
                host = urlsplit(url).hostname or ""
                if host not in LOOPBACK and frame_url.startswith(base):
                    with lock:
                        external.append(url)

            page.on("request", on_request)
            page.on(
                "console",
                lambda m: console.append(f"{page.url}: {m.text}")
                if m.type == "error" and page.url.startswith(base)
                else None,
            )
            # nothing may leave loopback (the mock provider's own page links a CDN stylesheet)
            page.route(
                "**/*",
                lambda route: route.abort()
                if (urlsplit(route.request.url).hostname or "") not in LOOPBACK
                else route.continue_(),
            )
            page.goto(base + "/")
            page.click("#signin")
            page.click("button[value='pe@acme.example']")
            page.wait_for_url(base + "/")
            assert "pe@acme.example · platform-engineer" in page.inner_text("header")
            assert page.locator("#plants tbody tr").count() == 9
            assert page.locator("svg.chart rect").count() == 9
            page.screenshot(path=str(tmp_path / "fleet.png"), full_page=True)
            page.fill("input[name=q]", "brno")
            page.click("#filters button")
            page.wait_for_url(base + "/?q=brno*")  # count() does not wait for the new page
            assert page.locator("#plants tbody tr").count() == 1
            page.click(f"a[href='/plants/{SCOPED}']")
            page.wait_for_url(base + f"/plants/{SCOPED}")
            assert page.locator("#reasons tbody tr").count() > 0
            assert page.locator("#deployments tbody tr").count() > 0
            page.click("#plan-form button")
            assert "planned:" in page.inner_text("#done")
            page.screenshot(path=str(tmp_path / "plant.png"), full_page=True)
            page.goto(base + "/releases")
            assert "plan.written" in page.inner_text("#events")
            cookies = {c["name"]: c for c in page.context.cookies()}
            session = cookies["plantops_session"]
            assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
            html = page.content()
            assert "browser-test-secret" not in html
            browser.close()
    finally:
        stop(proc)
    assert not console, console
    assert not external, external
    assert "browser-test-secret" not in proc.log.read_text()
    assert (tmp_path / "fleet.png").stat().st_size > 0


@pytest.fixture
def rm_provider() -> Iterator[str]:
    users = [
        User(
            sub="rm@acme.example",
            claims={"email": "rm@acme.example", "plantops_role": "release-manager"},
        )
    ]
    with run_server_in_thread(user_claims=users) as srv:
        yield f"http://localhost:{srv.server_port}"


def registered_release(tmp_path: Path, db_url: str) -> str:
    """A release of the example fleet by alice, its lock where ``serve`` looks by default
    (``.plantops/locks`` under the server's working directory)."""
    import datetime as dt

    from plantops import services
    from plantops.services import release as release_services
    from tests.addons.test_addons import addon
    from tests.release.fleet import IMAGE

    addons = tmp_path / "addons"
    addon(addons, "acme_mrp", depends=["mrp"])
    now = dt.datetime.now(dt.UTC)
    made = services.create_release(
        EXAMPLE, image=IMAGE, addons_paths=[addons], packages=None, today=now.date()
    )
    lock = release_services.save_release_lock(tmp_path / ".plantops" / "locks", made.id, made.text)
    assert release_services.register_release(lock, author="alice", db=db_url, now=now)
    return made.id


def test_matrix_approve_and_ledger(tmp_path: Path, rm_provider: str) -> None:
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{tmp_path}/state.db"
    release = registered_release(tmp_path, db_url)
    env = {
        "PLANTOPS_OIDC_ISSUER": rm_provider,
        "PLANTOPS_OIDC_CLIENT_ID": "plantops-browser",
        "PLANTOPS_OIDC_CLIENT_SECRET": "browser-test-secret",
        "PLANTOPS_SESSION_SECRET": "y" * 32,
    }
    proc = start_serve(EXAMPLE, db_url, tmp_path, env=env, name="matrix")
    base = proc.url.replace("127.0.0.1", "localhost")
    console: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.on(
                "console",
                lambda m: console.append(f"{page.url}: {m.text}")
                if m.type == "error" and page.url.startswith(base)
                else None,
            )
            page.route(
                "**/*",
                lambda route: route.abort()
                if (urlsplit(route.request.url).hostname or "") not in LOOPBACK
                else route.continue_(),
            )
            page.goto(base + "/")
            page.click("#signin")
            page.click("button[value='rm@acme.example']")
            page.wait_for_url(base + "/")
            page.click("nav a[href='/promotions']")
            row = page.locator(f"tr[data-release='{release}']")
            staging = row.locator("td[data-stage='staging']")
            assert "no approval yet" in staging.inner_text()
            assert row.locator("td[data-stage='prod']").get_attribute("data-state") == "blocked"
            page.screenshot(path=str(tmp_path / "matrix.png"), full_page=True)
            staging.locator("input[name=comment]").fill("QA run 42 green")
            staging.locator("form.approve button").click()
            page.wait_for_url(base + "/promotions?*")
            assert "approved staging" in page.inner_text("#done")
            approved = page.locator(f"tr[data-release='{release}'] td[data-stage='staging']")
            text = approved.locator(".approvals").inner_text()
            assert "rm@acme.example" in text and "release-manager" in text
            assert "QA run 42 green" in text
            assert approved.locator("form.approve").count() == 0  # approved once
            page.screenshot(path=str(tmp_path / "matrix-approved.png"), full_page=True)
            page.click("nav a[href='/ledger']")
            assert "verify: OK" in page.inner_text("#verify")
            last = page.locator("#ledger tbody tr").last
            assert "approval" in last.inner_text() and "rm@acme.example" in last.inner_text()
            page.screenshot(path=str(tmp_path / "ledger.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)
    assert not console, console
    assert (tmp_path / "matrix-approved.png").stat().st_size > 0

"""Assembling the FastAPI application: middleware, routers, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from plantops import __version__
from plantops.server import api, events, ledger, oidc, pages, problems, webhooks
from plantops.server.state import ServerSettings, ServerState

MAX_BODY_BYTES = problems.MAX_BODY_BYTES
STATIC = Path(__file__).parent / "static"
# Pages use no inline script and no other origin (plants are often offline).
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(settings: ServerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.plantops.start_delivery()
        try:
            yield
        finally:
            app.state.plantops.close()

    app = FastAPI(
        title="plantops control plane",
        version=__version__,
        description="Fleet, plan, cost, policy, backups, releases and events of a plantops fleet. "
        "Errors are RFC 9457 problem documents (application/problem+json).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.plantops = ServerState(settings)
    problems.install(app)
    problems.install_openapi(app)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return problems.problem(
                request, 413, f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            )
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="plantops_session",
        max_age=8 * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    # Bodies sent without Content-Length (chunked) are counted as they arrive: FastAPI's
    # per-route limit (starlette.middleware.body_limit.RequestBodyLimitMiddleware around
    # each route) raises a 413 HTTPException once over, inside the exception handlers,
    # so it is answered as a problem document like every other error. Not the app-wide
    # ``FastAPI(max_body_size=)``: that one sits outside the handlers and answers 413 in
    # plain text.
    for router in (
        api.router,
        ledger.router,
        events.router,
        webhooks.router,
        oidc.router,
        pages.router,
    ):
        app.include_router(router, max_body_size=MAX_BODY_BYTES)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

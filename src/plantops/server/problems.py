"""Every error the server returns is an RFC 9457 problem document.

``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and
``instance`` (the request path). Unhandled exceptions become a 500 whose detail says
nothing of the code (no traceback, no message: those may carry secrets or paths).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantops.errors import (
    GateFailed,
    InfrastructureError,
    NotFound,
    NotPermitted,
    PlantopsError,
    SpecError,
    UserError,
)

PROBLEM_JSON = "application/problem+json"
MAX_BODY_BYTES = 1024 * 1024
TYPE_BASE = "https://plantops.dev/problems/"
log = logging.getLogger("plantops.server")


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members allowed)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


class FieldError(BaseModel):
    location: str
    message: str


class ValidationProblem(Problem):
    """A 422: the problem document with each field that failed."""

    errors: list[FieldError] = []


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses: problem documents (moved to
    ``application/problem+json`` by :func:`install_openapi`)."""
    return {
        s: {
            "model": ValidationProblem if s == 422 else Problem,
            "description": HTTPStatus(s).phrase,
        }
        for s in statuses
    }


# Every route may answer these (bad input, credentials, role or scope, unknown
# resource, an oversized body, validation, and the 500 that says nothing).
COMMON_PROBLEMS = problem_responses(400, 401, 403, 404, 413, 422, 500)
# Writes may also meet a gate that says no, or a backing service down.
WRITE_PROBLEMS = problem_responses(409, 503)


class ProblemError(Exception):
    """Raised by routes for a 4xx with a clear message."""

    def __init__(self, status: int, detail: str, *, slug: str = "", **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
        self.extra = extra


def problem(
    request: Request, status: int, detail: str, *, slug: str = "", **extra: Any
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="plantops"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_openapi(app: FastAPI) -> None:
    """The OpenAPI document, with every 4xx/5xx body under ``application/problem+json``
    (FastAPI files a response model under the route's JSON media type)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for operations in doc.get("paths", {}).values():
                for operation in operations.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[:1] in "45" and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
            app.openapi_schema = doc
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented override


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem(request, exc.status, exc.detail, slug=exc.slug, **exc.extra)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}; see /openapi.json for the routes"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 413:  # the body limit, counting a chunked body as it came
            detail = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
        response = problem(request, exc.status_code, detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "location": ".".join(str(x) for x in e.get("loc", ())),
                "message": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
        return problem(request, 422, detail, slug="validation-error", errors=errors)

    async def on_plantops(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PlantopsError)
        if isinstance(exc, SpecError):
            return problem(request, 422, str(exc), slug="spec-error")
        if isinstance(exc, NotPermitted):
            return problem(request, 403, str(exc), slug="forbidden")
        if isinstance(exc, NotFound):
            return problem(request, 404, str(exc), slug="not-found")
        if isinstance(exc, UserError):
            return problem(request, 400, str(exc), slug="bad-input")
        if isinstance(exc, GateFailed):
            return problem(request, 409, str(exc), slug="gate-failed")
        if isinstance(exc, InfrastructureError):
            log.error("infrastructure error on %s: %s", request.url.path, exc)
            return problem(request, 503, "a backing service failed; see the server log")
        return problem(request, 500, "internal error; see the server log")

    async def on_unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal error; see the server log")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(PlantopsError, on_plantops)
    app.add_exception_handler(Exception, on_unhandled)

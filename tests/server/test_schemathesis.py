"""schemathesis against the server's own OpenAPI document, in-process over ASGI: every
GET, POST and DELETE route, called with a platform engineer's token, answers no 5xx,
and what it answers matches the schema (status code documented, content type, body;
every error a problem+json document of the documented shape)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import Server

# Examples per operation: writes render the fleet or build a release, so fewer; fewer
# again for requests the schema forbids (they stop at validation).
EXAMPLES = {
    GenerationMode.POSITIVE: {"GET": 25, "POST": 8, "DELETE": 10},
    GenerationMode.NEGATIVE: {"GET": 12, "POST": 8, "DELETE": 10},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# `GET /events` without `once` is a Server-Sent Events stream that stays open: it is
# called here with `once=true` only (send what is there, then close).
STREAM = "/events"


def operations(server: Server) -> list[Any]:
    """The app's own OpenAPI document (``app.openapi()``, what ``/openapi.json`` serves).

    Loaded from the app rather than with ``schemathesis.openapi.from_asgi``: that one
    calls through ``starlette_testclient``, which leaks anyio streams under the anyio of
    this environment; the requests go through Starlette's own TestClient instead."""
    schema = schemathesis.openapi.from_dict(server.app.openapi())
    found = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.method.upper() in EXAMPLES[GenerationMode.POSITIVE]:
            found.append(op)
    return found


def send(server: Server, case: Any, token: str) -> Any:
    kwargs = case.as_transport_kwargs(base_url="https://testserver")
    kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {token}"}
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content"] = data
    kwargs.pop("auth", None)
    assert not kwargs.pop("cookies", None), "the schema declares no cookie parameter"
    return server.client.request(**kwargs)


def as_schemathesis(response: Any) -> schemathesis.Response:
    """The TestClient's response (``httpx2``, which ``Response.from_any`` does not know)
    as schemathesis's own, the way its ``Response.from_httpx`` builds one."""
    request = requests.Request(
        method=response.request.method,
        url=str(response.request.url),
        headers=dict(response.request.headers),
        data=response.request.content,
    ).prepare()
    return schemathesis.Response(
        status_code=response.status_code,
        headers={k: response.headers.get_list(k) for k in response.headers},
        content=response.content,
        request=request,
        elapsed=response.elapsed.total_seconds(),
        verify=True,
        message=response.reason_phrase,
        http_version=response.http_version,
        encoding=response.encoding,
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_answers_what_the_schema_says(server: Server, mode: GenerationMode) -> None:
    """Positive: requests the schema allows. Negative: requests it forbids (wrong types,
    out-of-range cursors, unknown body fields), which must get a documented 4xx problem
    document, never a 5xx."""
    token = server.tokens["platform-engineer"]
    ops = operations(server)
    names = {f"{op.method.upper()} {op.path}" for op in ops}
    assert names >= {"GET /api/fleet", "POST /api/plan", "POST /api/releases", "GET /events"}
    failures: list[str] = []
    calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    if mode is GenerationMode.NEGATIVE:
        # only a query or a body can be made to break the schema; left out: operations
        # without either, and those with a path parameter (schemathesis finds no
        # negative case for a string path parameter next to a body: Unsatisfiable)
        ops = [op for op in ops if (len(op.query) or len(op.body)) and not len(op.path_parameters)]
        names = {f"{op.method.upper()} {op.path}" for op in ops}
        assert names >= {"GET /api/ledger", "POST /api/plan", "POST /api/tokens"}
    for op in ops:

        @hypothesis.settings(
            max_examples=EXAMPLES[mode][op.method.upper()],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @hypothesis.given(case=op.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            name = f"{case.operation.method.upper()} {case.operation.path}"
            if case.operation.path == STREAM:
                case.query = {**(case.query or {}), "once": "true"}
            response = send(server, case, token)
            calls[name] += 1
            statuses[response.status_code] += 1
            case.validate_response(as_schemathesis(response), checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collected: one run names them all
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert set(calls) == names, calls
    assert sum(calls.values()) >= 5 * len(ops), calls
    if mode is GenerationMode.POSITIVE:
        # the generated requests reached the routes, not only the validation layer
        assert sum(n for s, n in statuses.items() if 200 <= s < 300) >= len(ops), statuses
    else:
        assert statuses[422] > 0, statuses


def test_every_operation_documents_its_problems(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail", "instance"}
    assert "errors" in schemas["ValidationProblem"]["properties"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "413", "422", "500"):
                content = operation["responses"][status]["content"]
                assert set(content) == {"application/problem+json"}, (method, path, status)
                ref = content["application/problem+json"]["schema"]["$ref"]
                want = "ValidationProblem" if status == "422" else "Problem"
                assert ref == f"#/components/schemas/{want}", (method, path, status)

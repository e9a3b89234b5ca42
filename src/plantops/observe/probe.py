"""Synthetic checks of an Odoo deployment through its ingress, as a user and a release
gate see it: ``plantops probe run``.

Every check mirrors what Odoo really serves (the citations are at each check). The
prober never hangs and never raises for a bad target: each check has a hard deadline
(``ProbeSettings.deadline``) on top of httpx's own timeouts, failures are data
(``CheckResult.status == "fail"`` with the reason), and a concurrency limit bounds how
many targets are probed at once so one slow target delays nobody but itself.

The JSON form (``ProbeRun.as_dict``, schema ``plantops.io/probe-run/v1``) is what the
release smoke gate reads; docs/observability.md documents it field by field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
import time
import xmlrpc.client
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

SCHEMA = "plantops.io/probe-run/v1"
Status = Literal["pass", "fail", "skip"]
CHECKS = ("health", "login", "version", "xmlrpc", "business", "dbmanager", "tls")

# odoo/http.py Request.csrf_token: f"{hm}o{max_ts}", hm an HMAC-SHA1 hex digest.
CSRF_INPUT = re.compile(r"<input[^>]*\bname=\"csrf_token\"[^>]*>", re.IGNORECASE)
CSRF_VALUE = re.compile(r"\bvalue=\"([0-9a-f]{40}o[0-9]*)\"")


@dataclass(frozen=True)
class ProbeCredentials:
    """The probe user. The password is resolved by the caller from a secret reference
    (an environment variable or a file), never from the fleet spec."""

    login: str
    password: str = field(repr=False)
    model: str = "stock.picking"


@dataclass(frozen=True)
class ProbeTarget:
    name: str
    url: str
    database: str | None = None
    expected_version: str | None = None
    plant: str | None = None
    environment: str | None = None
    tier: str | None = None
    credentials: ProbeCredentials | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "database": self.database,
            "expected_version": self.expected_version,
            "plant": self.plant,
            "environment": self.environment,
            "tier": self.tier,
        }


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float = 5.0
    """Seconds for connect, each read and each write of one attempt (httpx.Timeout)."""
    retries: int = 2
    """Further attempts after a transport error or a 5xx; a wrong answer is not retried."""
    backoff: float = 0.5
    """First pause between attempts; doubled after each."""
    concurrency: int = 20
    """Targets probed at once."""
    cert_min_days: int = 14
    """The tls check fails when the certificate expires sooner."""
    ca_file: str | None = None
    """Trust this CA bundle instead of the system's (a private CA, or tests)."""
    checks: tuple[str, ...] = CHECKS

    @property
    def deadline(self) -> float:
        """Hard cap of one check, all attempts and pauses included."""
        pauses = sum(self.backoff * 2.0**i for i in range(self.retries))
        # A slow-dripping server resets httpx's read timeout with every byte, so a whole
        # attempt may take longer than `timeout`: allow each attempt twice its timeout.
        return (self.retries + 1) * 2 * self.timeout + pauses


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    latency_ms: float
    attempts: int
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 1),
            "attempts": self.attempts,
            "detail": self.detail,
            "data": self.data,
        }


@dataclass(frozen=True)
class TargetResult:
    target: ProbeTarget
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.target.as_dict(),
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class ProbeRun:
    started_at: dt.datetime
    duration_ms: float
    targets: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    def counts(self) -> dict[str, int]:
        statuses = [c.status for t in self.targets for c in t.checks]
        return {
            "targets": len(self.targets),
            "targets_failed": sum(not t.ok for t in self.targets),
            "checks": len(statuses),
            "passed": statuses.count("pass"),
            "failed": statuses.count("fail"),
            "skipped": statuses.count("skip"),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_ms": round(self.duration_ms, 1),
            "ok": self.ok,
            "summary": self.counts(),
            "targets": [t.as_dict() for t in self.targets],
        }


class CheckFailed(Exception):
    """The target answered, wrongly: a failure that retrying will not change."""

    def __init__(self, detail: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.data = data or {}


class Retryable(Exception):
    """A 5xx answer: the next attempt may get a healthy worker."""


Outcome = tuple[str, dict[str, Any]]  # (detail, data) of a passed check


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__context__ or exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: {cause.verify_message or cause}"
        text = str(exc) or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return f"TLS: {text}"
        return f"cannot connect: {text}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or exc}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Prober:
    """Runs the checks of many targets with one shared httpx client."""

    def __init__(
        self,
        settings: ProbeSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._sleep = sleep
        self._clock = clock

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    async def run(self, targets: Sequence[ProbeTarget]) -> ProbeRun:
        started = dt.datetime.now(dt.UTC)
        t0 = self._clock()
        s = self.settings
        sem = asyncio.Semaphore(max(1, s.concurrency))
        timeout = httpx.Timeout(s.timeout)
        limits = httpx.Limits(max_connections=max(1, s.concurrency) * 2)
        async with httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            verify=self.ssl_context(),
            follow_redirects=False,
            transport=self._transport,
            headers={"User-Agent": "plantops-probe/1"},
        ) as client:

            async def one(target: ProbeTarget) -> TargetResult:
                async with sem:
                    return await self.probe(client, target)

            results = await asyncio.gather(*(one(t) for t in targets))
        return ProbeRun(started, (self._clock() - t0) * 1000, tuple(results))

    async def probe(self, client: httpx.AsyncClient, target: ProbeTarget) -> TargetResult:
        checks: dict[str, Callable[[], Awaitable[Outcome]]] = {
            "health": lambda: self._health(client, target),
            "login": lambda: self._login(client, target),
            "version": lambda: self._version(client, target),
            "xmlrpc": lambda: self._xmlrpc_version(client, target),
            "business": lambda: self._business(client, target),
            "dbmanager": lambda: self._dbmanager(client, target),
            "tls": lambda: self._tls(target),
        }
        wanted = [c for c in CHECKS if c in self.settings.checks]
        results = await asyncio.gather(*(self._timed(name, checks[name]) for name in wanted))
        return TargetResult(target, tuple(results))

    async def _timed(self, name: str, fn: Callable[[], Awaitable[Outcome]]) -> CheckResult:
        s = self.settings
        t0 = self._clock()
        attempts = 0

        async def attempt_all() -> Outcome:
            nonlocal attempts
            pause = s.backoff
            while True:
                attempts += 1
                try:
                    return await fn()
                except (httpx.TransportError, Retryable):
                    if attempts > s.retries:
                        raise
                await self._sleep(pause)
                pause *= 2

        def ms() -> float:
            return (self._clock() - t0) * 1000

        try:
            detail, data = await asyncio.wait_for(attempt_all(), timeout=s.deadline)
        except _Skip as exc:
            return CheckResult(name, "skip", ms(), attempts, str(exc))
        except CheckFailed as exc:
            return CheckResult(name, "fail", ms(), attempts, str(exc), exc.data)
        except TimeoutError:
            return CheckResult(name, "fail", ms(), attempts, f"no answer within {s.deadline:g} s")
        except Retryable as exc:
            return CheckResult(name, "fail", ms(), attempts, str(exc))
        except (httpx.HTTPError, OSError, ssl.SSLError, ValueError) as exc:
            return CheckResult(name, "fail", ms(), attempts, _describe(exc))
        return CheckResult(name, "pass", ms(), attempts, detail, data)

    # --- the checks --------------------------------------------------------------

    @staticmethod
    def _url(target: ProbeTarget, path: str) -> str:
        return target.url.rstrip("/") + path

    @staticmethod
    def _status(resp: httpx.Response, expected: tuple[int, ...] = (200,)) -> None:
        if resp.status_code >= 500:
            raise Retryable(f"HTTP {resp.status_code} from {resp.request.url.path}")
        if resp.status_code not in expected:
            where = resp.headers.get("location")
            extra = f" (to {where})" if where else ""
            raise CheckFailed(
                f"HTTP {resp.status_code}{extra} from {resp.request.url.path}, "
                f"expected {' or '.join(map(str, expected))}",
                {"http_status": resp.status_code},
            )

    async def _health(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        # odoo/addons/web/controllers/home.py Home.health: auth="none", answers
        # {"status": "pass"} as application/json whether a database is bound or not.
        resp = await client.get(self._url(target, "/web/health"))
        self._status(resp)
        try:
            body = resp.json()
        except ValueError as exc:
            raise CheckFailed(f"/web/health did not answer JSON: {resp.text[:80]!r}") from exc
        if not isinstance(body, dict) or body.get("status") != "pass":
            raise CheckFailed(f"/web/health answered {body!r}, expected status 'pass'")
        return "status pass", {"http_status": resp.status_code}

    async def _login(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        # odoo/addons/web/controllers/home.py Home.web_login: ensure_db() redirects to
        # the database selector when no database is bound (a broken dbfilter), else the
        # web.login template renders <input type="hidden" name="csrf_token" .../> with
        # odoo/http.py Request.csrf_token.
        params = {"db": target.database} if target.database else None
        resp = await client.get(self._url(target, "/web/login"), params=params)
        self._status(resp)
        tag = CSRF_INPUT.search(resp.text)
        if tag is None:
            raise CheckFailed("the login page has no csrf_token field")
        token = CSRF_VALUE.search(tag.group(0))
        if token is None:
            raise CheckFailed(f"the login page's csrf_token is not Odoo's shape: {tag.group(0)}")
        return "login page with CSRF token", {"http_status": resp.status_code}

    async def _jsonrpc(
        self, client: httpx.AsyncClient, target: ProbeTarget, path: str, params: dict[str, Any]
    ) -> Any:
        # odoo/http.py JsonRPCDispatcher: a JSON-RPC 2.0 envelope in and out; an error is
        # HTTP 200 with {"error": {"code": 200|100|404, "message", "data": {"name", ...}}}.
        payload = {"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}
        resp = await client.post(self._url(target, path), json=payload)
        self._status(resp)
        try:
            body = resp.json()
        except ValueError as exc:
            raise CheckFailed(f"{path} did not answer JSON: {resp.text[:80]!r}") from exc
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            raise CheckFailed(f"{path} answered no JSON-RPC 2.0 envelope: {str(body)[:120]}")
        if "error" in body:
            err = body["error"] or {}
            data = err.get("data") or {}
            raise CheckFailed(
                f"{path}: JSON-RPC error {err.get('code')} {err.get('message')}: "
                f"{data.get('name', '')} {data.get('message', '')}".rstrip(),
                {"rpc_error": {"code": err.get("code"), "name": data.get("name")}},
            )
        return body.get("result")

    def _compare_version(self, target: ProbeTarget, result: Any, where: str) -> Outcome:
        # odoo/service/common.py exp_version: RPC_VERSION_1 = server_version (e.g.
        # "17.0+e"), server_version_info, server_serie ("17.0"), protocol_version 1.
        if not isinstance(result, dict) or "server_serie" not in result:
            raise CheckFailed(f"{where} answered {str(result)[:120]}, not Odoo's version info")
        data = {
            "server_version": result.get("server_version"),
            "server_serie": result.get("server_serie"),
        }
        if target.expected_version and result["server_serie"] != target.expected_version:
            raise CheckFailed(
                f"{where}: server_serie {result['server_serie']!r} "
                f"({result.get('server_version')}), the release says {target.expected_version!r}",
                data,
            )
        return f"Odoo {result.get('server_version')}", data

    async def _version(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        # odoo/addons/web/controllers/webclient.py WebClient.version_info: type="jsonrpc",
        # auth="none", returns odoo.service.common.exp_version().
        result = await self._jsonrpc(client, target, "/web/webclient/version_info", {})
        return self._compare_version(target, result, "version_info")

    async def _xmlrpc(
        self, client: httpx.AsyncClient, target: ProbeTarget, service: str, method: str, *args: Any
    ) -> Any:
        # odoo/addons/base/controllers/rpc.py RPC.xmlrpc_2: POST /xmlrpc/2/<service>, faults
        # with int codes (3 AccessDenied, 4 AccessError, 2 warning, 1 application error).
        body = xmlrpc.client.dumps(args, method, allow_none=False)
        resp = await client.post(
            self._url(target, f"/xmlrpc/2/{service}"),
            content=body.encode(),
            headers={"Content-Type": "text/xml"},
        )
        self._status(resp)
        try:
            (value,), _ = xmlrpc.client.loads(resp.text)
        except xmlrpc.client.Fault as fault:
            first = str(fault.faultString).strip().splitlines()
            raise CheckFailed(
                f"XML-RPC {service}.{method} fault {fault.faultCode}: "
                f"{first[-1] if first else ''}",
                {"fault_code": fault.faultCode},
            ) from fault
        except Exception as exc:  # expat raises its own error types on a non-XML body
            raise CheckFailed(
                f"XML-RPC {service}.{method} answered no XML-RPC response: {resp.text[:80]!r}"
            ) from exc
        return value

    async def _xmlrpc_version(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        result = await self._xmlrpc(client, target, "common", "version")
        return self._compare_version(target, result, "xmlrpc common.version")

    async def _business(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        creds = target.credentials
        if creds is None:
            raise _Skip("no probe user given (--probe-login and a password reference)")
        if not target.database:
            raise _Skip("no database known for this target")
        # odoo/service/common.py exp_authenticate -> res.users.authenticate: the uid, or
        # False for a wrong login or password (no fault).
        uid = await self._xmlrpc(
            client, target, "common", "authenticate", target.database, creds.login,
            creds.password, {},
        )  # fmt: skip
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise CheckFailed(f"authenticate as {creds.login!r} on {target.database!r} refused")
        # odoo/service/model.py execute_kw(db, uid, password, model, method, args, kw).
        count = await self._xmlrpc(
            client, target, "object", "execute_kw", target.database, uid, creds.password,
            creds.model, "search_count", [[]], {},
        )  # fmt: skip
        if not isinstance(count, int) or isinstance(count, bool):
            raise CheckFailed(f"search_count on {creds.model} answered {count!r}")
        return f"{creds.model}: {count} record(s)", {
            "uid": uid,
            "model": creds.model,
            "count": count,
        }

    async def _dbmanager(self, client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
        # odoo/addons/web/controllers/database.py Database.manager creates, drops and
        # restores databases with the master password; the ingress must not route it
        # (render/kubernetes/traefik.py DATABASE_MANAGER).
        resp = await client.get(self._url(target, "/web/database/manager"))
        if resp.status_code in (403, 404):
            return f"blocked (HTTP {resp.status_code})", {"http_status": resp.status_code}
        raise CheckFailed(
            f"/web/database/manager answered HTTP {resp.status_code} through the ingress; "
            "it must be 403 or 404",
            {"http_status": resp.status_code},
        )

    async def _tls(self, target: ProbeTarget) -> Outcome:
        parts = urlsplit(target.url)
        if parts.scheme != "https" or not parts.hostname:
            raise _Skip("not an https URL")
        host, port = parts.hostname, parts.port or 443
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.ssl_context(), server_hostname=host),
            timeout=self.settings.timeout,
        )
        try:
            ssl_obj = writer.get_extra_info("ssl_object")
            cert = ssl_obj.getpeercert() if ssl_obj is not None else None
        finally:
            writer.close()
        if not cert or "notAfter" not in cert:
            raise CheckFailed("no peer certificate")
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.UTC)
        days = (expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400
        data = {"days_left": round(days, 1), "not_after": expires.isoformat(timespec="seconds")}
        if days < self.settings.cert_min_days:
            raise CheckFailed(
                f"certificate expires in {days:.1f} days (minimum {self.settings.cert_min_days})",
                data,
            )
        return f"certificate valid for {days:.0f} more days", data


class _Skip(Exception):
    """The check does not apply to this target."""


def run_probes(targets: Sequence[ProbeTarget], settings: ProbeSettings) -> ProbeRun:
    """Probe every target; the synchronous entry point of the CLI."""
    return asyncio.run(Prober(settings).run(targets))


__all__ = [
    "CHECKS",
    "SCHEMA",
    "CheckResult",
    "ProbeCredentials",
    "ProbeRun",
    "ProbeSettings",
    "ProbeTarget",
    "Prober",
    "TargetResult",
    "run_probes",
]

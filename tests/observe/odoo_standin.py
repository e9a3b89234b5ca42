"""A stand-in Odoo HTTP server for the prober's tests: the paths, envelopes and error
shapes of real Odoo (each handler cites the source it reproduces), plus switches for the
ways a deployment goes wrong (500s, hangs, slow answers, a wrong release, an exposed
database manager). It listens on 127.0.0.1 only, optionally with TLS."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import json
import ssl
import threading
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# odoo/release.py for a 17.0 community build; odoo/service/common.py RPC_VERSION_1.
VERSION_17 = {
    "server_version": "17.0",
    "server_version_info": [17, 0, 0, "final", 0, ""],
    "server_serie": "17.0",
    "protocol_version": 1,
}
LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Odoo</title></head><body class="o_web_client">
<form class="oe_login_form" role="form" method="post" action="/web/login">
<input type="hidden" name="csrf_token" value="{token}"/>
<div class="mb-3 field-login"><input type="text" name="login" id="login" required="required"/></div>
<div class="mb-3"><input type="password" name="password" id="password" required="required"/></div>
<input type="hidden" name="redirect"/>
<div class="clearfix oe_login_buttons"><button type="submit" class="btn btn-primary">Log in</button></div>
</form></body></html>
"""
NOT_FOUND_PAGE = "<!doctype html><title>404 Not Found</title><h1>Not Found</h1>"


@dataclass
class Behaviour:
    version: dict[str, Any] = field(default_factory=lambda: dict(VERSION_17))
    database: str = "acme"
    users: dict[str, tuple[str, int]] = field(default_factory=lambda: {"probe": ("s3cret", 7)})
    counts: dict[str, int] = field(default_factory=lambda: {"stock.picking": 42})
    status: dict[str, int] = field(default_factory=dict)
    """path -> HTTP status forced on it (500 for an Odoo worker crash)."""
    fail_first: dict[str, int] = field(default_factory=dict)
    """path -> how many first requests answer 500 before it recovers."""
    delay: dict[str, float] = field(default_factory=dict)
    """path -> seconds before answering (a slow worker, or a hang when long)."""
    dbmanager_exposed: bool = False
    """False: the ingress blocks /web/database (404, as Traefik with no route)."""
    bound_db: bool = True
    """False: no database matched the host (dbfilter), /web/login redirects to the selector."""
    drip: dict[str, float] = field(default_factory=dict)
    """path -> seconds between single bytes of a never-ending body (a stuck proxy)."""
    version_error: bool = False
    """version_info answers a JSON-RPC error envelope (an exception in the controller)."""


class OdooStandIn:
    def __init__(self, behaviour: Behaviour | None = None, *, tls_dir: Path | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.hits: Counter[str] = Counter()
        self._stop = threading.Event()
        self.ca_file: Path | None = None
        handler = type("Handler", (_Handler,), {"standin": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls_dir is not None:
            cert, key = make_self_signed(tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.ca_file = cert
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OdooStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)


def make_self_signed(directory: Path, days: int = 90) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odoo-standin")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    standin: OdooStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: str | bytes, content_type: str, **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, payload: Any, status: int = 200) -> None:
        self._send(status, json.dumps(payload), "application/json")

    def _before(self) -> bool:
        """Forced statuses and delays; True when the request has been answered."""
        path = self.path.split("?", 1)[0]
        b = self.standin.behaviour
        self.standin.hits[path] += 1
        if path in b.delay:
            self.standin.wait(b.delay[path])
        if path in b.drip:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            while not self.standin._stop.is_set():
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    break
                self.standin.wait(b.drip[path])
            return True
        if self.standin.hits[path] <= b.fail_first.get(path, 0) or b.status.get(path) == 500:
            # werkzeug's InternalServerError page, as Odoo's WSGI app answers an
            # unhandled error on an http route.
            self._send(500, "<title>500 Internal Server Error</title>", "text/html")
            return True
        if path in b.status:
            self._send(b.status[path], NOT_FOUND_PAGE, "text/html")
            return True
        return False

    def do_GET(self) -> None:
        if self._before():
            return
        path = self.path.split("?", 1)[0]
        b = self.standin.behaviour
        if path == "/web/health":
            # odoo/addons/web/controllers/home.py Home.health
            self._send(
                200, json.dumps({"status": "pass"}), "application/json", Cache_Control="no-store"
            )
        elif path == "/web/login":
            if not b.bound_db:
                # odoo/addons/web/controllers/utils.py ensure_db: no db -> selector
                self._send(303, "", "text/html", Location="/web/database/selector")
                return
            # odoo/http.py Request.csrf_token: HMAC-SHA1(secret, sid + max_ts) 'o' max_ts
            max_ts = int(time.time() + 31536000)
            hm = hmac.new(b"secret", f"sid{max_ts}".encode(), hashlib.sha1).hexdigest()
            self._send(
                200,
                LOGIN_PAGE.format(token=f"{hm}o{max_ts}"),
                "text/html; charset=utf-8",
                X_Frame_Options="SAMEORIGIN",
            )
        elif path.startswith("/web/database/") and b.dbmanager_exposed:
            self._send(200, "<title>Odoo</title><h1>Manage databases</h1>", "text/html")
        else:
            self._send(404, NOT_FOUND_PAGE, "text/html")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self._before():
            return
        path = self.path.split("?", 1)[0]
        if path == "/web/webclient/version_info":
            self._version_info(body)
        elif path.startswith("/xmlrpc/2/"):
            self._xmlrpc(path.rsplit("/", 1)[1], body)
        else:
            self._send(404, NOT_FOUND_PAGE, "text/html")

    def _version_info(self, body: bytes) -> None:
        b = self.standin.behaviour
        # odoo/http.py JsonRPCDispatcher.dispatch: the request must be a JSON object
        request = json.loads(body)
        rid = request.get("id")
        if b.version_error:
            # odoo/http.py JsonRPCDispatcher.handle_error + serialize_exception
            self._json(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "error": {
                        "code": 200,
                        "message": "Odoo Server Error",
                        "data": {
                            "name": "builtins.KeyError",
                            "debug": "Traceback (most recent call last):\n...",
                            "message": "'server_serie'",
                            "arguments": ["server_serie"],
                            "context": {},
                        },
                    },
                }
            )
            return
        self._json({"jsonrpc": "2.0", "id": rid, "result": b.version})

    def _xmlrpc(self, service: str, body: bytes) -> None:
        params, method = xmlrpc.client.loads(body)
        try:
            result = self._dispatch(service, method, params)
            out = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
        except xmlrpc.client.Fault as fault:
            # odoo/addons/base/controllers/rpc.py xmlrpc_handle_exception_int
            out = xmlrpc.client.dumps(fault, methodresponse=True)
        self._send(200, out, "text/xml; charset=utf-8")

    def _dispatch(self, service: str, method: str, params: tuple[Any, ...]) -> Any:
        b = self.standin.behaviour
        if service == "common" and method == "version":
            return b.version
        if service == "common" and method == "authenticate":
            db, login, password, _env = params
            user = b.users.get(login)
            # odoo/addons/base/models/res_users.py Users._login raises AccessDenied on a
            # wrong login or password and authenticate does not catch it: over
            # /xmlrpc/2 that is fault 3 (rpc.py xmlrpc_handle_exception_int).
            if db != b.database or user is None or user[0] != password:
                raise xmlrpc.client.Fault(3, "Access Denied")
            return user[1]
        if service == "object" and method == "execute_kw":
            db, uid, password, model, meth, args, *_kw = params
            known = {u: p for p, u in b.users.values()}
            if db != b.database or known.get(uid) != password:
                raise xmlrpc.client.Fault(3, "Access Denied")
            if model not in b.counts:
                raise xmlrpc.client.Fault(
                    1, f"Traceback (most recent call last):\n...\nKeyError: '{model}'\n"
                )
            if meth != "search_count":
                raise xmlrpc.client.Fault(1, f"AttributeError: no method {meth}")
            return b.counts[model]
        raise xmlrpc.client.Fault(1, f"Exception: Method not found: {method}")

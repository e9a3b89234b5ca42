"""The VM stack's transport: a real PostgreSQL and a real Redis configured from what
plantops renders, with TLS, and real libpq / redis-cli clients."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql

from plantops.render.compose.tls import (
    INTERNAL_CA,
    PG_TLS_CERT,
    PG_TLS_KEY,
    REDIS_TLS_CERT,
    REDIS_TLS_KEY,
    postgres_tls_settings,
    render_pg_hba,
)
from plantops.render.dbinit import pgpass_script
from plantops.render.kubernetes.redis import redis_auth_script
from plantops.render.odoo_conf import session_redis_url_script
from tests.fixtures.postgres import free_port, make_shared_dir, start_cluster
from tests.render.conftest import Rendered

HOSTILE = 'p:w\\it\'s "x" $y@/%2F#?'


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, sans: list[str]
) -> tuple[bytes, bytes, x509.Name, ec.EllipticCurvePrivateKey]:
    """(cert PEM, key PEM, name, key); self-signed CA when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(subject)
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
    )
    if sans:
        alt: list[x509.GeneralName] = []
        for s in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                alt.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), name, key


@pytest.fixture
def secrets() -> Iterator[Path]:
    """A secrets directory as provisioning writes it: CA, server certs, keys per owner."""
    base = make_shared_dir("plantops-tls-")
    ca_pem, _ca_key_pem, ca_name, ca_key = _issue("internal CA", None, [])
    other_ca, *_ = _issue("another CA", None, [])
    pg_cert, pg_key, *_ = _issue("postgres", (ca_name, ca_key), ["postgres"])
    r_cert, r_key, *_ = _issue("redis", (ca_name, ca_key), ["redis", "127.0.0.1"])
    files = {
        INTERNAL_CA: ca_pem,
        "other_ca": other_ca,
        PG_TLS_CERT: pg_cert,
        PG_TLS_KEY: pg_key,
        REDIS_TLS_CERT: r_cert,
        REDIS_TLS_KEY: r_key,
    }
    for fname, data in files.items():
        (base / fname).write_bytes(data)
        (base / fname).chmod(0o644)
    # check_ssl_key_file: owned by the server's user and 0600.
    (base / PG_TLS_KEY).chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(base / PG_TLS_KEY, "postgres", "postgres")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _vm_files(example: Rendered) -> dict[str, str]:
    prefix = next(p.rsplit("/", 1)[0] for p in example.files if p.endswith("/pg_hba.conf"))
    return {p[len(prefix) + 1 :]: t for p, t in example.files.items() if p.startswith(prefix)}


def test_vm_postgres_accepts_only_verified_tls(example: Rendered, secrets: Path) -> None:
    files = _vm_files(example)
    assert files["pg_hba.conf"] == render_pg_hba()
    assert "db_sslmode = verify-full" in files["odoo.conf"]
    settings = {k: f"'{v}'" for k, v in postgres_tls_settings(str(secrets)).items()}
    hba = settings.pop("hba_file")
    assert hba == "'/etc/postgresql/pg_hba.conf'"
    assert "- ssl=on" in files["compose.yaml"]
    assert f"- ssl_key_file=/run/secrets/{PG_TLS_KEY}" in files["compose.yaml"]
    base = make_shared_dir("plantops-pg-tls-")
    cluster = start_cluster(base, settings, port=free_port())
    try:
        with cluster.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE odoo_login LOGIN PASSWORD {}").format(sql.Literal(HOSTILE))
            )
        (cluster.datadir / "pg_hba.conf").write_text(render_pg_hba())
        with cluster.connect() as conn:
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        pw = secrets / "odoo_db_password"
        pw.write_text(HOSTILE + "\n")
        passfile = secrets / "pgpass"
        subprocess.run(["sh", "-c", pgpass_script(str(pw), str(passfile))], check=True)
        assert passfile.stat().st_mode & 0o077 == 0

        def connect(host: str, ca: str, mode: str = "verify-full") -> str:
            with psycopg.connect(
                host=host,
                hostaddr="127.0.0.1",
                port=cluster.port,
                dbname="postgres",
                user="odoo_login",
                sslmode=mode,
                sslrootcert=str(secrets / ca),
                passfile=str(passfile),
            ) as conn:
                row = conn.execute(
                    "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                ).fetchone()
                return str(row[0]) if row else "?"

        # Odoo's view: db_host and db_sslmode from odoo.conf, the CA as $PGSSLROOTCERT.
        assert connect("postgres", INTERNAL_CA) == "true"
        with pytest.raises(psycopg.OperationalError, match="does not match host name"):
            connect("postgres.evil", INTERNAL_CA)
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            connect("postgres", "other_ca")
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            connect("postgres", INTERNAL_CA, mode="disable")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_refuses_a_key_others_can_read(secrets: Path) -> None:
    """be-secure-common.c check_ssl_key_file: a group-readable key stops the server."""
    (secrets / PG_TLS_KEY).chmod(0o640)
    base = make_shared_dir("plantops-pg-badkey-")
    settings = {k: f"'{v}'" for k, v in postgres_tls_settings(str(secrets)).items()}
    settings.pop("hba_file")
    try:
        with pytest.raises(subprocess.CalledProcessError):
            start_cluster(base, settings, port=free_port())
        assert "group or world access" in (base / "postgres.log").read_text()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _redis_cli(port: int, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=10,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"},
    )


@dataclass
class TlsRedis:
    port: int
    password_file: Path
    tls: list[str]


@pytest.fixture
def tls_redis(example: Rendered, secrets: Path, tmp_path: Path) -> Iterator[TlsRedis]:
    """A real redis-server started with the VM stack's rendered redis.conf (TLS only)."""
    conf = _vm_files(example)["redis.conf"]
    assert "port 0" in conf.splitlines()
    port = free_port()
    pw = tmp_path / "redis_password"
    pw.write_text(HOSTILE)
    auth = tmp_path / "auth.conf"
    subprocess.run(
        ["sh", "-c", redis_auth_script(str(pw), str(auth), masterauth=False)], check=True
    )
    assert auth.stat().st_mode & 0o077 == 0
    text = (
        conf.replace("/run/secrets", str(secrets))
        .replace("/run/redis/auth.conf", str(auth))
        .replace("dir /data", f"dir {tmp_path}")
        .replace("tls-port 6379", f"tls-port {port}")
        .replace("bind * -::*", "bind 127.0.0.1")
    )
    (tmp_path / "redis.conf").write_text(text)
    proc = subprocess.Popen(
        ["redis-server", str(tmp_path / "redis.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tls = ["--tls", "--cacert", str(secrets / INTERNAL_CA)]
    try:
        for _ in range(100):
            if (
                "NOAUTH"
                in _redis_cli(port, *tls, "ping").stdout + _redis_cli(port, *tls, "ping").stderr
            ):
                break
            time.sleep(0.05)
        yield TlsRedis(port, pw, tls)
    finally:
        proc.kill()
        proc.wait()


def test_vm_redis_refuses_plain_text_and_wants_the_password(
    tls_redis: TlsRedis, secrets: Path
) -> None:
    port, tls = tls_redis.port, tls_redis.tls
    ok = _redis_cli(port, *tls, "--askpass", "ping", stdin=HOSTILE + "\n")
    assert ok.stdout.strip() == "PONG", ok.stderr
    assert "NOAUTH" in _redis_cli(port, *tls, "ping").stdout
    plain = _redis_cli(port, "--askpass", "ping", stdin=HOSTILE + "\n")
    assert plain.stdout.strip() != "PONG"
    wrong_ca = _redis_cli(port, "--tls", "--cacert", str(secrets / "other_ca"), "ping")
    assert "PONG" not in wrong_ca.stdout
    assert "NOAUTH" not in wrong_ca.stdout


def _session_url(tls_redis: TlsRedis, host: str, ca: Path) -> str:
    """The URL Odoo's start script exports, built by running the rendered sh snippet."""
    script = session_redis_url_script(str(tls_redis.password_file), host, tls_redis.port, str(ca))
    done = subprocess.run(
        ["sh", "-c", f'{script} && printf %s "$ODOO_SESSION_REDIS_URL"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return done.stdout


def test_odoo_session_url_reaches_tls_redis_with_redis_py(
    tls_redis: TlsRedis, secrets: Path
) -> None:
    """session_redis calls ``redis.from_url(url)`` with the exported URL (camptocamp
    session_redis/http.py ``session_store``): that call must reach the TLS-only Redis with
    the hostile password, verifying the server's certificate and host name."""
    url = _session_url(tls_redis, "127.0.0.1", secrets / INTERNAL_CA)
    assert url.startswith("rediss://:") and HOSTILE not in url
    client = redis.from_url(url, socket_timeout=5)
    try:
        assert client.ping() is True
        client.set("plantops:session", "x", ex=30)
        assert client.get("plantops:session") == b"x"
    finally:
        client.close()


def test_odoo_session_url_refuses_a_foreign_ca_or_host_name(
    tls_redis: TlsRedis, secrets: Path
) -> None:
    # The certificate names redis and 127.0.0.1, not localhost: ssl_check_hostname=true
    # must refuse it; a CA other than the stack's must refuse the chain.
    for host, ca in (("localhost", secrets / INTERNAL_CA), ("127.0.0.1", secrets / "other_ca")):
        client = redis.from_url(_session_url(tls_redis, host, ca), socket_timeout=5)
        try:
            with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
                client.ping()
        finally:
            client.close()

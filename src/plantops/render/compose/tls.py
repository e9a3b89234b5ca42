"""TLS and credential files of a VM plant's Compose stack: names, settings, small scripts.

Every certificate, key and password reaches a container as a Compose secret, a file
under ``/run/secrets`` written by provisioning into ``secrets/`` on the VM; none is in
this tree. Compose bind-mounts ``file:`` secrets as they are on the host (the long
syntax's ``uid``/``gid``/``mode`` are not applied to file secrets), so the owner and
mode the consuming program checks are set on the host (docs/security.md).

Pure text: this module never reads or writes a file.
"""

from __future__ import annotations

SECRETS_DIR = "/run/secrets"
POSTGRES_UID = 999
"""The ``postgres`` user of the official (Debian) PostgreSQL image."""

PG_TLS_CERT = "postgres_tls_cert"
PG_TLS_KEY = "postgres_tls_key"
REDIS_TLS_CERT = "redis_tls_cert"
REDIS_TLS_KEY = "redis_tls_key"
INTERNAL_CA = "internal_ca"
"""The CA that signed both server certificates; clients verify against it."""
PGBACKREST_SECRETS = "pgbackrest_secrets"
"""pgBackRest's repository keys and cipher passphrase, as a config file of its own."""
PGBACKREST_INCLUDE = "/etc/pgbackrest/conf.d/plantops-secrets.conf"
"""pgBackRest reads every ``*.conf`` of its ``config-include-path`` (default
``/etc/pgbackrest/conf.d``) after ``pgbackrest.conf``; secure options may be set there."""

HBA_FILE = "/etc/postgresql/pg_hba.conf"


def secret_path(name: str, secrets_dir: str = SECRETS_DIR) -> str:
    return f"{secrets_dir}/{name}"


def postgres_tls_settings(secrets_dir: str = SECRETS_DIR) -> dict[str, str]:
    """``postgres -c`` settings: TLS on, server certificate and key from the secrets.

    PostgreSQL refuses to start with a key it deems unsafe (be-secure-common.c
    ``check_ssl_key_file``): owned by the server's user and not accessible by group or
    others (0600), or owned by root and at most group-readable (0640). TLS 1.2 is also
    the server's default floor since PostgreSQL 14; it is stated so it cannot drift.
    """
    return {
        "hba_file": HBA_FILE,
        "ssl": "on",
        "ssl_cert_file": secret_path(PG_TLS_CERT, secrets_dir),
        "ssl_key_file": secret_path(PG_TLS_KEY, secrets_dir),
        "ssl_min_protocol_version": "TLSv1.2",
    }


def render_pg_hba() -> str:
    """TCP only over TLS with SCRAM; the socket (inside the container only) by ``peer``.

    ``hostnossl … reject`` makes a plain-text attempt fail with a clear message instead
    of falling through to no matching line. The socket serves the image's init scripts,
    pgBackRest and the healthcheck, all run as the OS user ``postgres``.
    """
    lines = [
        "# Rendered by plantops - TCP connections must use TLS (no plain-text fallback).",
        "# TYPE     DATABASE  USER  ADDRESS  METHOD",
        "local      all       all            peer",
        "hostssl    all       all   all      scram-sha-256",
        "hostnossl  all       all   all      reject",
    ]
    return "\n".join(lines) + "\n"

"""The Compose stack of a VM plant: Odoo web + cron, PostgreSQL, Redis, Traefik.

Same architecture as on Kubernetes, sized by the same rules: Traefik's file provider
carries the same middlewares and routes (admin paths closed in production), Odoo
runs read-only and unprivileged, PostgreSQL archives WAL with pgBackRest to the
fleet's object store. Secret values live in ``secrets/`` files on the VM, written by
provisioning from the secret store; none is in this tree.

The PostgreSQL image is built by Compose itself (``dockerfile_inline``): the pinned
upstream image plus pgBackRest from its own apt sources, because ``archive_command``
and the backup timers (``systemd/``) run pgBackRest inside that container.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from plantops.render.compose.systemd import backup_calendar, render_systemd_units
from plantops.render.compose.tls import (
    HBA_FILE,
    INTERNAL_CA,
    PG_TLS_CERT,
    PG_TLS_KEY,
    PGBACKREST_INCLUDE,
    PGBACKREST_SECRETS,
    REDIS_TLS_CERT,
    REDIS_TLS_KEY,
    postgres_tls_settings,
    render_pg_hba,
    secret_path,
)
from plantops.render.compose.upgrade import SERVICE as UPGRADE_SERVICE
from plantops.render.compose.upgrade import render_vm_upgrade
from plantops.render.core import dump_yaml
from plantops.render.dbinit import PGPASSFILE, db_init_command, pgpass_script
from plantops.render.kubernetes.cloudnativepg import ODOO_EXTENSIONS, archive_timeout_seconds
from plantops.render.kubernetes.common import (
    GEVENT_PORT,
    HTTP_PORT,
    PG_PORT,
    REDIS_PORT,
    odoo_ids,
    role_name,
    runtime_role,
)
from plantops.render.kubernetes.odoo import CONFIG_SCRIPT, HEALTH_PATH, image
from plantops.render.kubernetes.redis import (
    AUTH_CONF,
    RUN_DIR,
    RedisTls,
    cli,
    redis_auth_script,
    redis_conf,
    redis_persistence,
)
from plantops.render.kubernetes.traefik import route_model, tls_option_spec
from plantops.render.odoo_conf import DATA_DIR, session_redis_url_script

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

PGDATA = "/var/lib/postgresql/data/pgdata"
SPOOL = "/var/spool/pgbackrest"
SECURITY = ["no-new-privileges:true"]
COMPOSE_REDIS_TLS = RedisTls(
    secret_path(REDIS_TLS_CERT), secret_path(REDIS_TLS_KEY), secret_path(INTERNAL_CA)
)
DB_PASSWORD = secret_path("odoo_db_password")
REDIS_PASSWORD = secret_path("redis_password")
# libpq's CA for verify-full: Odoo hands libpq only host/port/user/password/sslmode
# (odoo/sql_db.py connection_info_for), so the CA comes as $PGSSLROOTCERT.
PG_CLIENT_TLS = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": secret_path(INTERNAL_CA)}
POSTGRES_IMAGE = "plantops.local/postgres-pgbackrest"
"""Local name of the built image; never pulled (``pull_policy: never``)."""


def stanza(dep: Deployment) -> str:
    return dep.namespace


def postgres_dockerfile(base: str) -> str:
    """The PostgreSQL image with pgBackRest: ``base`` (pinned by digest) + the Debian package.

    The official image is Debian with the PGDG apt source configured, so ``pgbackrest``
    comes from the same repository as PostgreSQL. Its directories are created for the
    ``postgres`` user: a fresh named volume on ``SPOOL`` copies the image's owner.
    No ``$`` anywhere: Compose would interpolate it.
    """
    return (
        "\n".join(
            [
                f"FROM {base}",
                "RUN set -eux; \\",
                "    apt-get update; \\",
                "    apt-get install -y --no-install-recommends ca-certificates pgbackrest; \\",
                "    rm -rf /var/lib/apt/lists/*; \\",
                "    install -d -o postgres -g postgres -m 0750"
                f" /var/lib/pgbackrest /var/log/pgbackrest {SPOOL}",
            ]
        )
        + "\n"
    )


def postgres_image(dockerfile: str) -> str:
    """Tag of the built image: changes with the Dockerfile, so a new base is rebuilt."""
    return f"{POSTGRES_IMAGE}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:16]}"


def _limits(cpu_m: int, mem_mib: int) -> dict[str, Any]:
    return {"resources": {"limits": {"cpus": f"{cpu_m / 1000:g}", "memory": f"{mem_mib}M"}}}


def _healthcheck(test: list[str], start: str = "30s") -> dict[str, Any]:
    return {"interval": "15s", "retries": 5, "start_period": start, "test": test, "timeout": "5s"}


def _odoo_user(dep: Deployment) -> str:
    uid, gid = odoo_ids(dep)
    return f"{uid}:{gid}"


def _run_tmpfs(dep: Deployment) -> str:
    """``/run/odoo`` for the generated config, owned by the user Odoo runs as.

    A tmpfs is root's unless ``uid``/``gid`` are given, and with ``mode=0700`` the
    ``odoo`` user could not write the config there: the containers exited at start.
    Docker passes these options to the tmpfs mount (moby/sys mount/flags.go validFlags).
    """
    uid, gid = odoo_ids(dep)
    return f"/run/odoo:size=16m,uid={uid},gid={gid},mode=0700"


def _odoo_init_service(dep: Deployment) -> dict[str, Any]:
    """One-shot: installs ``base`` into each database that has none (render/dbinit.py).

    Web and cron wait for it to exit 0 (``service_completed_successfully``); on an
    initialised database it only probes and exits. It logs in as Odoo does.
    """
    argv = db_init_command("/etc/odoo/odoo-cron.conf", [t.database for t in dep.tenants])
    password = f"{pgpass_script(DB_PASSWORD)}\n"
    script = argv[2].replace("set -eu\n", "set -eu\n" + password, 1)
    return {
        "cap_drop": ["ALL"],
        "depends_on": {"postgres": {"condition": "service_healthy"}},
        "deploy": _limits(dep.sizing.cron.cpu_limit_m, dep.sizing.cron.memory_limit_mib),
        "entrypoint": [argv[0], argv[1], script.replace("$", "$$"), *argv[3:]],
        "environment": {
            "PGAPPNAME": "plantops-db-init",
            "PGCONNECT_TIMEOUT": "10",
            "PGHOST": "postgres",
            "PGPASSFILE": PGPASSFILE,
            "PGPORT": str(PG_PORT),
            **PG_CLIENT_TLS,
            "PGUSER": runtime_role(dep),
        },
        "image": image(dep),
        "networks": ["backend"],
        "read_only": True,
        "restart": "no",
        "secrets": [INTERNAL_CA, "odoo_db_password"],
        "security_opt": SECURITY,
        "tmpfs": [_run_tmpfs(dep), "/tmp:size=1g"],
        "user": _odoo_user(dep),
        "volumes": [f"filestore:{DATA_DIR}", "./odoo-cron.conf:/etc/odoo/odoo-cron.conf:ro"],
    }


def _odoo_service(dep: Deployment, conf: str, cron: bool) -> dict[str, Any]:
    s = dep.sizing
    res = s.cron if cron else s.web
    script = (
        CONFIG_SCRIPT.replace('"/etc/odoo/$ODOO_CONF"', f"/etc/odoo/{conf}").replace(
            '"$ODOO_ADMIN_PASSWD"', '"$(cat /run/secrets/odoo_admin_passwd)"'
        )
        + f" && {pgpass_script(DB_PASSWORD)}"
        + f" && {session_redis_url_script(REDIS_PASSWORD, 'redis', REDIS_PORT, secret_path(INTERNAL_CA))}"
        + " && exec odoo --config=/run/odoo/odoo.conf"
    ).replace("$", "$$")
    svc: dict[str, Any] = {
        "cap_drop": ["ALL"],
        "depends_on": {
            "odoo-init": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        },
        "deploy": _limits(res.cpu_limit_m, res.memory_limit_mib),
        "entrypoint": ["/bin/sh", "-c", script],
        "environment": {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_EXPIRATION": "86400",
            "ODOO_SESSION_REDIS_PREFIX": dep.namespace,
            "PGPASSFILE": PGPASSFILE,
            "PGSSLROOTCERT": secret_path(INTERNAL_CA),
        },
        "image": image(dep),
        "networks": ["backend", "frontend"],
        "read_only": True,
        "restart": "unless-stopped",
        "secrets": [INTERNAL_CA, "odoo_admin_passwd", "odoo_db_password", "redis_password"],
        "security_opt": SECURITY,
        "stop_grace_period": "120s" if cron else "60s",
        "tmpfs": [_run_tmpfs(dep), "/tmp:size=1g"],
        "user": _odoo_user(dep),
        "volumes": [f"filestore:{DATA_DIR}", f"./{conf}:/etc/odoo/{conf}:ro"],
    }
    if not cron:
        svc["healthcheck"] = _healthcheck(
            ["CMD", "curl", "-fsS", f"http://127.0.0.1:{HTTP_PORT}{HEALTH_PATH}"], "60s"
        )
    return svc


def _init_script(dep: Deployment) -> str:
    # The password travels as a psql variable (:'pw' quotes it), never spliced into SQL
    # by the shell: a quote in a generated password must not break or inject the script.
    lines = [
        "#!/bin/sh",
        "# Rendered by plantops: Odoo's roles own their databases; none is a superuser.",
        "set -eu",
        'pw="$(cat /run/secrets/odoo_db_password)"',
        "psql -v ON_ERROR_STOP=1 -v pw=\"$pw\" --username postgres --dbname postgres <<'SQL'",
    ]
    runtime = runtime_role(dep)
    lines.append(
        f"CREATE ROLE \"{runtime}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';"
    )
    for t in dep.tenants:
        owner = role_name(t.database)
        if owner != runtime:
            lines.append(f'CREATE ROLE "{owner}" NOLOGIN;')
            lines.append(f'GRANT "{owner}" TO "{runtime}";')
        lines.append(
            f'CREATE DATABASE "{t.database}" OWNER "{owner}" ENCODING \'UTF8\' '
            "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;"
        )
    # Odoo creates pg_trgm and unaccent only in databases it creates itself
    # (odoo/service/db.py _create_empty_database); these exist already, so create them here.
    for t in dep.tenants:
        lines.append(f'\\connect "{t.database}"')
        lines += [f"CREATE EXTENSION IF NOT EXISTS {e};" for e in ODOO_EXTENSIONS]
        lines.append("ALTER FUNCTION unaccent(text) IMMUTABLE;")
    lines.append("SQL")
    return "\n".join(lines) + "\n"


def render_compose(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    s = dep.sizing
    images = ctx.platform.images
    params = {
        **s.postgres_parameters,
        "max_connections": str(s.postgres_parameters["max_connections"]),
    }
    dockerfile = postgres_dockerfile(images.postgres)
    pg_cmd = ["postgres"]
    settings = {
        **params,
        "archive_command": f"pgbackrest --stanza={stanza(dep)} archive-push %p",
        "archive_mode": "on",
        "archive_timeout": f"{archive_timeout_seconds(dep)}s",
        "password_encryption": "scram-sha-256",
        "wal_level": "replica",
        **postgres_tls_settings(),
    }
    for key, value in sorted(settings.items()):
        pg_cmd += ["-c", f"{key}={value}"]
    persistence = redis_persistence(dep)
    redis_cmd = (
        f"set -eu\n{redis_auth_script(REDIS_PASSWORD, masterauth=False)}\n"
        "exec redis-server /usr/local/etc/redis/redis.conf"
    ).replace("$", "$$")
    ping = f"{cli(REDIS_PORT, COMPOSE_REDIS_TLS, REDIS_PASSWORD)} ping < {REDIS_PASSWORD}"
    doc: dict[str, Any] = {
        "name": dep.namespace,
        "services": {
            "odoo-cron": _odoo_service(dep, "odoo-cron.conf", cron=True),
            "odoo-init": _odoo_init_service(dep),
            "odoo-web": _odoo_service(dep, "odoo.conf", cron=False),
            "postgres": {
                "build": {"dockerfile_inline": dockerfile},
                "command": pg_cmd,
                "deploy": _limits(s.postgres.cpu_limit_m, s.postgres.memory_limit_mib),
                "environment": {
                    "PGDATA": PGDATA,
                    "POSTGRES_INITDB_ARGS": "--data-checksums",
                    "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
                    "POSTGRES_USER": "postgres",
                },
                "healthcheck": _healthcheck(["CMD", "pg_isready", "-U", "postgres"]),
                "image": postgres_image(dockerfile),
                "networks": ["backend", "egress"],
                # Built here, never pulled: with the default policy Compose would first
                # try to pull this local name from a registry. Compose builds it when
                # missing (docker/compose pkg/compose build.go).
                "pull_policy": "never",
                "restart": "unless-stopped",
                "secrets": [
                    "odoo_db_password",
                    # pgBackRest reads it as postgres (archive_command, the systemd units).
                    {"source": PGBACKREST_SECRETS, "target": PGBACKREST_INCLUDE},
                    PG_TLS_CERT,
                    PG_TLS_KEY,
                    "postgres_password",
                ],
                "security_opt": SECURITY,
                "shm_size": "256m",
                "stop_grace_period": "120s",
                "volumes": [
                    "pgdata:/var/lib/postgresql/data",
                    f"pgbackrest-spool:{SPOOL}",
                    "./pgbackrest.conf:/etc/pgbackrest/pgbackrest.conf:ro",
                    "./initdb:/docker-entrypoint-initdb.d:ro",
                    f"./pg_hba.conf:{HBA_FILE}:ro",
                ],
            },
            "redis": {
                "cap_drop": ["ALL"],
                "command": ["/bin/sh", "-c", redis_cmd],
                "deploy": _limits(s.redis.cpu_limit_m, s.redis.memory_limit_mib),
                "healthcheck": _healthcheck(
                    ["CMD-SHELL", f"{ping} | grep -q PONG"],
                    "10s",
                ),
                "image": images.redis,
                "networks": ["backend"],
                "read_only": True,
                "restart": "unless-stopped",
                "secrets": [INTERNAL_CA, "redis_password", REDIS_TLS_CERT, REDIS_TLS_KEY],
                "security_opt": SECURITY,
                "user": "999:999",
                "volumes": [
                    "./redis.conf:/usr/local/etc/redis/redis.conf:ro",
                    *(["redisdata:/data"] if persistence != "none" else []),
                ],
                "tmpfs": [
                    f"{RUN_DIR}:size=1m,uid=999,gid=999,mode=0700",
                    *(["/data:size=64m"] if persistence == "none" else []),
                ],
            },
            "traefik": {
                "cap_add": ["NET_BIND_SERVICE"],
                "cap_drop": ["ALL"],
                "command": [
                    f"--entrypoints.{ctx.platform.ingress.http_entry_point}.address=:80",
                    f"--entrypoints.{ctx.platform.ingress.entry_point}.address=:443",
                    "--global.checknewversion=false",
                    "--global.sendanonymoususage=false",
                    "--accesslog=true",
                    "--ping=true",
                    "--providers.file.filename=/etc/traefik/dynamic.yaml",
                ],
                "depends_on": {"odoo-web": {"condition": "service_healthy"}},
                "healthcheck": _healthcheck(["CMD", "traefik", "healthcheck", "--ping"], "10s"),
                "image": images.traefik,
                "networks": ["frontend"],
                "ports": ["80:80", "443:443"],
                "read_only": True,
                "restart": "unless-stopped",
                "security_opt": SECURITY,
                "volumes": [
                    "./traefik/dynamic.yaml:/etc/traefik/dynamic.yaml:ro",
                    "./certs:/etc/traefik/certs:ro",
                ],
            },
        },
        "networks": {
            "backend": {"internal": True},
            "egress": {},
            "frontend": {},
        },
        "volumes": {
            "filestore": {},
            "pgbackrest-spool": {},
            "pgdata": {},
            **({"redisdata": {}} if persistence != "none" else {}),
        },
        "secrets": {
            name: {"file": f"./secrets/{name}"}
            for name in sorted(
                (
                    INTERNAL_CA,
                    "odoo_admin_passwd",
                    "odoo_db_password",
                    PGBACKREST_SECRETS,
                    PG_TLS_CERT,
                    PG_TLS_KEY,
                    "postgres_password",
                    "redis_password",
                    REDIS_TLS_CERT,
                    REDIS_TLS_KEY,
                )
            )
        },
        "x-plantops": {
            "deployment": dep.id,
            "pgbackrest": backup_calendar(dep),
            "rpo_minutes": dep.tier_spec.backup.rpo_minutes,
        },
    }
    return doc


def s3_uri_style(endpoint_url: str | None) -> str:
    """``host`` (virtual-hosted, bucket.endpoint) for AWS, ``path`` for other endpoints.

    AWS deprecated path-style requests; pgBackRest's default is ``host``. The fleet
    spec sets ``endpoint_url`` only "for non-AWS S3 (MinIO, Ceph)", which serve
    path-style out of the box (virtual hosts need wildcard DNS there).
    """
    if endpoint_url is None:
        return "host"
    host = (urlsplit(endpoint_url).hostname or "").lower()
    aws = host.endswith((".amazonaws.com", ".amazonaws.com.cn")) or host == "amazonaws.com"
    return "host" if aws else "path"


def archive_push_queue_max_gib(dep: Deployment) -> int:
    """Unarchived WAL kept before pgBackRest drops it: a quarter of the PostgreSQL volume.

    Past this, archive-push reports success and drops the queue (pgBackRest
    ``archive-push-queue-max``): the WAL stream has a gap until the next backup, but
    a failing repository can no longer fill the disk and stop PostgreSQL.
    """
    return max(1, dep.sizing.postgres_storage_gib // 4)


def render_pgbackrest_conf(dep: Deployment, ctx: RenderContext) -> str:
    store = ctx.backup_store
    bucket, _, prefix = store.destination.removeprefix("s3://").partition("/")
    region = store.region or "us-east-1"
    endpoint = (store.endpoint_url or f"https://s3.{region}.amazonaws.com").split("://", 1)[1]
    endpoint = endpoint.rstrip("/")
    r = dep.tier_spec.backup.retention
    lines = [
        "# Rendered by plantops. Keys and the cipher passphrase (repo1-s3-key, repo1-s3-key-secret,",
        f"# repo1-cipher-pass) come from {PGBACKREST_INCLUDE}, the secret file pgbackrest_secrets.",
        "[global]",
        "archive-async=y",
        f"archive-push-queue-max={archive_push_queue_max_gib(dep)}GiB",
        "compress-type=zst",
        "log-level-console=info",
        "process-max=2",
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-path=/{prefix + '/' if prefix else ''}vm/{dep.namespace}",
        f"repo1-retention-diff={max(1, r.daily)}",
        f"repo1-retention-full={max(1, r.weekly)}",
        f"repo1-s3-bucket={bucket}",
        f"repo1-s3-endpoint={endpoint}",
        f"repo1-s3-region={region}",
        f"repo1-s3-uri-style={store.uri_style or s3_uri_style(store.endpoint_url)}",
        "repo1-type=s3",
        f"spool-path={SPOOL}",
        "start-fast=y",
        "",
        f"[{stanza(dep)}]",
        f"pg1-path={PGDATA}",
        "pg1-user=postgres",
    ]
    return "\n".join(lines) + "\n"


TRAEFIK_SERVICES = {HTTP_PORT: "odoo", GEVENT_PORT: "odoo-websocket"}
"""The file provider's service for each Odoo port of the route model."""


def render_traefik_dynamic(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    """The file provider's dynamic configuration: :func:`route_model` as routers.

    The same middlewares, rules, priorities and chains as the IngressRoutes; only the
    envelope differs (router names, services by URL, certificates as files).
    """
    model = route_model(dep, ctx)
    routers: dict[str, Any] = {}
    for r in model.routes:
        router: dict[str, Any] = {
            "entryPoints": [r.entry_point],
            "middlewares": list(r.middlewares),
            "priority": r.priority,
            "rule": r.rule,
            "service": TRAEFIK_SERVICES[r.port],
        }
        if r.tls:
            router["tls"] = {"options": "plantops"}
        routers[f"{r.plant}-{r.what}"] = router
    return {
        "http": {
            "middlewares": {m.name: dict(m.spec) for m in model.middlewares},
            "routers": dict(sorted(routers.items())),
            "services": {
                svc: {"loadBalancer": {"servers": [{"url": f"http://odoo-web:{port}"}]}}
                for port, svc in sorted(TRAEFIK_SERVICES.items(), key=lambda kv: kv[1])
            },
        },
        "tls": {
            "certificates": [
                {
                    "certFile": f"/etc/traefik/certs/{t.host}.crt",
                    "keyFile": f"/etc/traefik/certs/{t.host}.key",
                }
                for t in dep.tenants
            ],
            "options": {"default": tls_option_spec(), "plantops": tls_option_spec()},
        },
    }


def render_vm_files(dep: Deployment, ctx: RenderContext) -> tuple[dict[str, Any], dict[str, str]]:
    """The compose document and every file of the VM directory (relative name → text)."""
    compose = render_compose(dep, ctx)
    upgrade = render_vm_upgrade(dep, compose["services"]["odoo-init"], stanza(dep))
    if upgrade is not None and upgrade.service:
        compose["services"][UPGRADE_SERVICE] = upgrade.service
        compose["services"] = dict(sorted(compose["services"].items()))
    files = {
        "compose.yaml": dump_yaml(compose),
        "initdb/10-odoo-roles.sh": _init_script(dep),
        "pgbackrest.conf": render_pgbackrest_conf(dep, ctx),
        "pg_hba.conf": render_pg_hba(),
        "redis.conf": redis_conf(dep, COMPOSE_REDIS_TLS, AUTH_CONF),
        "traefik/dynamic.yaml": dump_yaml(render_traefik_dynamic(dep, ctx)),
    }
    if upgrade is not None:
        files["upgrade.sh"] = upgrade.script
    for unit, text in render_systemd_units(dep, stanza(dep)).items():
        files[f"systemd/{unit}"] = text
    return compose, files

"""``odoo.conf`` for the web and cron processes — settings only, never a secret.

Passwords reach Odoo as files (the libpq password file ``$PGPASSFILE``, written at start);
the master password is set by the entrypoint from its own secret.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plantops.plan import Deployment

DATA_DIR = "/var/lib/odoo"
# session_redis and monitoring_prometheus (camptocamp/odoo-cloud-platform) must be in the
# platform image: sessions live in Redis and /metrics is served without a database.
SERVER_WIDE_MODULES = "base,web,session_redis,monitoring_prometheus"
# OCA/server-tools: narrows Odoo's database list to the regex in this request header
# (the WSGI key HTTP_X_ODOO_DBFILTER). It patches http.db_filter only when proxy_mode is
# on and it is listed in server_wide_modules.
HEADER_DBFILTER_MODULE = "dbfilter_from_header"
DBFILTER_HEADER = "X-Odoo-dbfilter"
ADDONS_PATH = "/mnt/extra-addons,/usr/lib/python3/dist-packages/odoo/addons"
_PLAIN_DATABASE = re.compile(r"[a-z0-9][a-z0-9-]*")


def db_host(dep: Deployment) -> str:
    if dep.cluster is None:
        return "postgres"
    return f"{dep.unit}-pg-pooler-rw" if dep.sizing.pgbouncer else f"{dep.unit}-pg-rw"


def routes_by_header(dep: Deployment) -> bool:
    """Whether the proxy, not odoo.conf's ``dbfilter``, picks each request's database.

    True wherever Odoo logs in as ``odoo``, which owns no database (a tenant group of
    more than one plant). With ``dbfilter`` set, Odoo's ``list_dbs(force=True)`` - what host
    routing filters - lists only the databases *owned* by the login role, i.e. none; the
    ``db_name`` list is used only when ``dbfilter`` is empty. So these deployments set no
    ``dbfilter``: Odoo exposes exactly ``db_name`` (the tenant databases, also the cron
    list) and ``dbfilter_from_header`` narrows it to the database Traefik names for the
    request's host (:func:`tenant_dbfilter`).
    """
    return len(dep.tenants) > 1


def login_role(dep: Deployment) -> str:
    """``db_user``: ``odoo`` for a tenant group, else the plant's owner role."""
    return "odoo" if routes_by_header(dep) else dep.tenants[0].database.replace("-", "_")


def tenant_dbfilter(database: str) -> str:
    """The ``X-Odoo-dbfilter`` value for one tenant: exactly its database.

    Database names are plant codes (DNS labels): no regex metacharacter but ``-``, which
    is literal outside a character class, so the name needs no escaping.
    """
    if not _PLAIN_DATABASE.fullmatch(database):
        raise ValueError(f"database name {database!r} is not a plain DNS label")
    return f"^{database}$"


def _dbfilter(dep: Deployment) -> list[tuple[str, str]]:
    if routes_by_header(dep):
        return []
    # The login role owns the plant's database (and no other), so list_dbs finds it;
    # %d is the first label of the host name, which is the plant code (= database).
    return [("dbfilter", "^%d$")]


def server_wide_modules(dep: Deployment) -> str:
    if routes_by_header(dep):
        return f"{SERVER_WIDE_MODULES},{HEADER_DBFILTER_MODULE}"
    return SERVER_WIDE_MODULES


def _gevent_pool(dep: Deployment, *, cron: bool) -> list[tuple[str, str]]:
    """``db_maxconn_gevent`` for the web pods' gevent process, where the series reads it.

    ``odoo/sql_db.py`` ``db_connect`` sizes the gevent process's pool from it when set
    (17.0 on; 16.0 has no such option and the gevent process shares ``db_maxconn``). The
    cron container runs threaded with HTTP disabled, so it has no gevent process.
    """
    value = dep.sizing.db_maxconn_gevent
    if cron or value is None:
        return []
    return [("db_maxconn_gevent", str(value))]


def render_odoo_conf(dep: Deployment, *, cron: bool = False) -> str:
    s = dep.sizing
    env = dep.environment
    options: list[tuple[str, str]] = [
        ("addons_path", ADDONS_PATH),
        ("data_dir", DATA_DIR),
        ("proxy_mode", "True"),
        ("list_db", "True" if env.list_db and not env.production else "False"),
        *_dbfilter(dep),
        ("db_name", ",".join(t.database for t in dep.tenants)),
        ("db_host", db_host(dep)),
        ("db_port", "5432"),
        ("db_user", login_role(dep)),
        # The server's identity is checked against $PGSSLROOTCERT: CloudNativePG's CA on
        # Kubernetes (render/kubernetes/odoo.py), the VM's internal CA (render/compose/tls.py).
        ("db_sslmode", "verify-full"),
        ("db_maxconn", str(s.db_maxconn_cron if cron else s.db_maxconn)),
        *_gevent_pool(dep, cron=cron),
        ("http_enable", "False" if cron else "True"),
        ("http_interface", "0.0.0.0"),
        ("http_port", "8069"),
        ("gevent_port", "8072"),
        ("workers", "0" if cron else str(s.workers)),
        ("max_cron_threads", str(s.max_cron_threads) if cron else "0"),
        # Per worker in the prefork web pods; for the whole process in the threaded cron
        # container (see sizing: ThreadedServer.process_limit / set_limit_memory_hard).
        ("limit_memory_soft", str(s.limit_memory_soft_cron if cron else s.limit_memory_soft)),
        ("limit_memory_hard", str(s.limit_memory_hard_cron if cron else s.limit_memory_hard)),
        ("limit_time_cpu", str(s.limit_time_cpu)),
        ("limit_time_real", str(s.limit_time_real)),
        ("limit_time_real_cron", str(s.limit_time_real)),
        ("limit_request", str(s.limit_request)),
        ("log_level", "info"),
        ("logfile", ""),
        ("unaccent", "True"),
        ("without_demo", "all"),
        ("server_wide_modules", server_wide_modules(dep)),
    ]
    lines = [
        "; Rendered by plantops - do not edit; change the fleet spec instead.",
        f"; {dep.id} ({'cron' if cron else 'web'})",
        "[options]",
        *(f"{k} = {v}" for k, v in options),
    ]
    return "\n".join(lines) + "\n"


# Percent-encodes the whole password for the URL's userinfo (redis-py's parse_url
# unquotes it); the Odoo image has Python, the shell has no such quoting.
_QUOTE = (
    "python3 -c 'import sys, urllib.parse as u; "
    'print(u.quote(open(sys.argv[1]).read().rstrip("\\n"), safe=""))\''
)


def session_redis_url_script(password_file: str, host: str, port: int, ca_file: str) -> str:
    """sh: export ``ODOO_SESSION_REDIS_URL``, a ``rediss://`` URL with the password.

    session_redis reads its settings only from the environment and, given a URL, calls
    ``redis.from_url(url)`` (camptocamp/odoo-cloud-platform session_redis/http.py
    ``session_store``): the URL is the one way to hand it a CA, and it must carry the
    password. redis-py passes the query's ``ssl_ca_certs`` and ``ssl_cert_reqs`` to its
    SSL connection and parses ``ssl_check_hostname`` as a boolean (connection.py
    ``parse_url``, ``URL_QUERY_ARGUMENT_PARSERS``). The value is built at start from the
    mounted password file, so it is in Odoo's environment only, never in a manifest.
    """
    query = f"ssl_ca_certs={ca_file}&ssl_cert_reqs=required&ssl_check_hostname=true"
    return (
        f'pw="$({_QUOTE} {password_file})" && '
        f'ODOO_SESSION_REDIS_URL="rediss://:$pw@{host}:{port}/0?{query}" && '
        "export ODOO_SESSION_REDIS_URL && unset pw"
    )

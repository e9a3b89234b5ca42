"""``odoo.conf`` for the web and cron processes — settings only, never a secret.

Passwords reach Odoo through the environment (PGPASSWORD from an ExternalSecret);
the master password is set by the entrypoint from its own secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plantops.plan import Deployment

DATA_DIR = "/var/lib/odoo"
# session_redis and monitoring_prometheus (camptocamp/odoo-cloud-platform) must be in the
# platform image: sessions live in Redis and /metrics is served without a database.
SERVER_WIDE_MODULES = "base,web,session_redis,monitoring_prometheus"
ADDONS_PATH = "/mnt/extra-addons,/usr/lib/python3/dist-packages/odoo/addons"


def db_host(dep: Deployment) -> str:
    if dep.cluster is None:
        return "postgres"
    return f"{dep.unit}-pg-pooler-rw" if dep.sizing.pgbouncer else f"{dep.unit}-pg-rw"


def _dbfilter(dep: Deployment) -> str:
    # Host-based routing: %d is the first label of the host name, which is the plant code.
    return "^%d$"


def render_odoo_conf(dep: Deployment, *, cron: bool = False) -> str:
    s = dep.sizing
    env = dep.environment
    options: list[tuple[str, str]] = [
        ("addons_path", ADDONS_PATH),
        ("data_dir", DATA_DIR),
        ("proxy_mode", "True"),
        ("list_db", "True" if env.list_db and not env.production else "False"),
        ("dbfilter", _dbfilter(dep)),
        ("db_name", ",".join(t.database for t in dep.tenants)),
        ("db_host", db_host(dep)),
        ("db_port", "5432"),
        ("db_user", "odoo" if len(dep.tenants) > 1 else dep.tenants[0].database.replace("-", "_")),
        ("db_sslmode", "require" if dep.cluster is not None else "prefer"),
        ("db_maxconn", str(s.db_maxconn_cron if cron else s.db_maxconn)),
        ("http_enable", "False" if cron else "True"),
        ("http_interface", "0.0.0.0"),
        ("http_port", "8069"),
        ("gevent_port", "8072"),
        ("workers", "0" if cron else str(s.workers)),
        ("max_cron_threads", str(s.max_cron_threads) if cron else "0"),
        ("limit_memory_soft", str(s.limit_memory_soft)),
        ("limit_memory_hard", str(s.limit_memory_hard)),
        ("limit_time_cpu", str(s.limit_time_cpu)),
        ("limit_time_real", str(s.limit_time_real)),
        ("limit_time_real_cron", str(s.limit_time_real)),
        ("limit_request", str(s.limit_request)),
        ("log_level", "info"),
        ("logfile", ""),
        ("unaccent", "True"),
        ("without_demo", "all"),
        ("server_wide_modules", SERVER_WIDE_MODULES),
    ]
    lines = [
        "; Rendered by plantops - do not edit; change the fleet spec instead.",
        f"; {dep.id} ({'cron' if cron else 'web'})",
        "[options]",
        *(f"{k} = {v}" for k, v in options),
    ]
    return "\n".join(lines) + "\n"

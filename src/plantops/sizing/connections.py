"""PostgreSQL connections each Odoo process holds, by series, as Odoo's source has them.

Every Odoo process has one pool (``odoo/sql_db.py`` ``db_connect`` → ``ConnectionPool``)
of at most ``db_maxconn`` connections — ``db_maxconn_gevent`` in the gevent process where
the series has that option. ``ConnectionPool.borrow`` never waits: with every slot in use
it raises ``PoolError('The Connection Pool Is Full')``. So a pool smaller than what the
process can hold at one moment fails work (a cron job, a request) instead of queueing it;
``minimum`` below is that moment, read from the code that borrows. A returned connection
stays open in the pool (``give_back``; closed only after ``MAX_IDLE_TIMEOUT``, 10 min, on
a later ``borrow``), so PostgreSQL must admit every process's whole pool, not only the
connections in use: the connection budget counts pools.

Connections to the ``postgres`` database (LISTEN, NOTIFY) come from the same pool as the
tenant databases'. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SERIES = ("16.0", "17.0", "18.0", "19.0")

# The prefork HTTP worker serves one request at a time. odoo/http.py Request._serve_db
# runs Registry.check_signaling (its own cursor, closed again; a registry reload inside
# it, Registry.new, opens one more) and then the request cursor, registry.cursor(). While
# the request cursor is open one more may be borrowed: res.users.authenticate opens its
# own (cls.pool.cursor()), and post-commit hooks NOTIFY through
# sql_db.db_connect('postgres') (bus.bus._sendone, ir.cron._notifydb).
HTTP_WORKER_MINIMUM = 2
# bus/models/bus.py ImDispatch.loop holds one cursor on 'postgres' for LISTEN imbus for
# the life of the gevent process; each websocket message or notification dispatch borrows
# one more through bus/websocket.py acquire_cursor, which retries PoolError
# (MAX_TRY_ON_POOL_ERROR times), so one free slot beside the listener is enough to make
# progress, more only adds concurrency.
GEVENT_LISTENER = 1
GEVENT_MINIMUM = GEVENT_LISTENER + 1
# What plantops gives it where it can (db_maxconn_gevent): the listener and three
# websocket cursors. A cursor is held for one message (milliseconds), and a miss is
# retried with back-off, so a pod's websockets rarely hold more than one at once.
GEVENT_WEBSOCKET_CURSORS = 3
GEVENT_POOL = GEVENT_LISTENER + GEVENT_WEBSOCKET_CURSORS
# Per cron thread (odoo/service/server.py ThreadedServer.cron_thread): one connection on
# 'postgres' held for LISTEN cron_trigger as long as the thread lives; while a job runs,
# ir_cron._process_jobs holds cron_cr (the job's row lock, _acquire_one_job), the job
# runs in job_cr = cls.pool.cursor(), and inside it ir_cron._callback calls
# self.pool.check_signaling(), which borrows a fourth (as do the post-commit NOTIFYs).
CRON_THREAD_PEAK = 4
# A registry reload (Registry.new under check_signaling, after a module install or a new
# custom field) borrows one more; Registry._lock lets one thread at a time do it.
REGISTRY_RELOAD = 1
# odoo -i ... --stop-after-init: ThreadedServer.run(stop=True) returns after
# preload_registries (no cron thread, no HTTP); loading holds one cursor and its
# post-commit NOTIFYs borrow one more.
STOP_AFTER_INIT_MINIMUM = 2

# PostgreSQL's default superuser_reserved_connections, which CloudNativePG neither sets nor
# fixes (pkg/postgres/configuration.go CnpgConfigurationSettings /
# FixedConfigurationParameters); rendered explicitly so the budget's arithmetic and the
# server agree. PostgreSQL 16's reserved_connections (default 0) is left at 0. Superuser
# connections count against max_connections like any other.
PG_SUPERUSER_RESERVED = 3
# CloudNativePG's instance manager keeps one database/sql pool per database it works on
# (pkg/management/postgres/pool/pool.go newConnection: SetMaxOpenConns(3)) - 'postgres'
# for probes, declarative roles and replication slots, and each Database it reconciles
# (extensions). All are superuser connections on the primary.
CNPG_CONNECTIONS_PER_DATABASE = 3
# The Pooler's PgBouncer runs auth_query as cnpg_pooler_pgbouncer in auth_dbname
# (CloudNativePG docs, connection_pooling.md "Authentication"): one server connection per
# PgBouncer instance, outside the pools it serves Odoo from.
PGBOUNCER_AUTH_CONNECTIONS = 1
PGBOUNCER_INSTANCES = 2
# pgBackRest (VM runtime) holds one connection for pg_backup_start/pg_backup_stop.
PGBACKREST_CONNECTIONS = 1
# The tenant-owner init container (psql, render/kubernetes/odoo.py) opens one session.
TENANT_OWNER_CONNECTIONS = 1


class Process(StrEnum):
    HTTP_WORKER = "http-worker"
    GEVENT = "gevent"
    CRON_WORKER = "cron-worker"
    THREADED_CRON = "threaded-cron"
    STOP_AFTER_INIT = "stop-after-init"


@dataclass(frozen=True)
class SeriesModel:
    """What differs between series for connections."""

    series: str
    has_db_maxconn_gevent: bool
    job_cursor_in: str

    def gevent_setting(self) -> str:
        """The odoo.conf key that sizes the gevent process's pool."""
        return "db_maxconn_gevent" if self.has_db_maxconn_gevent else "db_maxconn"


# db_maxconn_gevent: odoo/tools/config.py declares it from 17.0 and sql_db.db_connect
# sizes the pool with `odoo.evented and config['db_maxconn_gevent'] or
# config['db_maxconn']`; 16.0's db_connect knows db_maxconn only, so its gevent process
# shares the workers' value. From 18.0 db_connect also keeps a read-only pool of the same
# size, but modules/registry.py Registry.init opens it only when db_replica_host is set,
# which plantops never sets. The job cursor moved from ir_cron._process_job to
# IrCron._run_job in 18.0; the connections held are the same.
_SERIES = {
    "16.0": SeriesModel("16.0", False, "ir_cron._process_job"),
    "17.0": SeriesModel("17.0", True, "ir_cron._process_job"),
    "18.0": SeriesModel("18.0", True, "IrCron._run_job"),
    "19.0": SeriesModel("19.0", True, "IrCron._run_job"),
}


def series_model(series: str) -> SeriesModel:
    try:
        return _SERIES[series]
    except KeyError:
        raise ValueError(f"no connection model for Odoo {series!r} (known: {SERIES})") from None


@dataclass(frozen=True)
class ProcessConnections:
    """Connections one process holds in use at idle, and at most at one moment."""

    process: Process
    idle: int
    minimum: int


def process_connections(series: str, process: Process, threads: int = 0) -> ProcessConnections:
    """The source-derived figures for one process; ``threads`` is max_cron_threads."""
    series_model(series)
    if process is Process.HTTP_WORKER:
        return ProcessConnections(process, 0, HTTP_WORKER_MINIMUM)
    if process is Process.GEVENT:
        return ProcessConnections(process, GEVENT_LISTENER, GEVENT_MINIMUM)
    if process is Process.CRON_WORKER:
        # server.py WorkerCron.start keeps self.dbcursor on 'postgres' for LISTEN; one job
        # at a time (WorkerCron.process_work -> ir_cron._process_jobs).
        return ProcessConnections(process, 1, CRON_THREAD_PEAK + REGISTRY_RELOAD)
    if process is Process.THREADED_CRON:
        if threads < 1:
            raise ValueError("a threaded cron process needs max_cron_threads >= 1")
        return ProcessConnections(process, threads, threads * CRON_THREAD_PEAK + REGISTRY_RELOAD)
    return ProcessConnections(process, 0, STOP_AFTER_INIT_MINIMUM)


def platform_connections(*, kubernetes: bool, databases: int, pgbouncer: bool) -> int:
    """Connections on the primary that are not Odoo's and not PostgreSQL's reserve."""
    if not kubernetes:
        return PGBACKREST_CONNECTIONS
    from_operator = CNPG_CONNECTIONS_PER_DATABASE * (1 + databases)
    return from_operator + (PGBOUNCER_AUTH_CONNECTIONS * PGBOUNCER_INSTANCES if pgbouncer else 0)

"""Sizing by Odoo's own deployment rules; every formula and its source is in docs/sizing.md.

All quantities are integers (millicores, MiB) so output is exact and deterministic.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from plantops.sizing import connections as conn
from plantops.sizing.volume import HOT_DAYS, DataVolume, estimate_volume

MIB = 1024 * 1024
# Odoo deployment guide, "Memory size": ~150 MB per light request, ~1 GB per heavy one,
# with about 20 % of requests heavy on a typical instance.
LIGHT_REQUEST_MIB = 150
HEAVY_REQUEST_MIB = 1024
HEAVY_SHARE = {"none": 0.2, "light": 0.2, "moderate": 0.25, "heavy": 0.3}
# Master (prefork supervisor) plus the gevent process that serves /websocket.
POD_OVERHEAD_MIB = 256
# Odoo's defaults for limit_memory_soft / limit_memory_hard (odoo/tools/config.py).
ODOO_SOFT_DEFAULT_MIB = 2048
ODOO_HARD_DEFAULT_MIB = 2560
# Odoo's default db_maxconn (odoo/tools/config.py).
ODOO_DB_MAXCONN_DEFAULT = 64
# render/kubernetes/odoo.py: the web Deployment rolls with maxSurge 1, maxUnavailable 0,
# so a rollout at the autoscaler's ceiling runs one pod more; cron uses Recreate.
WEB_MAX_SURGE = 1
CRON_SOFT_SHARE_PERCENT = 75
# Address space a thread reserves without making it resident: glibc's per-thread malloc
# arena (HEAP_MAX_SIZE, 64 MiB on 64-bit) and its stack (8 MiB, the usual ulimit -s).
CRON_THREAD_ADDRESS_SPACE_MIB = 64 + 8
PGBOUNCER_CPU_M = 250
PGBOUNCER_MEM_MIB = 128
PGBOUNCER_INSTANCES = conn.PGBOUNCER_INSTANCES
# Redis Sentinel, rendered beside a replicated Redis (render/kubernetes/redis.py): three
# sentinels with a quorum of two, so one lost zone still elects a new master.
REDIS_SENTINELS = 3
# PostgreSQL volume beyond the data: free space for VACUUM FULL/REINDEX of the largest
# table and for bloat (a quarter of the data), and the WAL CloudNativePG keeps in PGDATA
# (max_wal_size 1 GB by default, up to twice that between checkpoints).
PG_FREE_PERCENT = 25
PG_WAL_GIB = 2
# effective_cache_size is 75 % of memory (below): the working set should fit in it.
PG_CACHE_SHARE_PERCENT = 75
# WAL written per byte of new data: full-page images after each checkpoint and the
# updates Odoo makes after insert (states, stored computes) write each row ~3 times.
WAL_PER_DATA = 3


REDIS_SENTINELS = 3


def _pod(main: Resources, init: Resources) -> Resources:
    """One container and init containers no larger than ``init``, run before it."""
    return Resources(
        max(main.cpu_request_m, init.cpu_request_m),
        max(main.cpu_limit_m, init.cpu_limit_m),
        max(main.memory_request_mib, init.memory_request_mib),
        max(main.memory_limit_mib, init.memory_limit_mib),
    )


def _plus(a: Resources, b: Resources) -> Resources:
    return Resources(
        a.cpu_request_m + b.cpu_request_m,
        a.cpu_limit_m + b.cpu_limit_m,
        a.memory_request_mib + b.memory_request_mib,
        a.memory_limit_mib + b.memory_limit_mib,
    )


class InfeasibleSizing(ValueError):
    """The tier, users and connection budget cannot be satisfied together."""


@dataclass(frozen=True)
class SizingInputs:
    peak_users: int
    size_factor: float
    production: bool
    ha: bool
    users_per_worker: int
    min_workers: int
    web_replicas: int
    max_web_replicas: int | None
    cron_replicas: int
    max_cron_threads: int
    web_cpu: float
    web_memory_gib: float
    cron_cpu: float
    cron_memory_gib: float
    postgres_instances: int
    postgres_cpu: float
    postgres_memory_gib: float
    postgres_storage_gib: int
    filestore_gib: int
    redis_memory_gib: float
    redis_replicas: int
    pgbouncer: bool
    pg_max_connections: int
    pg_reserved_connections: int
    databases: int
    customization: str
    limit_time_cpu: int
    limit_time_real: int
    limit_request: int
    series: str
    kubernetes: bool
    # Where the filestore is (a ReadWriteOnce/-Many volume, else object storage): it
    # changes the pods and claims of the quota.
    filestore_pvc: bool = True
    orders_per_day: int = 0
    stock_moves_per_day: int = 0
    named_users: int = 0
    horizon_years: int = 3
    growth_percent: float = 10.0


@dataclass(frozen=True)
class Resources:
    cpu_request_m: int
    cpu_limit_m: int
    memory_request_mib: int
    memory_limit_mib: int

    def k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": f"{self.cpu_request_m}m", "memory": f"{self.memory_request_mib}Mi"},
            "limits": {"cpu": f"{self.cpu_limit_m}m", "memory": f"{self.memory_limit_mib}Mi"},
        }


@dataclass(frozen=True)
class Quota:
    cpu_request_m: int
    cpu_limit_m: int
    memory_request_mib: int
    memory_limit_mib: int
    storage_gib: int
    pods: int
    pvcs: int


@dataclass(frozen=True)
class Sizing:
    users: int
    workers_needed: int
    web_replicas: int
    max_web_replicas: int
    workers: int
    max_workers_by_cpu: int
    max_workers_by_memory: int
    max_cron_threads: int
    cron_replicas: int
    limit_memory_soft: int
    limit_memory_hard: int
    limit_time_cpu: int
    limit_time_real: int
    limit_request: int
    limit_memory_soft_cron: int
    limit_memory_hard_cron: int
    db_maxconn: int
    db_maxconn_gevent: int | None
    db_maxconn_cron: int
    connection_budget: int
    connections_at_max: int
    connections: dict[str, int]
    web: Resources
    cron: Resources
    postgres_instances: int
    postgres: Resources
    postgres_storage_gib: int
    postgres_parameters: dict[str, str]
    pgbouncer: bool
    pgbouncer_pool_size: int
    redis_replicas: int
    redis: Resources
    redis_maxmemory_mib: int
    filestore_gib: int
    quota: Quota
    notes: tuple[str, ...] = field(default=())
    # Small containers beside the main ones, Guaranteed where the tier promises it.
    init: Resources = field(default_factory=lambda: _side(100, 64, guaranteed=True))
    redis_exporter: Resources = field(default_factory=lambda: _side(100, 64, guaranteed=True))
    redis_sentinel: Resources = field(default_factory=lambda: _side(100, 64, guaranteed=True))
    backup_sidecar: Resources = field(default_factory=lambda: _side(500, 512, guaranteed=True))
    pgbouncer_pod: Resources = field(
        default_factory=lambda: Resources(
            PGBOUNCER_CPU_M, PGBOUNCER_CPU_M, PGBOUNCER_MEM_MIB, PGBOUNCER_MEM_MIB
        )
    )
    redis_storage_gib: int = 0
    web_surge: int = 1
    redis_sentinels: int = 0
    data_gib: float = 0.0
    """Estimated database size at the end of the sizing horizon (before free space)."""
    wal_gib_per_day: float = 0.0
    warnings: tuple[str, ...] = field(default=())
    """What the plan must tell the user (e.g. users beyond what the tier allows)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _side(cpu_limit_m: int, mem_limit_mib: int, *, guaranteed: bool) -> Resources:
    """A helper container: limits as given; requests equal (Guaranteed QoS needs every
    container, init containers too, at requests = limits) or a quarter CPU and half memory."""
    if guaranteed:
        return Resources(cpu_limit_m, cpu_limit_m, mem_limit_mib, mem_limit_mib)
    return Resources(
        max(10, cpu_limit_m // 4), cpu_limit_m, max(16, mem_limit_mib // 2), mem_limit_mib
    )


def _cpu_m(vcpu: float) -> int:
    return max(50, round(vcpu * 1000))


def _scaled(value: float, factor: float, floor: float) -> float:
    return max(floor, value * factor)


@dataclass(frozen=True)
class _Pools:
    budget: int
    at_max: int
    db_maxconn: int
    db_maxconn_gevent: int | None
    db_maxconn_cron: int
    max_replicas: int
    breakdown: dict[str, int]


def _connections(
    i: SizingInputs, workers: int, replicas: int, max_replicas: int, notes: list[str]
) -> _Pools:
    """Pools of every Odoo process against PostgreSQL's budget, at the worst moment.

    The worst moment is a rollout at the autoscaler's ceiling: max replicas plus the surge
    pod, the cron pods, the db-init Job and one tenant-owner init container, every process
    with its whole pool open (see plantops.sizing.connections for why pools, not use).
    """
    model = conn.series_model(i.series)
    http_min = conn.process_connections(i.series, conn.Process.HTTP_WORKER).minimum
    cron = conn.process_connections(i.series, conn.Process.THREADED_CRON, i.max_cron_threads)
    db_maxconn_cron = cron.minimum
    cron_conn = i.cron_replicas * db_maxconn_cron
    # The db-init Job (odoo -i base --stop-after-init) runs threaded with odoo-cron.conf,
    # so it may open the cron pool; it needs only STOP_AFTER_INIT_MINIMUM of it.
    job_conn = max(db_maxconn_cron, conn.STOP_AFTER_INIT_MINIMUM)
    # Only tenant groups render the psql tenant-owner init container.
    owner_conn = conn.TENANT_OWNER_CONNECTIONS if i.databases > 1 else 0
    fixed = cron_conn + job_conn + owner_conn
    platform = conn.platform_connections(
        kubernetes=i.kubernetes, databases=i.databases, pgbouncer=i.pgbouncer
    )
    # PgBouncer runs in session mode (Odoo's bus needs LISTEN/NOTIFY and session state), so
    # every Odoo connection holds a server connection: it queues and smooths failovers but
    # does not multiply the budget, which stays PostgreSQL's own.
    reserved = max(i.pg_reserved_connections, conn.PG_SUPERUSER_RESERVED + platform)
    budget = i.pg_max_connections - reserved
    notes.append(
        f"connection budget = {i.pg_max_connections} max_connections - max({i.pg_reserved_connections}"
        f" reserved, {conn.PG_SUPERUSER_RESERVED} superuser_reserved_connections + {platform} "
        f"{'CloudNativePG instance manager/PgBouncer auth' if i.kubernetes else 'pgBackRest'}) "
        f"= {budget}"
    )
    notes.append(
        f"cron db_maxconn = {i.max_cron_threads} threads x {conn.CRON_THREAD_PEAK} (LISTEN + "
        f"cron_cr + job_cr + check_signaling) + {conn.REGISTRY_RELOAD} registry reload = "
        f"{db_maxconn_cron} ({model.job_cursor_in}); {i.cron_replicas} cron pod(s) = {cron_conn}, "
        f"db-init Job {job_conn}, tenant-owner init {owner_conn}"
    )
    # The gevent process, where the series lets it have its own pool: the bus listener and
    # a few websocket cursors (connections.GEVENT_POOL).
    gevent = conn.GEVENT_POOL

    def per_pod(maxconn: int) -> int:
        if model.has_db_maxconn_gevent:
            return workers * maxconn + gevent
        return (workers + 1) * maxconn  # 16.0: the gevent process uses db_maxconn too

    def fitting_maxconn(pods: int) -> int:
        room = budget - fixed
        if model.has_db_maxconn_gevent:
            return (room - pods * gevent) // (pods * workers)
        return room // (pods * (workers + 1))

    maxconn = fitting_maxconn(max_replicas + WEB_MAX_SURGE)
    if maxconn < http_min:
        fit = (budget - fixed) // per_pod(http_min) - WEB_MAX_SURGE
        if fit < replicas:
            needed = reserved + fixed + (replicas + WEB_MAX_SURGE) * per_pod(http_min)
            raise InfeasibleSizing(
                f"{replicas} web replicas + {WEB_MAX_SURGE} rollout surge pod x "
                f"{per_pod(http_min)} connections (db_maxconn {http_min}) + {fixed} cron, "
                f"db-init and init-container connections exceed the connection budget of "
                f"{budget}; raise defaults.postgres_max_connections to at least {needed}, "
                "lower defaults.max_cron_threads or use a resource profile with larger web pods"
            )
        notes.append(
            f"autoscaling capped at {fit} replicas (+{WEB_MAX_SURGE} surge) by the connection "
            f"budget {budget}"
        )
        max_replicas = fit
        maxconn = http_min
    db_maxconn = min(ODOO_DB_MAXCONN_DEFAULT, maxconn)
    pods = max_replicas + WEB_MAX_SURGE
    at_max = pods * per_pod(db_maxconn) + fixed
    gevent_pool = gevent if model.has_db_maxconn_gevent else db_maxconn
    if model.has_db_maxconn_gevent:
        pod_formula = f"{workers} workers x db_maxconn + db_maxconn_gevent {gevent}"
        fit_formula = f"(({budget} - {fixed}) - {pods} x {gevent}) / ({pods} x {workers})"
    else:
        pod_formula = (
            f"({workers} workers + gevent, which shares db_maxconn in {i.series}) x db_maxconn"
        )
        fit_formula = f"({budget} - {fixed}) / ({pods} x {workers + 1})"
    notes.append(
        f"web pod = {pod_formula}; db_maxconn = min(64, {fit_formula}) = {db_maxconn} for "
        f"{max_replicas} replicas + {WEB_MAX_SURGE} surge pod; {at_max} connections at most "
        f"(of {budget})"
    )
    breakdown = {
        "cron_pods": cron_conn,
        "db_init_job": job_conn,
        "gevent_pool": gevent_pool,
        "platform": platform,
        "postgres_reserved": reserved,
        "tenant_owner_init": owner_conn,
        "web_pod": per_pod(db_maxconn),
        "web_pods": pods,
    }
    return _Pools(
        budget=budget,
        at_max=at_max,
        db_maxconn=db_maxconn,
        db_maxconn_gevent=gevent if model.has_db_maxconn_gevent else None,
        db_maxconn_cron=db_maxconn_cron,
        max_replicas=max_replicas,
        breakdown=breakdown,
    )


@dataclass(frozen=True)
class _Web:
    users: int
    workers_needed: int
    web_mem_mib: int
    per_worker_mib: int
    by_cpu: int
    by_mem: int
    replicas: int
    workers: int
    max_replicas: int


def _web_workers(i: SizingInputs, notes: list[str], warnings: list[str]) -> _Web:
    """Workers for the peak users, workers per pod (CPU and memory bound), web replicas
    (capped at the tier's bound, with a warning), and the HPA's maximum."""
    users = max(1, math.ceil(i.peak_users * i.size_factor))
    workers_needed = max(i.min_workers, math.ceil(users / i.users_per_worker))
    notes.append(
        f"workers needed = max({i.min_workers}, ceil({users} users / {i.users_per_worker} per "
        f"worker)) = {workers_needed}"
    )
    web_mem_mib = round(i.web_memory_gib * 1024)
    heavy = HEAVY_SHARE[i.customization]
    per_worker_mib = math.ceil((1 - heavy) * LIGHT_REQUEST_MIB + heavy * HEAVY_REQUEST_MIB)
    by_cpu = math.floor(2 * i.web_cpu) + 1
    by_mem = max(1, (web_mem_mib - POD_OVERHEAD_MIB) // per_worker_mib)
    per_pod = max(1, min(by_cpu, by_mem))
    notes.append(
        f"workers per pod <= min(2x{i.web_cpu} CPU + 1 = {by_cpu}, ({web_mem_mib} - "
        f"{POD_OVERHEAD_MIB}) MiB / {per_worker_mib} MiB per worker = {by_mem})"
    )
    base = i.web_replicas if i.production else 1
    replicas = max(base, math.ceil(workers_needed / per_pod))
    if i.max_web_replicas is not None and replicas > i.max_web_replicas:
        # The tier's bound is a contract (quota and cost on a shared cluster, the HPA's
        # ceiling): cap there, and say so on every plan until the plant moves to a tier or
        # resource profile that fits, rather than fail a fleet for a few users or render
        # more pods than the tier allows.
        served = i.max_web_replicas * per_pod * i.users_per_worker
        warnings.append(
            f"{users} users need {workers_needed} workers = {replicas} web replicas of "
            f"{per_pod}, above the tier's max_web_replicas {i.max_web_replicas}: capped at "
            f"{i.max_web_replicas} replicas, which serve {served} users at {i.users_per_worker}"
            " per worker"
        )
        notes.append(
            f"web replicas = min(ceil({workers_needed} / {per_pod}) = {replicas}, tier "
            f"max_web_replicas {i.max_web_replicas}) = {i.max_web_replicas} (capped)"
        )
        replicas = i.max_web_replicas
    workers = min(per_pod, max(min(i.min_workers, per_pod), math.ceil(workers_needed / replicas)))
    max_replicas = replicas
    if i.production and i.ha:
        max_replicas = max(replicas, i.max_web_replicas or 2 * replicas)

    return _Web(
        users,
        workers_needed,
        web_mem_mib,
        per_worker_mib,
        by_cpu,
        by_mem,
        replicas,
        workers,
        max_replicas,
    )


def _web_memory_limits(w: _Web, notes: list[str]) -> tuple[int, int]:
    """Odoo's ``limit_memory_soft`` and ``limit_memory_hard`` (MiB) for a web worker."""
    web_mem_mib, workers, per_worker_mib = w.web_mem_mib, w.workers, w.per_worker_mib
    # Odoo's memory limits are per worker, the container limit is for all of them: every
    # worker may reach the soft limit (it is recycled after its request) and one worker the
    # hard limit while the others sit at the average, without the pod being OOM-killed.
    usable = web_mem_mib - POD_OVERHEAD_MIB
    soft = min(ODOO_SOFT_DEFAULT_MIB, usable // workers)
    hard = min(ODOO_HARD_DEFAULT_MIB, max(soft, usable - (workers - 1) * per_worker_mib))
    notes.append(
        f"limit_memory_soft = min(2048, {usable} MiB / {workers} workers) = {soft} MiB; "
        f"limit_memory_hard = min(2560, {usable} - {workers - 1} x {per_worker_mib}) = {hard} MiB"
    )

    return soft, hard


def _cron_limits(i: SizingInputs, notes: list[str]) -> tuple[int, int, int]:
    """The cron container's memory and its process-wide soft and hard limits (MiB)."""
    cron_mem = round(i.cron_memory_gib * 1024)
    # The cron container runs Odoo threaded (workers = 0), where both limits apply to the
    # whole process, not to one worker: odoo/service/server.py ThreadedServer.process_limit
    # asks for a reload once memory_info(process) - the virtual size on Linux - passes
    # limit_memory_soft, and ThreadedServer.start -> set_limit_memory_hard sets RLIMIT_AS
    # to limit_memory_hard, past which allocations raise MemoryError. The virtual size
    # exceeds the resident one by address space each thread reserves and never touches
    # (its malloc arena and stack), so both limits are the container's memory figures
    # plus that reserve: resident memory then stays inside the container (MemoryError
    # comes before the OOM killer), and the soft limit leaves a quarter of the container
    # for the job that is running when the reload is asked.
    reserve = (i.max_cron_threads + 1) * CRON_THREAD_ADDRESS_SPACE_MIB
    cron_hard = cron_mem + reserve
    cron_soft = (cron_mem * CRON_SOFT_SHARE_PERCENT) // 100 + reserve
    notes.append(
        f"cron (threaded, limits per process): reserve = ({i.max_cron_threads} cron + 1 main "
        f"thread) x {CRON_THREAD_ADDRESS_SPACE_MIB} MiB arena and stack = {reserve} MiB; "
        f"limit_memory_soft = {CRON_SOFT_SHARE_PERCENT} % x {cron_mem} MiB + {reserve} = "
        f"{cron_soft} MiB; limit_memory_hard = {cron_mem} MiB + {reserve} = {cron_hard} MiB"
    )

    return cron_mem, cron_soft, cron_hard


@dataclass(frozen=True)
class _Postgres:
    factor: float
    volume: DataVolume
    storage_gib: int
    resources: Resources
    instances: int
    parameters: dict[str, str]


def _postgres(i: SizingInputs, notes: list[str]) -> _Postgres:
    """PostgreSQL: storage and memory from the data volume (the profile as the floor),
    scaled for non-production environments, and its parameters."""
    pg_factor = 1.0 if i.production else max(0.25, i.size_factor)
    pg_cpu_m = _cpu_m(_scaled(i.postgres_cpu, pg_factor, 0.25))
    vol = estimate_volume(
        orders_per_day=i.orders_per_day,
        stock_moves_per_day=i.stock_moves_per_day,
        named_users=i.named_users,
        databases=i.databases,
        horizon_years=i.horizon_years,
        growth_percent=i.growth_percent,
    )
    notes.append(
        f"data: {i.orders_per_day} orders + {i.stock_moves_per_day} stock moves a day = "
        f"{vol.rows_per_day} rows = {vol.bytes_per_day / MIB:.1f} MiB/day (with bloat); "
        f"{i.horizon_years} years at +{i.growth_percent:g} %/year + {i.databases} base "
        f"database(s) = {vol.data_gib:g} GiB"
    )
    by_volume_storage = math.ceil(vol.data_gib * (100 + PG_FREE_PERCENT) / 100 + PG_WAL_GIB)
    storage_need = max(i.postgres_storage_gib, by_volume_storage)
    pg_storage = max(10, math.ceil(storage_need * pg_factor))
    notes.append(
        f"postgres storage = max(profile {i.postgres_storage_gib}, ceil({vol.data_gib:g} GiB x "
        f"{100 + PG_FREE_PERCENT} % + {PG_WAL_GIB} GiB WAL) = {by_volume_storage}) x "
        f"{pg_factor:g} = {pg_storage} GiB"
    )
    by_volume_mem = math.ceil(vol.hot_mib * 100 / PG_CACHE_SHARE_PERCENT)
    mem_need = max(i.postgres_memory_gib * 1024, by_volume_mem)
    pg_mem = max(512, 256 * math.ceil(mem_need * pg_factor / 256))
    notes.append(
        f"postgres memory = max(profile {round(i.postgres_memory_gib * 1024)} MiB, working "
        f"set {vol.hot_mib} MiB ({i.databases} base + {HOT_DAYS} days) / "
        f"{PG_CACHE_SHARE_PERCENT} % cache = {by_volume_mem} MiB) x {pg_factor:g} = {pg_mem} MiB"
    )
    postgres = Resources(pg_cpu_m, pg_cpu_m, pg_mem, pg_mem)
    pg_instances = i.postgres_instances if i.production else 1
    shared_buffers = pg_mem // 4
    work_mem = max(4, (pg_mem - shared_buffers) // (i.pg_max_connections * 3))
    pg_params = {
        "effective_cache_size": f"{(pg_mem * 3) // 4}MB",
        "maintenance_work_mem": f"{min(2048, max(64, pg_mem // 16))}MB",
        "max_connections": str(i.pg_max_connections),
        "superuser_reserved_connections": str(conn.PG_SUPERUSER_RESERVED),
        "shared_buffers": f"{shared_buffers}MB",
        "work_mem": f"{work_mem}MB",
    }
    return _Postgres(pg_factor, vol, pg_storage, postgres, pg_instances, pg_params)


def _redis(
    i: SizingInputs, session_mib: int, guaranteed: bool, notes: list[str]
) -> tuple[int, Resources, int, int]:
    """Redis memory (sessions must fit maxmemory), resources, replicas and sentinels."""
    # Sessions must fit maxmemory (75 % of the container): volatile-lru would evict
    # logged-in users' sessions first.
    by_sessions = math.ceil(session_mib * 4 / 3)
    redis_base = max(i.redis_memory_gib * 1024, by_sessions)
    redis_mem = max(64, round(redis_base * (1.0 if i.production else 0.5)))
    notes.append(
        f"redis memory = max(profile {round(i.redis_memory_gib * 1024)} MiB, {i.named_users} "
        f"named users x 3 sessions x 4 KiB = {session_mib} MiB / 75 % maxmemory = "
        f"{by_sessions} MiB){' x 0.5' if not i.production else ''} = {redis_mem} MiB"
    )
    redis = Resources(100 if not guaranteed else 250, 250, redis_mem, redis_mem)
    # Replicas only where they are rendered: replication with Sentinel failover, for
    # production on an HA tier on Kubernetes (a VM runs one Redis container).
    redis_replicas = i.redis_replicas if (i.production and i.ha and i.kubernetes) else 0
    sentinels = REDIS_SENTINELS if redis_replicas else 0
    if i.redis_replicas and i.production and not redis_replicas:
        notes.append(
            f"redis: tier asks {i.redis_replicas} replicas, none rendered "
            f"({'not an HA tier' if not i.ha else 'a VM runs one Redis'})"
        )
    return redis_mem, redis, redis_replicas, sentinels


def _peak_quota(
    i: SizingInputs,
    *,
    steady: list[tuple[Resources, int]],
    rollout: list[tuple[Resources, int]],
    hook: list[tuple[Resources, int]],
    pgbouncer_pod: Resources,
    storage_gib: int,
    pvcs: int,
) -> Quota:
    """The namespace's quota at its peak: every steady pod, plus the larger of a rollout's
    surge pods and the database-initialisation hook Jobs (which run before the first surge
    pod; render.kubernetes.odoo.render_db_init_jobs: one per database, a cron worker's
    resources, Argo CD Sync hooks in the wave before Odoo's), rounded up to 100."""
    steady, rollout = list(steady), list(rollout)
    if i.pgbouncer:
        steady.append((pgbouncer_pod, PGBOUNCER_INSTANCES))
        rollout.append((pgbouncer_pod, 1))

    def total(attr: str) -> int:
        def add(pods: list[tuple[Resources, int]]) -> int:
            return sum(int(getattr(r, attr)) * n for r, n in pods)

        raw = add(steady) + max(add(rollout), add(hook))
        return math.ceil(raw / 100) * 100

    return Quota(
        cpu_request_m=total("cpu_request_m"),
        cpu_limit_m=total("cpu_limit_m"),
        memory_request_mib=total("memory_request_mib"),
        memory_limit_mib=total("memory_limit_mib"),
        storage_gib=storage_gib,
        pods=sum(n for _, n in steady) + max(sum(n for _, n in rollout), sum(n for _, n in hook)),
        pvcs=pvcs,
    )


def size_unit(i: SizingInputs) -> Sizing:
    """Size one Odoo instance (a plant, or a tenant group, in one environment)."""
    notes: list[str] = []
    warnings: list[str] = []
    w = _web_workers(i, notes, warnings)
    users, workers_needed, web_mem_mib = w.users, w.workers_needed, w.web_mem_mib
    by_cpu, by_mem, replicas, workers = w.by_cpu, w.by_mem, w.replicas, w.workers
    soft, hard = _web_memory_limits(w, notes)
    cron_mem, cron_soft, cron_hard = _cron_limits(i, notes)

    pools = _connections(i, workers, replicas, w.max_replicas, notes)
    max_replicas = pools.max_replicas

    guaranteed = i.production and i.ha
    web_cpu_m = _cpu_m(i.web_cpu)
    web = Resources(
        web_cpu_m if guaranteed else web_cpu_m // 2, web_cpu_m, web_mem_mib, web_mem_mib
    )
    cron_cpu_m = _cpu_m(i.cron_cpu)
    cron = Resources(cron_cpu_m if guaranteed else cron_cpu_m // 2, cron_cpu_m, cron_mem, cron_mem)

    pg = _postgres(i, notes)
    pg_factor, vol, pg_storage = pg.factor, pg.volume, pg.storage_gib
    postgres, pg_instances, pg_params = pg.resources, pg.instances, pg.parameters
    pool_size = max(5, pools.budget // max(1, i.databases))
    redis_mem, redis, redis_replicas, sentinels = _redis(i, vol.session_mib, guaranteed, notes)
    filestore = max(5, math.ceil(i.filestore_gib * pg_factor))

    # --- quota: the namespace at its peak (docs/capacity.md; check.capacity verifies it
    # against the rendered objects). Per pod the larger of its containers' sum and an
    # init container (Kubernetes PodRequests); PostgreSQL adds the backup sidecar.
    init = _side(100, 64, guaranteed=guaranteed)
    exporter = _side(100, 64, guaranteed=guaranteed)
    sentinel = _side(100, 64, guaranteed=guaranteed)
    backup_sidecar = _side(500, 512, guaranteed=guaranteed)
    pgbouncer_pod = Resources(
        PGBOUNCER_CPU_M, PGBOUNCER_CPU_M, PGBOUNCER_MEM_MIB, PGBOUNCER_MEM_MIB
    )
    redis_persistent = i.ha or i.production
    # Replicas are rendered exactly where sizing keeps them, always with Sentinel
    # (render.kubernetes.redis.redis_failover).
    redis_pods = 1 + redis_replicas
    redis_storage = min(10, max(1, math.ceil(redis_mem * 3 / 1024)))
    # A single web replica on a ReadWriteOnce filestore is replaced, not surged: a surge
    # pod on another node could not attach the volume (Multi-Attach).
    web_surge = 0 if (max_replicas == 1 and i.filestore_pvc) else 1
    quota = _peak_quota(
        i,
        steady=[
            (_pod(web, init), max_replicas),
            (_pod(cron, init), i.cron_replicas),
            (_plus(postgres, backup_sidecar), pg_instances),
            (_plus(redis, exporter), redis_pods),
            *([(sentinel, sentinels)] if sentinels else []),
        ],
        rollout=[(_pod(web, init), web_surge)],
        hook=[(_pod(cron, init), max(1, i.databases))],
        pgbouncer_pod=pgbouncer_pod,
        storage_gib=pg_storage * pg_instances
        + (filestore if i.filestore_pvc else 0)
        + (redis_storage * redis_pods if redis_persistent else 0),
        pvcs=pg_instances + int(i.filestore_pvc) + (redis_pods if redis_persistent else 0),
    )
    return Sizing(
        users=users,
        workers_needed=workers_needed,
        web_replicas=replicas,
        max_web_replicas=max_replicas,
        workers=workers,
        max_workers_by_cpu=by_cpu,
        max_workers_by_memory=by_mem,
        max_cron_threads=i.max_cron_threads,
        cron_replicas=i.cron_replicas,
        limit_memory_soft=soft * MIB,
        limit_memory_hard=hard * MIB,
        limit_time_cpu=i.limit_time_cpu,
        limit_time_real=i.limit_time_real,
        limit_request=i.limit_request,
        limit_memory_soft_cron=cron_soft * MIB,
        limit_memory_hard_cron=cron_hard * MIB,
        db_maxconn=pools.db_maxconn,
        db_maxconn_gevent=pools.db_maxconn_gevent,
        db_maxconn_cron=pools.db_maxconn_cron,
        connection_budget=pools.budget,
        connections_at_max=pools.at_max,
        connections=pools.breakdown,
        web=web,
        cron=cron,
        postgres_instances=pg_instances,
        postgres=postgres,
        postgres_storage_gib=pg_storage,
        postgres_parameters=pg_params,
        pgbouncer=i.pgbouncer,
        pgbouncer_pool_size=pool_size,
        redis_replicas=redis_replicas,
        redis=redis,
        redis_maxmemory_mib=(redis_mem * 3) // 4,
        filestore_gib=filestore,
        quota=quota,
        notes=tuple(notes),
        init=init,
        redis_exporter=exporter,
        redis_sentinel=sentinel,
        backup_sidecar=backup_sidecar,
        pgbouncer_pod=pgbouncer_pod,
        redis_storage_gib=redis_storage,
        web_surge=web_surge,
        redis_sentinels=sentinels,
        data_gib=vol.data_gib * pg_factor,
        wal_gib_per_day=round(vol.bytes_per_day * pg_factor * WAL_PER_DATA / 1024**3, 3),
        warnings=tuple(warnings),
    )


def redis_volume_gib(s: Sizing) -> int:
    """Size of each persistent Redis volume: room for AOF rewrites (three times memory)."""
    return s.redis_storage_gib


@dataclass(frozen=True)
class Cost:
    """A deployment's own monthly cost (deployment.json ``cost``): its services at the unit
    rates; node pools and the platform's allocation are added by ``plantops cost``."""

    currency: str
    compute_month: float
    storage_month: float
    cluster_month: float
    services: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_month(self) -> float:
        return round(self.compute_month + self.storage_month + self.cluster_month, 2)

    def share(self, fraction: float) -> Cost:
        return Cost(
            self.currency,
            round(self.compute_month * fraction, 2),
            round(self.storage_month * fraction, 2),
            round(self.cluster_month * fraction, 2),
            {k: round(v * fraction, 2) for k, v in self.services.items()},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "compute_month": self.compute_month,
            "storage_month": self.storage_month,
            "cluster_month": self.cluster_month,
            "services": dict(sorted(self.services.items())),
            "total_month": self.total_month,
        }

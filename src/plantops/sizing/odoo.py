"""Sizing by Odoo's own deployment rules; every formula and its source is in docs/sizing.md.

All quantities are integers (millicores, MiB) so output is exact and deterministic.
Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

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
MIN_DB_MAXCONN = 2
PGBOUNCER_CPU_M = 250
PGBOUNCER_MEM_MIB = 128
PGBOUNCER_INSTANCES = 2


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
    # Where the filestore is (a ReadWriteOnce/-Many volume, else object storage) and whether
    # Redis runs replicated with Sentinel: both change the pods and claims of the quota.
    filestore_pvc: bool = True
    redis_failover: bool = False


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
    db_maxconn: int
    db_maxconn_cron: int
    connection_budget: int
    connections_at_max: int
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


def size_unit(i: SizingInputs) -> Sizing:
    """Size one Odoo instance (a plant, or a tenant group, in one environment)."""
    notes: list[str] = []
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
    workers = min(per_pod, max(min(i.min_workers, per_pod), math.ceil(workers_needed / replicas)))
    max_replicas = replicas
    if i.production and i.ha:
        max_replicas = max(replicas, i.max_web_replicas or 2 * replicas)

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

    # Connections: every web worker and the gevent process of each pod holds its own pool of
    # up to db_maxconn connections; the cron pod runs threaded (workers = 0), one pool.
    cron_threads = i.max_cron_threads
    db_maxconn_cron = cron_threads + 1
    cron_conn = i.cron_replicas * db_maxconn_cron
    # PgBouncer runs in session mode (Odoo's bus needs LISTEN/NOTIFY and session state), so
    # every Odoo connection holds a server connection: it queues and smooths failovers but
    # does not multiply the budget, which stays PostgreSQL's own.
    budget = i.pg_max_connections - i.pg_reserved_connections
    per_replica_pools = workers + 1
    maxconn = (budget - cron_conn) // (max_replicas * per_replica_pools)
    if maxconn < MIN_DB_MAXCONN:
        fit = (budget - cron_conn) // (MIN_DB_MAXCONN * per_replica_pools)
        if fit < replicas:
            raise InfeasibleSizing(
                f"{replicas} web replicas x {per_replica_pools} processes x {MIN_DB_MAXCONN} "
                f"connections + {cron_conn} cron exceed the connection budget of {budget}; "
                "raise defaults.postgres_max_connections or use a resource profile with larger web pods"
            )
        notes.append(f"autoscaling capped at {fit} replicas by the connection budget {budget}")
        max_replicas = fit
        maxconn = MIN_DB_MAXCONN
    db_maxconn = min(ODOO_DB_MAXCONN_DEFAULT, maxconn)
    at_max = max_replicas * per_replica_pools * db_maxconn + cron_conn
    notes.append(
        f"db_maxconn = min(64, ({budget} - {cron_conn} cron) / ({max_replicas} replicas x "
        f"{per_replica_pools} pools)) = {db_maxconn}; {at_max} connections at most"
    )

    guaranteed = i.production and i.ha
    web_cpu_m = _cpu_m(i.web_cpu)
    web = Resources(
        web_cpu_m if guaranteed else web_cpu_m // 2, web_cpu_m, web_mem_mib, web_mem_mib
    )
    cron_cpu_m = _cpu_m(i.cron_cpu)
    cron_mem = round(i.cron_memory_gib * 1024)
    cron = Resources(cron_cpu_m if guaranteed else cron_cpu_m // 2, cron_cpu_m, cron_mem, cron_mem)

    pg_factor = 1.0 if i.production else max(0.25, i.size_factor)
    pg_cpu_m = _cpu_m(_scaled(i.postgres_cpu, pg_factor, 0.25))
    pg_mem = max(512, 256 * math.ceil(i.postgres_memory_gib * 1024 * pg_factor / 256))
    postgres = Resources(pg_cpu_m, pg_cpu_m, pg_mem, pg_mem)
    pg_instances = i.postgres_instances if i.production else 1
    pg_storage = max(10, math.ceil(i.postgres_storage_gib * pg_factor))
    shared_buffers = pg_mem // 4
    work_mem = max(4, (pg_mem - shared_buffers) // (i.pg_max_connections * 3))
    pg_params = {
        "effective_cache_size": f"{(pg_mem * 3) // 4}MB",
        "maintenance_work_mem": f"{min(2048, max(64, pg_mem // 16))}MB",
        "max_connections": str(i.pg_max_connections),
        "shared_buffers": f"{shared_buffers}MB",
        "work_mem": f"{work_mem}MB",
    }
    pool_size = max(5, (i.pg_max_connections - i.pg_reserved_connections) // max(1, i.databases))

    redis_mem = max(64, round(i.redis_memory_gib * 1024 * (1.0 if i.production else 0.5)))
    redis = Resources(100 if not guaranteed else 250, 250, redis_mem, redis_mem)
    redis_replicas = i.redis_replicas if i.production else 0
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
    redis_pods = 1 + (redis_replicas if i.redis_failover else 0)
    redis_storage = min(10, max(1, math.ceil(redis_mem * 3 / 1024)))
    # A single web replica on a ReadWriteOnce filestore is replaced, not surged: a surge
    # pod on another node could not attach the volume (Multi-Attach).
    web_surge = 0 if (max_replicas == 1 and i.filestore_pvc) else 1
    web_pod = _pod(web, init)
    steady = [
        (web_pod, max_replicas),
        (_pod(cron, init), i.cron_replicas),
        (_plus(postgres, backup_sidecar), pg_instances),
        (_plus(redis, exporter), redis_pods),
    ]
    if i.redis_failover and redis_pods > 1:
        steady.append((sentinel, REDIS_SENTINELS))
    rollout = [(web_pod, web_surge)]
    if i.pgbouncer:
        steady.append((pgbouncer_pod, PGBOUNCER_INSTANCES))
        rollout.append((pgbouncer_pod, 1))
    # Argo CD PreSync hooks (database initialisation) run before the rollout, never beside
    # it: room for one hook pod the size of a web pod.
    hook = [(web_pod, 1)]

    def total(attr: str) -> int:
        def add(pods: list[tuple[Resources, int]]) -> int:
            return sum(int(getattr(r, attr)) * n for r, n in pods)

        raw = add(steady) + max(add(rollout), add(hook))
        return math.ceil(raw / 100) * 100

    quota = Quota(
        cpu_request_m=total("cpu_request_m"),
        cpu_limit_m=total("cpu_limit_m"),
        memory_request_mib=total("memory_request_mib"),
        memory_limit_mib=total("memory_limit_mib"),
        storage_gib=pg_storage * pg_instances
        + (filestore if i.filestore_pvc else 0)
        + (redis_storage * redis_pods if redis_persistent else 0),
        pods=sum(n for _, n in steady) + max(sum(n for _, n in rollout), 1),
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
        max_cron_threads=cron_threads,
        cron_replicas=i.cron_replicas,
        limit_memory_soft=soft * MIB,
        limit_memory_hard=hard * MIB,
        limit_time_cpu=i.limit_time_cpu,
        limit_time_real=i.limit_time_real,
        limit_request=i.limit_request,
        db_maxconn=db_maxconn,
        db_maxconn_cron=db_maxconn_cron,
        connection_budget=budget,
        connections_at_max=at_max,
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
    )


@dataclass(frozen=True)
class Cost:
    currency: str
    compute_month: float
    storage_month: float
    cluster_month: float

    @property
    def total_month(self) -> float:
        return round(self.compute_month + self.storage_month + self.cluster_month, 2)

    def share(self, fraction: float) -> Cost:
        return Cost(
            self.currency,
            round(self.compute_month * fraction, 2),
            round(self.storage_month * fraction, 2),
            round(self.cluster_month * fraction, 2),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "compute_month": self.compute_month,
            "storage_month": self.storage_month,
            "cluster_month": self.cluster_month,
            "total_month": self.total_month,
        }


def price_unit(
    s: Sizing,
    *,
    currency: str,
    vcpu_hour: float,
    gib_hour: float,
    storage_gib_month: float,
    hours_per_month: float,
    cluster_month: float,
) -> Cost:
    """Monthly cost at steady state (requested resources of the base replica count)."""
    pods = [
        (s.web, s.web_replicas),
        (s.cron, s.cron_replicas),
        (s.postgres, s.postgres_instances),
        (s.redis, 1 + s.redis_replicas),
    ]
    cpu = sum(r.cpu_request_m * n for r, n in pods) / 1000
    mem_gib = sum(r.memory_request_mib * n for r, n in pods) / 1024
    if s.pgbouncer:
        cpu += PGBOUNCER_CPU_M * PGBOUNCER_INSTANCES / 1000
        mem_gib += PGBOUNCER_MEM_MIB * PGBOUNCER_INSTANCES / 1024
    compute = hours_per_month * (cpu * vcpu_hour + mem_gib * gib_hour)
    storage = storage_gib_month * s.quota.storage_gib
    return Cost(currency, round(compute, 2), round(storage, 2), round(cluster_month, 2))

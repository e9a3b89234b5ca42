"""Monthly cost by service, environment and plant, and the shared platform's allocation.

Every formula is in docs/cost.md. Two steps:

- :func:`price_services` prices one deployment's services from its sizing, as rendered
  (requests at unit rates, volumes at their storage class's rate, backups from the
  retention and the data size, a VM at the size it needs).
- :func:`price_fleet` turns those into cost lines: node pools a plant owns are priced as
  the nodes they are (never below their ``min_nodes``), and each cluster's platform
  services (control plane, ingress, monitoring, idle shared nodes) are allocated to the
  deployments on it by their share of its compute cost.

Pure: no I/O; amounts stay unrounded until a formatter shows them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from plantops.caches import warm_table
from plantops.sizing.odoo import (
    PGBOUNCER_CPU_M,
    PGBOUNCER_INSTANCES,
    PGBOUNCER_MEM_MIB,
    Sizing,
    redis_volume_gib,
)
from plantops.spec.models import ClusterSpec, NodePool, Pricing, Retention, StorageSettings

SERVICES = (
    "odoo-web",
    "odoo-cron",
    "postgresql",
    "redis",
    "backup",
    "ingress",
    "monitoring",
    "cluster",
)
PLANT, PLATFORM = "plant", "platform"
# OS, Docker, Traefik and pgBackRest on a VM plant, beside the containers' limits.
VM_RESERVE_CPU_M = 1000
VM_RESERVE_MIB = 2048
# Default VM shapes when pricing.vm_sizes is empty: 2^n vCPU with 4 GiB per vCPU.
VM_GIB_PER_VCPU = 4
# Compressed size of a base backup: CloudNativePG's barman-cloud with gzip
# (render/kubernetes/cloudnativepg.py "compression": "gzip") and pgBackRest with zst
# (render/compose/stack.py compress-type=zst); Odoo's tables (text, jsonb, numerics)
# compress to about a third.
BACKUP_COMPRESSION = 0.35


@dataclass(frozen=True)
class Rates:
    currency: str
    vcpu_hour: float
    gib_hour: float
    hours_per_month: float
    storage_gib_month: float
    class_gib_month: Mapping[str, float]
    backup_gib_month: float

    @classmethod
    def from_pricing(cls, p: Pricing, hours_per_month: float) -> Rates:
        return cls(
            currency=p.currency,
            vcpu_hour=p.vcpu_hour,
            gib_hour=p.gib_hour,
            hours_per_month=hours_per_month,
            storage_gib_month=p.storage_gib_month,
            class_gib_month=dict(p.storage_classes),
            backup_gib_month=(
                p.backup_gib_month if p.backup_gib_month is not None else p.storage_gib_month
            ),
        )

    def compute(self, cpu_m: float, mem_mib: float) -> float:
        return self.hours_per_month * (
            cpu_m / 1000 * self.vcpu_hour + mem_mib / 1024 * self.gib_hour
        )

    def storage(self, gib: float, storage_class: str | None) -> float:
        rate = self.class_gib_month.get(storage_class or "", self.storage_gib_month)
        return gib * rate

    def node_month(self, pool: NodePool) -> float:
        return self.compute(pool.vcpu * 1000, pool.memory_gib * 1024)


@dataclass(frozen=True)
class StoragePlacement:
    """Storage classes as rendered; ``None`` filestore class means object storage."""

    postgres: str | None
    filestore: str | None
    filestore_in_bucket: bool
    redis: str | None
    redis_persistent: bool


def default_class(cluster: ClusterSpec) -> str:
    return next(s.name for s in cluster.storage_classes if s.default)


def rwx_class(cluster: ClusterSpec) -> str | None:
    return next(
        (s.name for s in cluster.storage_classes if "ReadWriteMany" in s.access_modes), None
    )


def postgres_storage_class(cluster: ClusterSpec, storage: StorageSettings) -> str:
    return storage.postgres_storage_class or default_class(cluster)


def filestore_storage_class(
    cluster: ClusterSpec, storage: StorageSettings, max_web_replicas: int
) -> str:
    """The filestore volume's class: ReadWriteMany once more than one web pod mounts it."""
    if storage.filestore_storage_class:
        return storage.filestore_storage_class
    if max_web_replicas > 1:
        return rwx_class(cluster) or default_class(cluster)
    return default_class(cluster)


@dataclass(frozen=True)
class Backup:
    base_backups: int
    base_gib: float
    wal_gib: float

    @property
    def gib(self) -> float:
        return self.base_backups * self.base_gib + self.wal_gib


def backup_interval_minutes(rpo_minutes: int, pitr: bool) -> int:
    """Minutes between base backups: the RPO, or daily where WAL archiving covers the RPO."""
    return 1440 if pitr else rpo_minutes


def retention_days(r: Retention) -> int:
    """CloudNativePG's recovery window as rendered (cloudnativepg._retention)."""
    if r.daily:
        return r.daily
    if r.weekly:
        return 7 * r.weekly
    return 30 * max(1, r.monthly)


def backup_kubernetes(s: Sizing, r: Retention, rpo_minutes: int, pitr: bool) -> Backup:
    """barman-cloud keeps every base backup inside the recovery window plus the one
    before it, and the WAL since the oldest: full, compressed copies (tarballs).

    CloudNativePG runs ``barman-cloud-backup-delete --retention-policy "RECOVERY WINDOW
    OF n DAYS"`` (plugin-barman-cloud docs, retention.md): the first valid backup is the
    most recent one completed before now − window; older ones are deleted."""
    per_day = 1440 / backup_interval_minutes(rpo_minutes, pitr)
    days = retention_days(r)
    return Backup(
        base_backups=math.ceil(days * per_day) + 1,
        base_gib=s.data_gib * BACKUP_COMPRESSION,
        wal_gib=s.wal_gib_per_day * days * BACKUP_COMPRESSION,
    )


def backup_vm(s: Sizing, r: Retention) -> Backup:
    """pgBackRest as rendered (repo1-retention-full = weekly, diff = daily): full backups
    and daily differentials, each holding at most a week of changes (half on average)."""
    fulls = max(1, r.weekly)
    diff_gib = s.wal_gib_per_day / 3 * 3.5  # new data per day (WAL / write factor) x days
    return Backup(
        base_backups=fulls,
        base_gib=s.data_gib * BACKUP_COMPRESSION,
        wal_gib=(max(1, r.daily) * diff_gib + s.wal_gib_per_day * 7 * fulls) * BACKUP_COMPRESSION,
    )


@dataclass(frozen=True)
class VmSizeChoice:
    name: str
    vcpu: float
    memory_gib: float
    month: float


def choose_vm(s: Sizing, pricing: Pricing, rates: Rates) -> VmSizeChoice:
    """The cheapest VM size that holds every container's limit plus the host's reserve."""
    cpu_m = s.web.cpu_limit_m + s.cron.cpu_limit_m + s.postgres.cpu_limit_m
    cpu_m += s.redis.cpu_limit_m + VM_RESERVE_CPU_M
    mib = s.web.memory_limit_mib + s.cron.memory_limit_mib + s.postgres.memory_limit_mib
    mib += s.redis.memory_limit_mib + VM_RESERVE_MIB
    fitting = [v for v in pricing.vm_sizes if v.vcpu * 1000 >= cpu_m and v.memory_gib * 1024 >= mib]
    if fitting:
        v = min(fitting, key=lambda v: (v.month, v.name))
        return VmSizeChoice(v.name, v.vcpu, v.memory_gib, v.month)
    vcpu = 2
    while vcpu * 1000 < cpu_m or vcpu * VM_GIB_PER_VCPU * 1024 < mib:
        vcpu *= 2
    mem = vcpu * VM_GIB_PER_VCPU
    return VmSizeChoice(f"{vcpu}vcpu-{mem}gib", vcpu, mem, rates.compute(vcpu * 1000, mem * 1024))


@dataclass(frozen=True)
class ServiceCost:
    service: str
    compute_month: float = 0.0
    storage_month: float = 0.0
    other_month: float = 0.0

    @property
    def total_month(self) -> float:
        return self.compute_month + self.storage_month + self.other_month


def price_services(
    s: Sizing,
    rates: Rates,
    *,
    placement: StoragePlacement,
    backup: Backup,
    vm: VmSizeChoice | None = None,
) -> tuple[ServiceCost, ...]:
    """One deployment's own services at steady state (base replicas, requests)."""
    redis_pods = 1 + s.redis_replicas
    exp_cpu, exp_mib = s.redis_exporter.cpu_request_m, s.redis_exporter.memory_request_mib
    sen_cpu, sen_mib = s.redis_sentinel.cpu_request_m, s.redis_sentinel.memory_request_mib
    filestore = (
        s.filestore_gib * rates.backup_gib_month
        if placement.filestore_in_bucket
        else rates.storage(s.filestore_gib, placement.filestore)
    )
    postgres_storage = rates.storage(
        s.postgres_storage_gib * s.postgres_instances, placement.postgres
    )
    redis_storage = (
        rates.storage(redis_volume_gib(s) * redis_pods, placement.redis)
        if placement.redis_persistent
        else 0.0
    )
    backup_month = backup.gib * rates.backup_gib_month
    if vm is not None:
        # What runs on the VM: one container each, at their limits; the VM's price is
        # split among them by the compute their limits would cost.
        parts = {
            "odoo-web": rates.compute(s.web.cpu_limit_m, s.web.memory_limit_mib),
            "odoo-cron": rates.compute(s.cron.cpu_limit_m, s.cron.memory_limit_mib),
            "postgresql": rates.compute(s.postgres.cpu_limit_m, s.postgres.memory_limit_mib),
            "redis": rates.compute(s.redis.cpu_limit_m, s.redis.memory_limit_mib),
        }
        whole = sum(parts.values()) or 1.0
        compute = {k: vm.month * v / whole for k, v in parts.items()}
    else:
        pgb = (
            rates.compute(
                PGBOUNCER_CPU_M * PGBOUNCER_INSTANCES, PGBOUNCER_MEM_MIB * PGBOUNCER_INSTANCES
            )
            if s.pgbouncer
            else 0.0
        )
        compute = {
            "odoo-web": s.web_replicas
            * rates.compute(s.web.cpu_request_m, s.web.memory_request_mib),
            "odoo-cron": s.cron_replicas
            * rates.compute(s.cron.cpu_request_m, s.cron.memory_request_mib),
            "postgresql": s.postgres_instances
            * rates.compute(s.postgres.cpu_request_m, s.postgres.memory_request_mib)
            + pgb,
            "redis": redis_pods
            * rates.compute(s.redis.cpu_request_m + exp_cpu, s.redis.memory_request_mib + exp_mib)
            + s.redis_sentinels * rates.compute(sen_cpu, sen_mib),
        }
    return (
        ServiceCost("odoo-web", compute["odoo-web"], filestore),
        ServiceCost("odoo-cron", compute["odoo-cron"]),
        ServiceCost("postgresql", compute["postgresql"], postgres_storage),
        ServiceCost("redis", compute["redis"], redis_storage),
        ServiceCost("backup", 0.0, backup_month),
    )


@dataclass(frozen=True)
class UnitCost:
    """One deployment as the fleet model sees it."""

    deployment: str
    environment: str
    cluster: str | None
    plant_shares: Mapping[str, float]
    services: tuple[ServiceCost, ...]
    capacity: str | None = None
    """Key of the node pools this deployment runs on alone with its plant (priced as nodes)."""
    cluster_fee_month: float = 0.0


@dataclass(frozen=True)
class Capacity:
    """Node pools a plant owns: never cheaper than their min_nodes."""

    key: str
    plant: str
    nodes: int
    floor_month: float


@dataclass(frozen=True)
class ClusterPlatform:
    name: str
    shared: bool
    fee_month: float
    ingress_month: float
    monitoring_month: float
    floor_month: float
    """min_nodes of the pools no plant owns, priced as nodes (idle capacity is platform)."""


class CostLine(NamedTuple):
    """One priced line. A named tuple, not a frozen dataclass: a 1,000-plant fleet has
    ~32,000 of them, built on every plan, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) made them most of the cost model's time."""

    plant: str
    environment: str
    deployment: str
    cluster: str
    service: str
    kind: str
    month: float


@dataclass(frozen=True)
class CapacityNote:
    key: str
    plant: str
    nodes: int
    floor_month: float
    requested_month: float


@dataclass(frozen=True)
class FleetCost:
    currency: str
    lines: tuple[CostLine, ...]
    platform_month: float
    """The shared platform's cost before allocation (control planes, ingress, monitoring
    and idle nodes of shared clusters)."""
    capacity: tuple[CapacityNote, ...] = field(default=())

    @property
    def total_month(self) -> float:
        return math.fsum(line.month for line in self.lines)

    def by(self, dimension: str) -> dict[str, float]:
        """Totals by plant, env (environment), service, kind or cluster, keys sorted."""
        attr = {"env": "environment"}.get(dimension, dimension)
        out: dict[str, list[float]] = defaultdict(list)
        for line in self.lines:
            out[str(getattr(line, attr))].append(line.month)
        return {k: math.fsum(v) for k, v in sorted(out.items())}

    def for_plant(self, plant: str) -> float:
        return self._plant_totals.get(plant, 0.0)

    @cached_property
    def _plant_totals(self) -> dict[str, float]:
        # One pass over the lines for every plant: the plan summary asks for each of a
        # 1,000-plant fleet's plants (32,000 lines), which scanning per plant made quadratic.
        by_plant: dict[str, list[float]] = defaultdict(list)
        for line in self.lines:
            by_plant[line.plant].append(line.month)
        return {plant: math.fsum(months) for plant, months in by_plant.items()}


def _lines(unit: UnitCost, service: str, kind: str, amount: float) -> Iterable[CostLine]:
    for plant, share in sorted(unit.plant_shares.items()):
        yield CostLine(
            plant,
            unit.environment,
            unit.deployment,
            unit.cluster or "vm",
            service,
            kind,
            amount * share,
        )


def price_fleet(
    currency: str,
    units: Sequence[UnitCost],
    capacities: Sequence[Capacity] = (),
    clusters: Sequence[ClusterPlatform] = (),
) -> FleetCost:
    """Cost lines for every deployment, node pools priced as nodes, platform allocated."""
    owned = {c.key: c for c in capacities}
    requested: dict[str, float] = defaultdict(float)
    for u in units:
        if u.capacity is not None:
            requested[u.capacity] += sum(sc.compute_month for sc in u.services)
    # A plant's pools cost at least their min_nodes; requests beyond that are what the
    # autoscaler adds, at the unit rates.
    scale = {
        key: (max(c.floor_month, requested[key]) / requested[key] if requested[key] else 1.0)
        for key, c in owned.items()
    }
    lines: list[CostLine] = []
    compute_on: dict[str, list[tuple[UnitCost, float]]] = defaultdict(list)
    shared_compute: dict[str, float] = defaultdict(float)
    # the process memo (plantops.services.warm): a unit's own lines, while the unit is
    # the very same (frozen) object and its node-pool factor the same
    table = warm_table("cost-lines")
    for u in units:
        factor = scale.get(u.capacity, 1.0) if u.capacity else 1.0
        found = table.get(u.deployment) if table is not None else None
        if found is not None and found[0] is u and found[1] == factor:
            own, compute = found[2], found[3]
        else:
            own = []
            compute = 0.0
            for sc in u.services:
                amount = sc.compute_month * factor + sc.storage_month + sc.other_month
                compute += sc.compute_month * factor
                own += _lines(u, sc.service, PLANT, amount)
            if u.cluster_fee_month:
                own += _lines(u, "cluster", PLANT, u.cluster_fee_month)
            if table is not None:
                table.put(u.deployment, (u, factor, own, compute))
        lines += own
        if u.cluster is not None:
            compute_on[u.cluster].append((u, compute))
            if u.capacity is None:
                shared_compute[u.cluster] += compute
    platform = 0.0
    for cl in sorted(clusters, key=lambda c: c.name):
        idle = max(0.0, cl.floor_month - shared_compute[cl.name])
        parts = {
            "cluster": (cl.fee_month if cl.shared else 0.0) + idle,
            "ingress": cl.ingress_month,
            "monitoring": cl.monitoring_month,
        }
        kind = PLATFORM if cl.shared else PLANT
        if kind == PLATFORM:
            platform += sum(parts.values())
        members = compute_on.get(cl.name, [])
        weight = math.fsum(c for _, c in members)
        for service, amount in parts.items():
            if not amount:
                continue
            if weight <= 0:
                # Nothing runs there yet: the cost stays the platform's, unallocated.
                lines.append(CostLine("-", "-", "-", cl.name, service, kind, amount))
                continue
            for u, c in members:
                # The share first: c / weight is in [0, 1] even for vanishing weights,
                # where amount * c would underflow first.
                lines += _lines(u, service, kind, amount * (c / weight))
    notes = tuple(
        CapacityNote(k, c.plant, c.nodes, c.floor_month, requested[k])
        for k, c in sorted(owned.items())
    )
    return FleetCost(currency, tuple(lines), platform, notes)

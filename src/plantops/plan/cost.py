"""The fleet's cost from its plan: each deployment priced as rendered, node pools a plant
owns priced as nodes, each cluster's platform allocated (docs/cost.md). Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import MappingProxyType
from typing import TYPE_CHECKING

from plantops.caches import warm_table
from plantops.model import ActiveOverride, Fleet
from plantops.sizing.cost import (
    Backup,
    Capacity,
    ClusterPlatform,
    FleetCost,
    Rates,
    ServiceCost,
    StoragePlacement,
    UnitCost,
    backup_kubernetes,
    backup_vm,
    choose_vm,
    default_class,
    filestore_storage_class,
    postgres_storage_class,
    price_fleet,
    price_services,
)
from plantops.sizing.odoo import Sizing
from plantops.spec.models import ClusterSpec, NodePool, TierSpec

if TYPE_CHECKING:
    from plantops.plan.deployments import Deployment, Plan


def rates(fleet: Fleet) -> Rates:
    return Rates.from_pricing(fleet.spec.pricing, fleet.spec.defaults.hours_per_month)


def price_deployment(
    fleet: Fleet,
    sizing: Sizing,
    *,
    cluster: ClusterSpec | None,
    tier: TierSpec,
    production: bool,
) -> tuple[ServiceCost, ...]:
    """One deployment's services as rendered: storage classes, Redis persistence, backups."""
    r = rates(fleet)
    storage = fleet.spec.platform.storage
    in_bucket = storage.filestore == "s3"
    backup: Backup
    if cluster is None:
        backup = backup_vm(sizing, tier.backup.retention)
        placement = StoragePlacement(None, None, in_bucket, None, True)
        return _price(sizing, r, placement, backup, fleet, vm=True)
    b = tier.backup
    backup = backup_kubernetes(sizing, b.retention, b.rpo_minutes, b.pitr)
    placement = StoragePlacement(
        postgres=postgres_storage_class(cluster, storage),
        filestore=filestore_storage_class(cluster, storage, sizing.max_web_replicas),
        filestore_in_bucket=in_bucket,
        # render/kubernetes/redis.py: a volume for AOF (HA tiers) or RDB (production).
        redis=default_class(cluster),
        redis_persistent=tier.ha or production,
    )
    return _price(sizing, r, placement, backup, fleet, vm=False)


def _price(
    sizing: Sizing,
    r: Rates,
    placement: StoragePlacement,
    backup: Backup,
    fleet: Fleet,
    *,
    vm: bool,
) -> tuple[ServiceCost, ...]:
    size = choose_vm(sizing, fleet.spec.pricing, r) if vm else None
    return price_services(sizing, r, placement=placement, backup=backup, vm=size)


def _owned_pools(dep: Deployment) -> tuple[NodePool, ...]:
    """Node pools the deployment's plant has to itself: its dedicated pools, or every pool
    of the cluster a dedicated-cluster plant owns."""
    if dep.cluster is None:
        return ()
    if dep.pattern == "dedicated-cluster":
        return tuple(dep.cluster.node_pools)
    if dep.pattern == "dedicated-environment":
        plants = {t.plant for t in dep.tenants}
        return tuple(p for p in dep.cluster.node_pools if p.dedicated_to in plants)
    return ()


def _node_month(fleet: Fleet, r: Rates, cluster: ClusterSpec, pool: NodePool) -> float:
    return fleet.spec.pricing.node_month.get(f"{cluster.name}/{pool.name}", r.node_month(pool))


def cost_plan(plan: Plan) -> FleetCost:
    """Every deployment's cost lines, with node pools and the platform's allocation."""
    fleet = plan.fleet
    r = rates(fleet)
    p = fleet.spec.pricing
    units: list[UnitCost] = []
    capacities: dict[str, Capacity] = {}
    owned_pool_names: dict[str, set[str]] = {}
    # the process memo (plantops.services.warm): a deployment's UnitCost, while the
    # deployment is the very same (frozen) object; the UnitCost then is too, which lets
    # price_fleet keep its lines
    table = warm_table("cost-units")
    for d in plan.deployments:
        pools = _owned_pools(d)
        key = None
        if pools and d.cluster is not None:
            key = f"{d.cluster.name}/{'+'.join(sorted(x.name for x in pools))}"
            owned_pool_names.setdefault(d.cluster.name, set()).update(x.name for x in pools)
            capacities[key] = Capacity(
                key,
                d.tenants[0].plant,
                sum(x.min_nodes for x in pools),
                sum(x.min_nodes * _node_month(fleet, r, d.cluster, x) for x in pools),
            )
        found = table.get(d.id) if table is not None else None
        if found is not None and found[0] is d:
            units.append(found[1])
            continue
        users = sum(t.users for t in d.tenants)
        unit = UnitCost(
            deployment=d.id,
            environment=d.environment.name,
            cluster=d.cluster.name if d.cluster else None,
            plant_shares={t.plant: t.users / users for t in d.tenants},
            services=d.services,
            capacity=key,
            cluster_fee_month=d.cost.cluster_month,
        )
        if table is not None:
            table.put(d.id, (d, unit))
        units.append(unit)
    clusters = [
        ClusterPlatform(
            name=c.name,
            shared=c.kind == "shared",
            fee_month=p.shared_cluster_month,
            ingress_month=p.ingress_month,
            monitoring_month=p.monitoring_month,
            floor_month=sum(
                x.min_nodes * _node_month(fleet, r, c, x)
                for x in c.node_pools
                if x.name not in owned_pool_names.get(c.name, set())
            )
            if c.kind == "shared"
            else 0.0,
        )
        for c in fleet.spec.clusters
    ]
    return price_fleet(p.currency, units, tuple(capacities.values()), clusters)


WHAT_IF_TARGETS = ("pattern", "tier", "resource_profile")


def with_override(fleet: Fleet, plant: str, target: str, value: str) -> Fleet:
    """The fleet with one more exception in force for ``plant`` (for a what-if)."""
    where = fleet.source.locate_plant(plant)
    plants = []
    for original in fleet.plants:
        pl = original
        if pl.code == plant:
            ov = ActiveOverride(
                target, value, "what-if", f"what-if {target}={value}", dt.date.max, None, where
            )
            pl = dataclasses.replace(pl, overrides=MappingProxyType({**pl.overrides, target: ov}))
        plants.append(pl)
    return dataclasses.replace(fleet, plants=tuple(plants))

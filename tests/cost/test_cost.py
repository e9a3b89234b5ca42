"""The cost model (docs/cost.md): per service, node pools, storage classes, VMs, platform
allocation, what-if; and the regressions on what is costed vs what is rendered."""

from __future__ import annotations

import dataclasses
import math
import shutil
from functools import cache
from pathlib import Path

import pytest
from hypothesis import example as hypothesis_example
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops import services
from plantops.errors import SpecError
from plantops.model import Fleet
from plantops.plan import Plan, build_plan
from plantops.plan.cost import cost_plan, rates, with_override
from plantops.render.kubernetes.redis import redis_failover
from plantops.sizing.cost import (
    Capacity,
    ClusterPlatform,
    ServiceCost,
    UnitCost,
    choose_vm,
    price_fleet,
)
from tests.render.conftest import EXAMPLE, TODAY, Rendered, example

__all__ = ["example"]  # the fixture


@cache
def fleet() -> Fleet:
    return services.open_fleet(EXAMPLE, today=TODAY).fleet


@cache
def plan() -> Plan:
    return build_plan(fleet())


def _dep(dep_id: str):  # type: ignore[no-untyped-def]
    return next(d for d in plan().deployments if d.id == dep_id)


def _priced(f: Fleet, **pricing: object) -> Fleet:
    spec = f.spec.model_copy(update={"pricing": f.spec.pricing.model_copy(update=pricing)})
    return dataclasses.replace(f, spec=spec)


@pytest.mark.parametrize("dimension", ["plant", "env", "service", "kind", "cluster"])
def test_every_dimension_sums_to_the_fleet_total(dimension: str) -> None:
    c = cost_plan(plan())
    assert math.isclose(sum(c.by(dimension).values()), c.total_month, rel_tol=1e-9)
    assert c.total_month > 0


@pytest.mark.parametrize(
    "dep_id",
    [d.id for d in build_plan(services.open_fleet(EXAMPLE, today=TODAY).fleet).deployments],
)
def test_services_sum_to_the_deployment_cost(dep_id: str) -> None:
    d = _dep(dep_id)
    assert set(d.cost.services) == {"odoo-web", "odoo-cron", "postgresql", "redis", "backup"}
    assert math.isclose(
        sum(d.cost.services.values()) + d.cost.cluster_month, d.cost.total_month, abs_tol=0.05
    )


def test_shared_platform_allocation_sums_to_the_platform_cost() -> None:
    f = _priced(fleet(), ingress_month=40.0, monitoring_month=60.0, shared_cluster_month=73.0)
    c = cost_plan(build_plan(f))
    platform = sum(x.month for x in c.lines if x.kind == "platform")
    assert math.isclose(platform, c.platform_month, rel_tol=1e-9)
    shared = [cl for cl in f.spec.clusters if cl.kind == "shared"]
    # every shared cluster: fee + ingress + monitoring, plus its idle nodes
    assert c.platform_month >= len(shared) * (73 + 40 + 60)
    per_cluster = {cl.name: 0.0 for cl in shared}
    for x in c.lines:
        if x.kind == "platform" and x.service in ("ingress", "monitoring"):
            per_cluster[x.cluster] += x.month
    assert all(math.isclose(v, 100.0) for v in per_cluster.values())


def test_dedicated_node_pools_are_priced_as_their_nodes() -> None:
    c = cost_plan(plan())
    lyon = next(n for n in c.capacity if n.plant == "lyon-meddev")
    # its odoo and db pools' minimum nodes, each at the unit rates for its size
    p = fleet().spec.pricing
    node = lambda v, g: 730 * (v * p.vcpu_hour + g * p.gib_hour)  # noqa: E731
    pools = [
        pool
        for cl in fleet().spec.clusters
        for pool in cl.node_pools
        if pool.dedicated_to == "lyon-meddev"
    ]
    assert {pool.name for pool in pools} == {"odoo", "db"}
    assert lyon.nodes == sum(pool.min_nodes for pool in pools) == 6
    floor = sum(pool.min_nodes * node(pool.vcpu, pool.memory_gib) for pool in pools)
    assert math.isclose(lyon.floor_month, floor)
    assert lyon.floor_month > lyon.requested_month  # more than the requests imply
    compute = sum(
        x.month
        for x in c.lines
        if x.plant == "lyon-meddev"
        and x.service in ("odoo-web", "odoo-cron", "postgresql", "redis")
    )
    storage = sum(sc.storage_month for d in plan().for_plant("lyon-meddev") for sc in d.services)
    backup = sum(x.month for x in c.lines if x.plant == "lyon-meddev" and x.service == "backup")
    assert math.isclose(compute - (storage - backup), lyon.floor_month, rel_tol=1e-9)


def test_node_prices_from_the_pricing_override_the_unit_rates() -> None:
    f = _priced(fleet(), node_month={"eu-lyon-meddev/odoo": 500.0, "eu-lyon-meddev/db": 700.0})
    lyon = next(n for n in cost_plan(build_plan(f)).capacity if n.plant == "lyon-meddev")
    assert lyon.floor_month == 3 * 500 + 3 * 700


def test_rwx_storage_class_at_its_own_rate() -> None:
    base = _dep("us-shared-1/monterrey-assembly-prod")  # 3+ web replicas: efs-rwx filestore
    f = _priced(fleet(), storage_classes={"efs-rwx": 0.5})
    dep = next(d for d in build_plan(f).deployments if d.id == base.id)
    web = lambda d: next(s for s in d.services if s.service == "odoo-web")  # noqa: E731
    fs = dep.sizing.filestore_gib
    assert math.isclose(web(dep).storage_month, fs * 0.5)
    assert math.isclose(web(base).storage_month, fs * 0.33)  # the example's efs-rwx rate
    plain = _priced(fleet(), storage_classes={})
    dep0 = next(d for d in build_plan(plain).deployments if d.id == base.id)
    assert math.isclose(web(dep0).storage_month, fs * 0.095)  # unlisted: storage_gib_month
    # PostgreSQL stays on gp3 at the default rate
    pg = next(s for s in dep.services if s.service == "postgresql")
    assert math.isclose(
        pg.storage_month,
        dep.sizing.postgres_storage_gib * dep.sizing.postgres_instances * 0.095,
    )


def test_vm_is_priced_by_its_vm_size() -> None:
    from plantops.spec.models import VmSize

    sizes = [
        VmSize(name="b2", vcpu=2, memory_gib=8, month=60.0),
        VmSize(name="b4", vcpu=4, memory_gib=16, month=120.0),
        VmSize(name="b8", vcpu=8, memory_gib=32, month=240.0),
    ]
    f = _priced(fleet(), vm_sizes=sizes)
    dep = next(d for d in build_plan(f).deployments if d.id == "vm/leipzig-vm-prod")
    s = dep.sizing
    # web 1 + cron 0.5 + postgres 1 + redis 0.25 vCPU + 1 reserve = 3.75 vCPU: the b4
    vm = choose_vm(s, f.spec.pricing, rates(f))
    assert vm.name == "b4"
    compute = sum(sc.compute_month for sc in dep.services)
    assert math.isclose(compute, 120.0)
    assert not any(n.plant == "leipzig-vm" for n in cost_plan(build_plan(f)).capacity)


def test_backup_storage_follows_retention_and_size() -> None:
    d = _dep("us-detroit-auto/detroit-stamping-prod")
    backup = next(s for s in d.services if s.service == "backup")
    # critical tier: PITR, daily base backups for 14 days (+1), WAL for 14 days
    s = d.sizing
    gib = (15 * s.data_gib + 14 * s.wal_gib_per_day) * 0.35
    assert math.isclose(backup.storage_month, gib * 0.022)  # the example's backup_gib_month


def test_what_if_shared_to_dedicated_namespace() -> None:
    before = cost_plan(plan())
    moving, staying = "gdansk-packaging", "brno-components"
    assert [d.pattern for d in plan().for_plant(moving)] == ["shared-multitenant"] * 4
    moved_plan = build_plan(with_override(fleet(), moving, "pattern", "dedicated-namespace"))
    after = cost_plan(moved_plan)
    own = list(moved_plan.for_plant(moving))
    assert len(own) == 4
    assert all(d.pattern == "dedicated-namespace" and len(d.tenants) == 1 for d in own)
    # its own Odoo, PostgreSQL and Redis per environment instead of a share of the group's
    assert after.for_plant(moving) > before.for_plant(moving)
    assert math.isclose(after.for_plant(moving), after.by("plant")[moving])
    # the remaining tenant now has the group to itself
    assert all([t.plant for t in d.tenants] == [staying] for d in moved_plan.for_plant(staying))
    assert after.for_plant(staying) != before.for_plant(staying)


def test_what_if_through_the_use_case() -> None:
    res = services.cost_fleet(
        EXAMPLE, today=TODAY, what_if="pattern=dedicated-namespace", plant="gdansk-packaging"
    )
    assert res.what_if is not None
    assert res.what_if.after.for_plant("gdansk-packaging") > res.what_if.before.for_plant(
        "gdansk-packaging"
    )


@settings(max_examples=150, deadline=None)
@given(
    units=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", None]),  # cluster
            st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.integers(1, 500), min_size=1),
            st.lists(st.floats(0, 5000, allow_nan=False), min_size=5, max_size=5),
            st.booleans(),  # on owned pools
        ),
        min_size=1,
        max_size=12,
    ),
    platform=st.lists(st.floats(0, 3000, allow_nan=False), min_size=4, max_size=4),
)
# Found by Hypothesis: a subnormal compute share once lost the platform cost's sum.
@hypothesis_example(
    units=[("a", {"p1": 1}, [0.0, 0.0, 0.0, 0.0, 5e-324], False)], platform=[0, 0, 0, 1.5]
)
def test_allocations_are_non_negative_and_sum_to_the_total(
    units: list[tuple[str | None, dict[str, int], list[float], bool]], platform: list[float]
) -> None:
    names = ["odoo-web", "odoo-cron", "postgresql", "redis", "backup"]
    built = []
    direct = 0.0
    for i, (cluster, users, amounts, owned) in enumerate(units):
        total = sum(users.values())
        built.append(
            UnitCost(
                deployment=f"d{i}",
                environment="prod",
                cluster=cluster,
                plant_shares={p: n / total for p, n in users.items()},
                services=tuple(
                    ServiceCost(n, a, a / 10) for n, a in zip(names, amounts, strict=True)
                ),
                capacity=f"{cluster}/pool" if owned and cluster else None,
            )
        )
    capacities = [Capacity(f"{c}/pool", "p1", 3, platform[3]) for c in ("a", "b", "c")]
    clusters = [
        ClusterPlatform("a", True, platform[0], platform[1], platform[2], platform[3]),
        ClusterPlatform("b", False, platform[0], platform[1], platform[2], 0.0),
        ClusterPlatform("c", True, 0.0, 0.0, 0.0, 0.0),
    ]
    c = price_fleet("EUR", built, capacities, clusters)
    assert all(x.month >= 0 for x in c.lines)
    for dim in ("plant", "env", "service", "kind"):
        assert math.isclose(sum(c.by(dim).values()), c.total_month, rel_tol=1e-9, abs_tol=1e-6)
    rounded = sum(round(v, 2) for v in c.by("plant").values())
    assert abs(rounded - round(c.total_month, 2)) <= 0.005 * len(c.by("plant")) + 1e-9
    platform_lines = sum(x.month for x in c.lines if x.kind == "platform")
    assert math.isclose(platform_lines, c.platform_month, rel_tol=1e-9, abs_tol=1e-6)
    direct = sum(sc.storage_month for u in built for sc in u.services)
    assert c.total_month >= direct - 1e-6


def test_critical_tier_runs_the_redis_it_is_costed_for(example: Rendered) -> None:
    """Detroit (critical, 99.95 %) was costed for three Redis and rendered one."""
    d = next(x for x, _, _ in example.objects if x.id == "us-detroit-auto/detroit-stamping-prod")
    assert d.tier_spec.ha and d.tier_spec.redis_replicas == 2
    assert redis_failover(d)
    stss = {
        o["metadata"]["name"]: o["spec"]["replicas"]
        for x, _, o in example.objects
        if x.id == d.id and o["kind"] == "StatefulSet" and "redis" in o["metadata"]["name"]
    }
    assert sorted(stss.values()) == [3, 3]  # 1 master + 2 replicas, 3 sentinels
    assert d.sizing.redis_replicas == 2 and d.sizing.redis_sentinels == 3


def test_non_ha_tiers_run_and_are_costed_for_one_redis(example: Rendered) -> None:
    for d, _, o in example.objects:
        if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("-redis"):
            expected = 1 + d.sizing.redis_replicas
            assert o["spec"]["replicas"] == expected
            if not d.tier_spec.ha or not d.production:
                assert expected == 1


EU_PROD = "eu-shared-1/shared-eu-subsidiaries-prod"


def test_eu_group_prod_respects_the_standard_tier(tmp_path: Path) -> None:
    d = _dep(EU_PROD)
    assert d.tier == "standard" and d.tier_spec.max_web_replicas == 3
    # the example's group fits its tier: no cap, no warning
    assert d.sizing.web_replicas <= d.sizing.max_web_replicas <= 3
    assert not [w for w in plan().warnings if "shared-eu-subsidiaries prod" in w.message]
    # a tier bound below what the group needs: capped there, with a located warning
    cap = d.sizing.web_replicas - 1
    assert cap >= 1
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    spec = root / "fleet.yaml"
    text = spec.read_text()
    assert text.count("    max_web_replicas: 3\n") == 1
    spec.write_text(text.replace("    max_web_replicas: 3\n", f"    max_web_replicas: {cap}\n"))
    edited = build_plan(services.open_fleet(root, today=TODAY).fleet)
    capped = next(x for x in edited.deployments if x.id == EU_PROD)
    assert capped.tier_spec.max_web_replicas == cap
    assert capped.sizing.web_replicas == capped.sizing.max_web_replicas == cap
    warning = next(w for w in edited.warnings if "shared-eu-subsidiaries prod" in w.message)
    assert warning.severity == "warning" and warning.path == "tiers.standard.max_web_replicas"
    assert warning.file == "fleet.yaml" and warning.line > 1
    assert f"capped at {cap} replicas" in warning.message


def _cpu_m(value: str) -> float:
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


def _mib(value: str) -> float:
    units = {"Mi": 1, "Gi": 1024, "Ki": 1 / 1024}
    return float(value[:-2]) * units[value[-2:]] if value[-2:] in units else float(value) / 2**20


def _pod_requests(pod_spec: dict[str, object]) -> tuple[float, float]:
    """Steady-state requests of a pod: its containers (init containers have finished)."""
    cpu = mem = 0.0
    for c in pod_spec["containers"]:  # type: ignore[attr-defined]
        req = c.get("resources", {}).get("requests", {})
        cpu += _cpu_m(req.get("cpu", "0m"))
        mem += _mib(req.get("memory", "0Mi"))
    return cpu, mem


def test_compute_cost_is_what_the_rendered_pods_request(example: Rendered) -> None:
    """Per service, the cost model prices exactly the pods the renderer writes."""
    r = rates(fleet())
    rendered: dict[tuple[str, str], float] = {}
    for dep, _, o in example.objects:
        kind, name_ = o["kind"], o["metadata"]["name"]
        service = cpu = mem = None
        if kind == "Deployment" and name_.endswith(("-odoo-web", "-odoo-cron")):
            service = "odoo-web" if name_.endswith("-web") else "odoo-cron"
            n = o["spec"]["replicas"]
            cpu, mem = _pod_requests(o["spec"]["template"]["spec"])
        elif kind == "StatefulSet" and name_.endswith(("-redis", "-redis-sentinel")):
            service, n = "redis", o["spec"]["replicas"]
            cpu, mem = _pod_requests(o["spec"]["template"]["spec"])
        elif kind == "Cluster":
            service, n = "postgresql", o["spec"]["instances"]
            req = o["spec"]["resources"]["requests"]
            cpu, mem = _cpu_m(req["cpu"]), _mib(req["memory"])
        elif kind == "Pooler":
            service, n = "postgresql", o["spec"]["instances"]
            cpu, mem = _pod_requests(o["spec"]["template"]["spec"])
        if service is None or cpu is None or mem is None:
            continue
        key = (dep.id, service)
        rendered[key] = rendered.get(key, 0.0) + n * r.compute(cpu, mem)
    assert {s for _, s in rendered} == {"odoo-web", "odoo-cron", "postgresql", "redis"}
    for dep in plan().deployments:
        if dep.cluster is None:
            continue
        for sc in dep.services:
            if sc.service in ("odoo-web", "odoo-cron", "postgresql", "redis"):
                assert math.isclose(
                    sc.compute_month, rendered[(dep.id, sc.service)], rel_tol=1e-9
                ), (dep.id, sc.service)


def test_node_price_for_an_unknown_pool_is_a_located_error(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    text = (root / "fleet.yaml").read_text()
    text = text.replace(
        "  monitoring_month: 60",
        '  monitoring_month: 60\n  node_month: {"eu-lyon-meddev/gpu": 400}',
    )
    (root / "fleet.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        services.open_fleet(root, today=TODAY)
    (problem,) = info.value.problems
    assert problem.path == "pricing.node_month.eu-lyon-meddev/gpu" and problem.line > 1
    assert "eu-lyon-meddev/odoo" in problem.hint


def test_for_plant_reads_the_lines_once_for_every_plant() -> None:
    """The plan summary asks each plant's cost: one pass over the lines, not one per plant
    (a 1,000-plant fleet has ~32,000 lines; per-plant scans took seconds)."""
    from plantops.sizing.cost import CostLine, FleetCost

    passes = 0

    class CountingLines(tuple[CostLine, ...]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            nonlocal passes
            passes += 1
            return super().__iter__()

    lines = CountingLines(
        CostLine(f"p{i % 50}", "prod", f"d{i}", "c", "odoo", "compute", 0.1 * i) for i in range(500)
    )
    cost = FleetCost("EUR", lines, 0.0)
    totals = {f"p{n}": cost.for_plant(f"p{n}") for n in range(50)}
    assert passes == 1
    assert totals == cost.by("plant")
    assert cost.for_plant("unknown") == 0.0

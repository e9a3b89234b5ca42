"""The capacity model on hand-written objects: Kubernetes' pod resource rules, LimitRange
defaulting, CloudNativePG pods, hook phases, quota findings and node packing."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from plantops.check.capacity import (
    MIB,
    LimitRangeDefaults,
    Res,
    allocatable,
    check_capacity,
    check_quota,
    kube_reserved_cpu_m,
    kube_reserved_memory_mib,
    namespace_demand,
    parse_quantity,
    pod_resources,
)
from plantops.spec.models import NodePool

WHERE = "clusters/c/ns"


def res(cpu: str, mem: str, lcpu: str | None = None, lmem: str | None = None) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": mem},
        "limits": {"cpu": lcpu or cpu, "memory": lmem or mem},
    }


def container(name: str, r: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"name": name, **({"resources": r} if r is not None else {}), **extra}


def deployment(
    name: str,
    replicas: int,
    containers: list[dict[str, Any]],
    inits: list[dict[str, Any]] | None = None,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "template": {"spec": {"containers": containers, "initContainers": inits or []}},
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def quota(**hard: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {k.replace("_", "."): v for k, v in hard.items()}},
    }


LIMIT_RANGE = {
    "apiVersion": "v1",
    "kind": "LimitRange",
    "metadata": {"name": "l"},
    "spec": {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
            }
        ]
    },
}
POOL = NodePool(name="general", vcpu=8, memory_gib=32, min_nodes=1, max_nodes=3)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Fraction(1, 4)),
        ("2", Fraction(2)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1e3", Fraction(1000)),
        ("1k", Fraction(1000)),
    ],
)
def test_quantities(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


def test_pod_request_is_max_of_containers_and_each_init_with_earlier_sidecars() -> None:
    app = Res(1000, 100 * MIB, 2000, 200 * MIB)
    big_init = Res(1500, 50 * MIB, 1500, 50 * MIB)
    sidecar = Res(200, 64 * MIB, 200, 64 * MIB)
    # An ordinary init container runs alone: the larger CPU wins, memory stays the app's.
    assert pod_resources([app], [(big_init, False)]) == Res(1500, 100 * MIB, 2000, 200 * MIB)
    # A sidecar runs for the pod's lifetime: it adds up with the app, and with any init
    # container started after it.
    assert pod_resources([app], [(sidecar, True), (big_init, False)]) == Res(
        1700, 164 * MIB, 2200, 264 * MIB
    )
    # An init container before the sidecar does not see it.
    assert pod_resources([app], [(big_init, False), (sidecar, True)]) == Res(
        1500, 164 * MIB, 2200, 264 * MIB
    )


def test_limit_range_defaults_and_limits_as_requests() -> None:
    d = LimitRangeDefaults.of([LIMIT_RANGE])
    assert d.apply(Res()) == Res(100, 256 * MIB, 500, 512 * MIB)
    # limits without requests: the API server copies the limits into the requests first
    assert d.apply(Res.of({"limits": {"cpu": "1", "memory": "1Gi"}})) == Res(
        1000, 1024 * MIB, 1000, 1024 * MIB
    )
    assert LimitRangeDefaults().apply(Res()) == Res()


def test_rollout_surge_counts_against_the_quota_with_the_hpa_maximum() -> None:
    web = deployment(
        "web",
        2,
        [container("odoo", res("1", "1Gi"))],
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
    )
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"maxReplicas": 4, "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
    }
    objects = [quota(requests_cpu="4000m", limits_cpu="8", pods="10"), web, hpa]
    findings = check_quota(WHERE, namespace_demand(objects))
    assert [f.render() for f in findings] == [
        "clusters/c/ns: requests.cpu needs 5000m during rollout at HPA max, quota 4000m"
    ]


def test_recreate_and_percent_surges() -> None:
    recreate = deployment("a", 1, [container("c", res("1", "1Gi"))], strategy={"type": "Recreate"})
    default = deployment("b", 4, [container("c", res("1", "1Gi"))])  # 25 % of 4 = 1
    demand = namespace_demand([recreate, default])
    assert {g.workload: g.surge for g in demand.pods} == {"Deployment/a": 0, "Deployment/b": 1}


def test_presync_hook_jobs_never_meet_the_rollout_surge() -> None:
    web = deployment("web", 2, [container("odoo", res("1", "1Gi"))])
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "db-init", "annotations": {"argocd.argoproj.io/hook": "PreSync"}},
        "spec": {"template": {"spec": {"containers": [container("init", res("1", "2Gi"))]}}},
    }
    plain = dict(job, metadata={"name": "migrate"})
    demand = namespace_demand([quota(requests_cpu="3", requests_memory="4Gi"), web, job])
    # rollout: 2 + 1 surge = 3 CPU; PreSync: 2 + 1 job = 3 CPU, 4 GiB — both fit
    assert check_quota(WHERE, demand) == []
    # a Job without a hook annotation runs with the sync, beside the surge
    demand = namespace_demand([quota(requests_cpu="3"), web, plain])
    assert [f.render() for f in check_quota(WHERE, demand)] == [
        "clusters/c/ns: requests.cpu needs 4000m during rollout, quota 3000m"
    ]
    demand = namespace_demand([quota(requests_memory="3Gi"), web, job])
    assert [f.render() for f in check_quota(WHERE, demand)] == [
        "clusters/c/ns: requests.memory needs 4096Mi during the PreSync hook, quota 3072Mi"
    ]


def _cnpg(store_resources: dict[str, Any] | None) -> list[dict[str, Any]]:
    store: dict[str, Any] = {
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": "backup"},
        "spec": {"configuration": {}},
    }
    if store_resources:
        store["spec"]["instanceSidecarConfiguration"] = {"resources": store_resources}
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg"},
        "spec": {
            "instances": 3,
            "resources": res("2", "4Gi"),
            "storage": {"size": "10Gi"},
            "plugins": [
                {
                    "name": "barman-cloud.cloudnative-pg.io",
                    "parameters": {"barmanObjectName": "backup"},
                }
            ],
        },
    }
    return [LIMIT_RANGE, store, cluster]


def test_cnpg_instances_carry_the_barman_sidecar() -> None:
    (group,) = namespace_demand(_cnpg(res("300m", "128Mi"))).pods
    assert (group.steady, group.res) == (3, Res(2300, 4224 * MIB, 2300, 4224 * MIB))
    # without sidecar resources in the ObjectStore, the LimitRange default applies
    demand = namespace_demand(_cnpg(None))
    assert demand.pods[0].res == Res(2100, 4352 * MIB, 2500, 4608 * MIB)
    assert (demand.claims.count, demand.claims.storage) == (3, 30 * 1024 * MIB)


def test_cnpg_cluster_naming_a_missing_store_is_a_finding() -> None:
    objects = [o for o in _cnpg(None) if o["kind"] != "ObjectStore"]
    findings = check_capacity(WHERE, objects, [POOL])
    assert any("ObjectStore 'backup' is not rendered" in f.message for f in findings)


def test_pooler_init_container_takes_the_limit_range_default_unless_given() -> None:
    pooler: dict[str, Any] = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Pooler",
        "metadata": {"name": "pool"},
        "spec": {
            "instances": 2,
            "template": {"spec": {"containers": [container("pgbouncer", res("250m", "128Mi"))]}},
        },
    }
    (group,) = namespace_demand([LIMIT_RANGE, pooler]).pods
    assert group.res == Res(250, 256 * MIB, 500, 512 * MIB)
    assert (group.steady, group.surge) == (2, 1)
    pooler["spec"]["template"]["spec"]["initContainers"] = [
        container("bootstrap-controller", res("250m", "128Mi"))
    ]
    (group,) = namespace_demand([LIMIT_RANGE, pooler]).pods
    assert group.res == Res(250, 128 * MIB, 250, 128 * MIB)


def test_a_pod_without_limits_under_a_limits_quota_is_refused() -> None:
    objects = [quota(limits_cpu="10"), deployment("x", 1, [container("c", None)])]
    (finding,) = check_capacity(WHERE, objects, [POOL])
    assert finding.resource == "limits.cpu" and "Deployment/x sets none" in finding.message


def test_storage_and_claims() -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "fs"},
        "spec": {"resources": {"requests": {"storage": "5Gi"}}},
    }
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "redis"},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [container("redis", res("100m", "64Mi"))]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }
    objects = [quota(requests_storage="7Gi", persistentvolumeclaims="4"), pvc, sts]
    assert [f.render() for f in check_quota(WHERE, namespace_demand(objects))] == [
        "clusters/c/ns: requests.storage needs 8Gi, quota 7Gi"
    ]


def test_default_node_reservations_follow_the_gke_scale() -> None:
    assert kube_reserved_cpu_m(8) == 90  # 60 + 10 + 10 + 4 x 2.5
    assert kube_reserved_memory_mib(32) == 3646  # 1024 + 819.2 + 819.2 + 983.04
    a = allocatable(POOL)
    assert (a.cpu_m, a.memory // MIB) == (8000 - 90 - 200, 32768 - 3646 - 100 - 400)
    own = allocatable(POOL.model_copy(update={"reserved_cpu_m": 500, "reserved_memory_mib": 2048}))
    assert (own.cpu_m, own.memory // MIB) == (7500, 30720)


def test_a_pod_larger_than_any_node_and_a_pool_too_small_for_the_peak() -> None:
    huge = deployment("huge", 1, [container("c", res("8", "1Gi"))], strategy={"type": "Recreate"})
    (finding,) = check_capacity(WHERE, [huge], [POOL])
    assert "requests 8000m CPU / 1024Mi per pod, more than a node of pool 'general'" in (
        finding.message
    )
    # 4-vCPU pods: one per 8-vCPU node after reservations, 3 nodes, 3 + 1 surge pods
    web = deployment("web", 3, [container("c", res("4", "1Gi"))])
    (finding,) = check_capacity(WHERE, [web], [POOL])
    assert finding.message.startswith("1 x Deployment/web do not fit the node pools")
    assert check_capacity(WHERE, [web], [POOL.model_copy(update={"max_nodes": 4})]) == []


def test_pinned_pods_use_only_their_dedicated_pools() -> None:
    pinned = deployment("web", 1, [container("c", res("1", "1Gi"))], strategy={"type": "Recreate"})
    pinned["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "plantops.io/dedicated-to", "operator": "In", "values": ["p"]}
                        ]
                    }
                ]
            }
        }
    }
    (finding,) = check_capacity(WHERE, [pinned], [POOL])
    assert "needs pools dedicated to p" in finding.message
    assert check_capacity(WHERE, [pinned], [POOL.model_copy(update={"dedicated_to": "p"})]) == []

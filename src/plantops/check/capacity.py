"""Capacity model of one namespace's rendered objects: does it fit its ResourceQuota and
its cluster's node pools, at its peak?

The model works on the rendered Kubernetes objects, not on sizing figures, so whatever a
renderer adds (a sidecar, a hook Job, another workload) is counted without being taught
here. What it counts, and the upstream code each rule comes from, is in
``docs/capacity.md``. Pure: objects and node pools in, findings out; no I/O.

Peak of a namespace (every workload at its HPA maximum, ``steady``), in two phases that
never overlap in an Argo CD sync:

* **rollout**: ``steady`` + the surge pods of every Deployment in a rolling update (all at
  once, the conservative case) + Jobs that run with the sync (no hook annotation, or a
  ``hook: Sync`` Job in the same wave as a Deployment or later);
* **hook**: ``steady`` + the Jobs of one hook phase (``PreSync``, ``PostSync``,
  ``SyncFail``) — Argo CD runs PreSync hooks to completion before it applies the
  manifests, and PostSync after every wave is healthy, so they never meet a surge — or
  the ``Sync`` hook Jobs of the waves before every Deployment's (the database
  initialisation): gitops-engine pkg/sync/sync_context.go ``Sync`` starts a wave only
  once every task of the waves before it has completed (a hook Job has succeeded), so
  those Jobs are done before the first surge pod exists. Every Job of such a phase runs
  at once (one Job per tenant database).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from plantops.spec.models import NodePool

MIB = 1024 * 1024
GIB = 1024 * MIB
DEDICATED_LABEL = "plantops.io/dedicated-to"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
EARLY_SYNC_HOOKS = "Sync (before the workloads' wave)"
# Hook phases that run alone (see the module docstring); anything else runs with the sync.
SEPARATE_HOOKS = ("PreSync", "PostSync", "SyncFail")
# kubelet's default --max-pods, what every managed Kubernetes starts from.
DEFAULT_MAX_PODS = 110
# Node reservations when a pool does not state its own (docs/capacity.md): DaemonSets
# (CNI, kube-proxy, CSI, log shipper, node exporter) and the kubelet's hard eviction
# threshold on top of the kube-reserved scale GKE documents.
DAEMONSET_CPU_M = 200
DAEMONSET_MEMORY_MIB = 400
EVICTION_MEMORY_MIB = 100

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: Fraction(1),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def parse_quantity(value: object) -> Fraction:
    """A Kubernetes resource.Quantity (``250m``, ``1.5Gi``, ``2``, ``1e3``) as an exact number."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number = Fraction(m.group(1))
    if m.group(2):
        number *= Fraction(10) ** int(m.group(2)[1:])
    return number * _SUFFIX[m.group(3)]


def cpu_m(value: object) -> int:
    # apimachinery Quantity.MilliValue rounds up: 0.1m of CPU is 1m to the scheduler.
    return _cpu_m(str(value))


def size_bytes(value: object) -> int:
    return _bytes(str(value))


# A fleet uses a few dozen distinct quantities, each thousands of times.
@functools.lru_cache(maxsize=4096)
def _cpu_m(text: str) -> int:
    return math.ceil(parse_quantity(text) * 1000)


@functools.lru_cache(maxsize=4096)
def _bytes(text: str) -> int:
    return math.ceil(parse_quantity(text))


# --- resources ------------------------------------------------------------------------

RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class Res:
    """Requests and limits of a container or pod: millicores and bytes, ``None`` = unset."""

    req_cpu: int | None = None
    req_mem: int | None = None
    lim_cpu: int | None = None
    lim_mem: int | None = None

    @staticmethod
    def of(resources: Mapping[str, Any] | None) -> Res:
        resources = resources or {}
        req = resources.get("requests") or {}
        lim = resources.get("limits") or {}
        return Res(
            cpu_m(req["cpu"]) if "cpu" in req else None,
            size_bytes(req["memory"]) if "memory" in req else None,
            cpu_m(lim["cpu"]) if "cpu" in lim else None,
            size_bytes(lim["memory"]) if "memory" in lim else None,
        )

    def values(self) -> tuple[int | None, int | None, int | None, int | None]:
        return (self.req_cpu, self.req_mem, self.lim_cpu, self.lim_mem)


@dataclass(frozen=True)
class LimitRangeDefaults:
    """``type: Container`` defaults of the namespace's LimitRange."""

    default: Res = field(default_factory=Res)  # limits
    default_request: Res = field(default_factory=Res)  # requests

    @staticmethod
    def of(objects: Iterable[Mapping[str, Any]]) -> LimitRangeDefaults:
        for obj in objects:
            if obj.get("kind") != "LimitRange":
                continue
            for item in obj.get("spec", {}).get("limits", []):
                if item.get("type") != "Container":
                    continue
                default = Res.of({"limits": item.get("default")})
                # pkg/apis/core/v1/defaults.go SetDefaults_LimitRangeItem: a default limit
                # without a defaultRequest is also the default request.
                request = Res.of({"requests": item.get("defaultRequest")})
                request = Res(
                    request.req_cpu if request.req_cpu is not None else default.lim_cpu,
                    request.req_mem if request.req_mem is not None else default.lim_mem,
                )
                return LimitRangeDefaults(default, request)
        return LimitRangeDefaults()

    def apply(self, r: Res) -> Res:
        """What admission makes of a container's resources.

        First the API defaulting (pkg/apis/core/v1/defaults.go SetDefaults_Pod: a limit
        without a request is also the request), then the LimitRanger admission plugin
        (plugin/pkg/admission/limitranger/admission.go mergeContainerResources: a missing
        limit gets ``default``, a missing request ``defaultRequest``).
        """
        req_cpu = r.req_cpu if r.req_cpu is not None else r.lim_cpu
        req_mem = r.req_mem if r.req_mem is not None else r.lim_mem
        return Res(
            req_cpu if req_cpu is not None else self.default_request.req_cpu,
            req_mem if req_mem is not None else self.default_request.req_mem,
            r.lim_cpu if r.lim_cpu is not None else self.default.lim_cpu,
            r.lim_mem if r.lim_mem is not None else self.default.lim_mem,
        )


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _max(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)


def pod_resources(containers: Sequence[Res], init_containers: Sequence[tuple[Res, bool]]) -> Res:
    """Effective requests and limits of a pod, per Kubernetes' own rule.

    k8s.io/component-helpers/resource/helpers.go PodRequests / PodLimits: the regular
    containers and the restartable init containers (sidecars, ``restartPolicy: Always``)
    add up; each ordinary init container runs alone next to the sidecars started before
    it; the pod needs the larger of the two. ``init_containers`` is in pod order, each
    with whether it is a sidecar. An unset value (no limit anywhere) stays unset.
    """
    total = Res(0, 0, 0, 0)
    for c in containers:
        total = Res(*(_add(x, y) for x, y in zip(total.values(), c.values(), strict=True)))
    sidecars = Res(0, 0, 0, 0)
    peak_init = Res(0, 0, 0, 0)
    for c, sidecar in init_containers:
        if sidecar:
            sidecars = Res(
                *(_add(x, y) for x, y in zip(sidecars.values(), c.values(), strict=True))
            )
            running = sidecars
        else:
            running = Res(*(_add(x, y) for x, y in zip(sidecars.values(), c.values(), strict=True)))
        peak_init = Res(
            *(_max(x, y) for x, y in zip(peak_init.values(), running.values(), strict=True))
        )
    total = Res(*(_add(x, y) for x, y in zip(total.values(), sidecars.values(), strict=True)))
    return Res(*(_max(x, y) for x, y in zip(total.values(), peak_init.values(), strict=True)))


# --- pods of the rendered objects -------------------------------------------------------


@dataclass(frozen=True)
class PodGroup:
    """Pods of one workload: how many at steady state (HPA max), how many more in a rollout
    or a hook phase, what each requests, and where it may run."""

    workload: str  # Kind/name
    res: Res
    steady: int
    surge: int = 0  # extra pods during a rolling update
    phase: str = ""  # for Jobs: "" (steady), "rollout" or the hook phase
    pinned_to: tuple[str, ...] | None = None  # dedicated-to values, None = undedicated pools
    spread_nodes: bool = False  # required anti-affinity: one pod per node

    def count(self, phase: str) -> int:
        if self.phase:
            return self.steady if self.phase == phase else 0
        return self.steady + (self.surge if phase == "rollout" else 0)


def _surge(strategy: Mapping[str, Any] | None, replicas: int) -> int:
    """Extra pods of a Deployment's rolling update (pkg/controller/deployment/util
    deployment_util.go ResolveFenceposts: maxSurge, a percentage rounded up, default 25 %)."""
    strategy = strategy or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def _pinned(affinity: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    node = (affinity or {}).get("nodeAffinity") or {}
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms", []):
        for expr in term.get("matchExpressions", []):
            if expr.get("key") == DEDICATED_LABEL and expr.get("operator") == "In":
                return tuple(expr.get("values", []))
    return None


def _pod_spec_res(spec: Mapping[str, Any], limits: LimitRangeDefaults) -> Res:
    containers = [limits.apply(Res.of(c.get("resources"))) for c in spec.get("containers", [])]
    inits = [
        (limits.apply(Res.of(c.get("resources"))), c.get("restartPolicy") == "Always")
        for c in spec.get("initContainers", [])
    ]
    return pod_resources(containers, inits)


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name', '?')}"


@dataclass(frozen=True)
class Claims:
    count: int = 0
    storage: int = 0  # bytes

    def plus(self, n: int, size: int) -> Claims:
        return Claims(self.count + n, self.storage + n * size)


@dataclass(frozen=True)
class NamespaceDemand:
    pods: tuple[PodGroup, ...]
    claims: Claims
    quota: Mapping[str, int]  # hard, in millicores / bytes / counts
    has_hpa: bool
    problems: tuple[str, ...] = ()


def namespace_demand(objects: Sequence[Mapping[str, Any]]) -> NamespaceDemand:
    """Every pod and claim the objects of one namespace give rise to."""
    limits = LimitRangeDefaults.of(objects)
    hpa_max = {
        (o["spec"]["scaleTargetRef"].get("kind"), o["spec"]["scaleTargetRef"].get("name")): int(
            o["spec"]["maxReplicas"]
        )
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
    }
    stores = {
        o["metadata"]["name"]: o
        for o in objects
        if o.get("kind") == "ObjectStore" and o.get("apiVersion", "").startswith("barmancloud.")
    }
    groups: list[PodGroup] = []
    claims = Claims()
    problems: list[str] = []
    quota: dict[str, int] = {}
    sync_hooks: list[tuple[int, int]] = []  # (wave, index in groups)
    workload_waves: list[int] = []
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        meta = obj.get("metadata") or {}
        if kind == "ResourceQuota":
            for key, value in (spec.get("hard") or {}).items():
                if key.endswith(".cpu") or key in ("cpu",):
                    quota[key] = cpu_m(value)
                elif key.endswith("memory") or key.endswith("storage"):
                    quota[key] = size_bytes(value)
                else:
                    quota[key] = int(parse_quantity(value))
        elif kind in ("Deployment", "StatefulSet", "Job"):
            pod = spec.get("template", {}).get("spec", {})
            res = _pod_spec_res(pod, limits)
            pinned = _pinned(pod.get("affinity"))
            if kind == "Job":
                hook = (meta.get("annotations") or {}).get(HOOK_ANNOTATION, "")
                phase = hook if hook in SEPARATE_HOOKS else "rollout"
                n = int(spec.get("parallelism", 1))
                group = PodGroup(_name(obj), res, n, phase=phase, pinned_to=pinned)
                if hook == "Sync":
                    sync_hooks.append((_wave(meta), len(groups)))
                groups.append(group)
                continue
            if kind == "Deployment":
                workload_waves.append(_wave(meta))
            replicas = int(spec.get("replicas", 1))
            replicas = max(replicas, hpa_max.get((kind, meta.get("name")), replicas))
            surge = _surge(spec.get("strategy"), replicas) if kind == "Deployment" else 0
            groups.append(PodGroup(_name(obj), res, replicas, surge, pinned_to=pinned))
            for tpl in spec.get("volumeClaimTemplates", []) if kind == "StatefulSet" else []:
                size = tpl.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
                claims = claims.plus(replicas, size_bytes(size or 0))
        elif kind == "PersistentVolumeClaim":
            size = spec.get("resources", {}).get("requests", {}).get("storage")
            claims = claims.plus(1, size_bytes(size or 0))
        elif kind == "Cluster" and obj.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            group, more = _cnpg_cluster(obj, stores, limits)
            groups.append(group)
            problems += more
            n = group.steady
            claims = claims.plus(n, size_bytes(spec.get("storage", {}).get("size", 0)))
            if spec.get("walStorage"):
                claims = claims.plus(n, size_bytes(spec["walStorage"].get("size", 0)))
        elif kind == "Pooler" and obj.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            groups.append(_cnpg_pooler(obj, limits))
    first_workload = min(workload_waves, default=None)
    for wave_of_hook, index in sync_hooks:
        if first_workload is not None and wave_of_hook < first_workload:
            groups[index] = replace(groups[index], phase=EARLY_SYNC_HOOKS)
    return NamespaceDemand(tuple(groups), claims, quota, bool(hpa_max), tuple(problems))


def _wave(meta: Mapping[str, Any]) -> int:
    """An object's Argo CD sync wave (0 when unset, as Argo CD reads it)."""
    try:
        return int((meta.get("annotations") or {}).get(WAVE_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def _cnpg_cluster(
    obj: Mapping[str, Any], stores: Mapping[str, Mapping[str, Any]], limits: LimitRangeDefaults
) -> tuple[PodGroup, list[str]]:
    """Instance pods of a CloudNativePG Cluster.

    cloudnative-pg pkg/specs/containers.go createBootstrapContainer: the
    ``bootstrap-controller`` init container takes ``spec.resources`` (or
    ``spec.initContainerResources``), like the ``postgres`` container. plugin-barman-cloud
    internal/cnpgi/operator/lifecycle.go reconcilePodSpec appends the ``plugin-barman-cloud``
    sidecar as an init container with ``restartPolicy: Always``, its resources from
    ``ObjectStore.spec.instanceSidecarConfiguration.resources``
    (lifecycle_resources.go collectSidecarResourcesForPod) — empty, so the LimitRange
    default, when the store sets none. A rolling update replaces instances one by one,
    never more than ``instances`` pods.
    """
    spec = obj["spec"]
    problems: list[str] = []
    postgres = limits.apply(Res.of(spec.get("resources")))
    init = limits.apply(Res.of(spec.get("initContainerResources") or spec.get("resources")))
    inits: list[tuple[Res, bool]] = [(init, False)]
    for plugin in spec.get("plugins", []):
        if plugin.get("name") != BARMAN_PLUGIN or plugin.get("enabled") is False:
            continue
        store_name = (plugin.get("parameters") or {}).get("barmanObjectName")
        store = stores.get(str(store_name))
        if store is None:
            problems.append(f"{_name(obj)}: ObjectStore {store_name!r} is not rendered")
            continue
        sidecar = store.get("spec", {}).get("instanceSidecarConfiguration", {}).get("resources")
        inits.append((limits.apply(Res.of(sidecar)), True))
    affinity = spec.get("affinity") or {}
    return (
        PodGroup(
            _name(obj),
            pod_resources([postgres], inits),
            int(spec.get("instances", 1)),
            pinned_to=_pinned(affinity),
            spread_nodes=affinity.get("enablePodAntiAffinity", True)
            and affinity.get("podAntiAffinityType") == "required",
        ),
        problems,
    )


def _cnpg_pooler(obj: Mapping[str, Any], limits: LimitRangeDefaults) -> PodGroup:
    """PgBouncer pods of a CloudNativePG Pooler (a Deployment the operator creates).

    cloudnative-pg pkg/specs/pgbouncer/deployments.go: the ``bootstrap-controller`` init
    container keeps resources given for it in the template, else takes the template's
    pod-level ``resources`` — else none, so the LimitRange default; the Deployment's
    strategy is ``spec.deploymentStrategy``, else Kubernetes' default rolling update.
    """
    spec = obj["spec"]
    pod = dict((spec.get("template") or {}).get("spec") or {})
    inits = list(pod.get("initContainers") or [])
    if not any(c.get("name") == "bootstrap-controller" for c in inits):
        inits.insert(0, {"name": "bootstrap-controller", "resources": pod.get("resources")})
    pod["initContainers"] = inits
    instances = int(spec.get("instances", 1))
    return PodGroup(
        _name(obj),
        _pod_spec_res(pod, limits),
        instances,
        _surge(spec.get("deploymentStrategy"), instances),
        pinned_to=_pinned(pod.get("affinity")),
    )


# --- quota ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class CapacityFinding:
    """One way a namespace does not fit: ``where`` is the deployment's directory."""

    where: str
    resource: str
    message: str

    def render(self) -> str:
        return f"{self.where}: {self.resource} {self.message}"


def _fmt(resource: str, value: int) -> str:
    if resource.endswith("cpu"):
        return f"{value}m"
    if resource.endswith("storage"):
        return f"{math.ceil(value / GIB)}Gi" if value % GIB == 0 else f"{math.ceil(value / MIB)}Mi"
    if resource.endswith("memory"):
        return f"{math.ceil(value / MIB)}Mi"
    return str(value)


def phases(demand: NamespaceDemand) -> list[str]:
    hooks = sorted({g.phase for g in demand.pods if g.phase in (*SEPARATE_HOOKS, EARLY_SYNC_HOOKS)})
    return ["rollout", *hooks]


def _phase_text(phase: str, has_hpa: bool) -> str:
    where = "during rollout" if phase == "rollout" else f"during the {phase} hook"
    return f"{where} at HPA max" if has_hpa else where


def phase_totals(
    demand: NamespaceDemand, phase: str
) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """What quota admission counts in one phase; and ``(resource, workload)`` for pods that
    leave a counted resource unset (the quota admission refuses those outright)."""
    keys = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
    totals = dict.fromkeys(keys, 0)
    unbounded: set[tuple[str, str]] = set()
    pods = 0
    for g in demand.pods:
        n = g.count(phase)
        if not n:
            continue
        pods += n
        for key, value in zip(keys, g.res.values(), strict=True):
            if value is None:
                unbounded.add((key, g.workload))
            else:
                totals[key] += n * value
    totals["pods"] = pods
    return totals, unbounded


QUOTA_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}


def check_quota(where: str, demand: NamespaceDemand) -> list[CapacityFinding]:
    """Quota admission (plugin/pkg/admission/resourcequota, the pod and PVC evaluators in
    pkg/quota/v1/evaluator/core): requests.* and limits.* sum PodRequests / PodLimits of
    every non-terminal pod; ``pods`` counts them; ``persistentvolumeclaims`` and
    ``requests.storage`` every claim."""
    quota = {QUOTA_ALIASES.get(k, k): v for k, v in demand.quota.items()}
    findings: set[CapacityFinding] = set()
    if not quota:
        return []
    worst: dict[str, tuple[int, str]] = {}
    for phase in phases(demand):
        totals, unbounded = phase_totals(demand, phase)
        for key, workload in unbounded:
            if key in quota:
                findings.add(
                    CapacityFinding(
                        where,
                        key,
                        f"is in the quota but {workload} sets none and no LimitRange "
                        "default applies: its pods are refused",
                    )
                )
        for key, value in totals.items():
            if value > worst.get(key, (-1, ""))[0]:
                worst[key] = (value, phase)
    worst["persistentvolumeclaims"] = (demand.claims.count, "")
    worst["requests.storage"] = (demand.claims.storage, "")
    for key, (need, phase) in sorted(worst.items()):
        hard = quota.get(key)
        if hard is None or need <= hard:
            continue
        when = f" {_phase_text(phase, demand.has_hpa)}" if phase else ""
        findings.add(
            CapacityFinding(where, key, f"needs {_fmt(key, need)}{when}, quota {_fmt(key, hard)}")
        )
    return sorted(findings)


# --- nodes ------------------------------------------------------------------------------


def _tiered(amount: Fraction, tiers: Sequence[tuple[Fraction, Fraction]]) -> Fraction:
    """Sum of rate × the part of ``amount`` in each (width, rate) tier, the last unbounded."""
    total, rest = Fraction(0), amount
    for width, rate in tiers:
        part = min(rest, width) if width > 0 else rest
        total += part * rate
        rest -= part
        if rest <= 0:
            break
    return total


@functools.cache
def kube_reserved_cpu_m(vcpu: int) -> int:
    """GKE's documented kube-reserved CPU: 6 % of the first core, 1 % of the second,
    0.5 % of the next two, 0.25 % of the rest."""
    f = Fraction
    tiers = [
        (f(1000), f(6, 100)),
        (f(1000), f(1, 100)),
        (f(2000), f(5, 1000)),
        (f(0), f(25, 10000)),
    ]
    return math.ceil(_tiered(f(vcpu * 1000), tiers))


@functools.cache
def kube_reserved_memory_mib(memory_gib: int) -> int:
    """GKE's documented kube-reserved memory: 25 % of the first 4 GiB, 20 % of the next 4,
    10 % of the next 8, 6 % of the next 112, 2 % of the rest."""
    f = Fraction
    tiers = [
        (f(4096), f(25, 100)),
        (f(4096), f(20, 100)),
        (f(8192), f(10, 100)),
        (f(112 * 1024), f(6, 100)),
        (f(0), f(2, 100)),
    ]
    return math.ceil(_tiered(f(memory_gib * 1024), tiers))


@dataclass(frozen=True)
class Allocatable:
    pool: str
    cpu_m: int
    memory: int  # bytes
    pods: int
    nodes: int
    dedicated_to: str | None


def allocatable(pool: NodePool) -> Allocatable:
    """Node capacity minus what the kubelet, the system and the DaemonSets keep."""
    cpu = pool.reserved_cpu_m
    if cpu is None:
        cpu = kube_reserved_cpu_m(pool.vcpu) + DAEMONSET_CPU_M
    mem = pool.reserved_memory_mib
    if mem is None:
        mem = kube_reserved_memory_mib(pool.memory_gib) + EVICTION_MEMORY_MIB + DAEMONSET_MEMORY_MIB
    return Allocatable(
        pool.name,
        pool.vcpu * 1000 - cpu,
        (pool.memory_gib * 1024 - mem) * MIB,
        pool.max_pods,
        pool.max_nodes,
        pool.dedicated_to,
    )


def _eligible(g: PodGroup, pools: Sequence[Allocatable]) -> list[Allocatable]:
    # Dedicated pools carry the NoSchedule taint (render common.node_placement), so an
    # unpinned pod only lands on undedicated pools, and a pinned one only where its
    # nodeAffinity points.
    if g.pinned_to is None:
        return [p for p in pools if p.dedicated_to is None]
    return [p for p in pools if p.dedicated_to in g.pinned_to]


@dataclass
class _Node:
    pool: Allocatable
    cpu: int
    mem: int
    pods: int
    groups: set[str] = field(default_factory=set)


def check_nodes(
    where: str, demand: NamespaceDemand, node_pools: Sequence[NodePool]
) -> list[CapacityFinding]:
    """Every pod fits one node of a pool it may run on, and the namespace's pods at their
    peak fit the pools' ``max_nodes`` (first-fit decreasing, see docs/capacity.md)."""
    pools = [allocatable(p) for p in node_pools]
    findings: list[CapacityFinding] = []
    fitting: list[PodGroup] = []
    for g in demand.pods:
        eligible = _eligible(g, pools)
        cpu, mem = g.res.req_cpu or 0, g.res.req_mem or 0
        if not eligible:
            target = (
                f"pools dedicated to {', '.join(g.pinned_to)}"
                if g.pinned_to
                else "an undedicated pool"
            )
            findings.append(
                CapacityFinding(
                    where, "nodes", f"{g.workload} needs {target}, the cluster has none"
                )
            )
            continue
        if not any(cpu <= p.cpu_m and mem <= p.memory for p in eligible):
            best = max(eligible, key=lambda p: (p.cpu_m, p.memory))
            findings.append(
                CapacityFinding(
                    where,
                    "nodes",
                    f"{g.workload} requests {cpu}m CPU / {math.ceil(mem / MIB)}Mi per pod, more "
                    f"than a node of pool {best.pool!r} has after reservations "
                    f"({best.cpu_m}m / {best.memory // MIB}Mi)",
                )
            )
            continue
        fitting.append(g)
    for phase in phases(replace(demand, pods=tuple(fitting))):
        unplaced = _pack(fitting, pools, phase)
        if unplaced:
            names = ", ".join(f"{n} x {w}" for w, n in sorted(unplaced.items()))
            text = _phase_text(phase, demand.has_hpa)
            findings.append(
                CapacityFinding(
                    where,
                    "nodes",
                    f"{names} do not fit the node pools at max_nodes {text} "
                    f"({', '.join(f'{p.pool}: {p.nodes} x {p.cpu_m}m/{p.memory // MIB}Mi' for p in pools)})",
                )
            )
    return findings


def _fits(n: _Node, g: PodGroup, pools: set[str]) -> bool:
    return (
        n.pool.pool in pools
        and n.cpu >= (g.res.req_cpu or 0)
        and n.mem >= (g.res.req_mem or 0)
        and n.pods >= 1
        and not (g.spread_nodes and g.workload in n.groups)
    )


def _pack(groups: Sequence[PodGroup], pools: Sequence[Allocatable], phase: str) -> dict[str, int]:
    """First-fit decreasing over nodes opened up to each pool's ``max_nodes``; returns the
    pods left over, by workload. FFD is not optimal bin packing, but it never needs more
    than 11/9 OPT + 1 bins, and the scheduler itself places pods greedily."""
    pods = [(g, i) for g in groups for i in range(g.count(phase))]
    pods.sort(
        key=lambda p: (-(p[0].res.req_cpu or 0), -(p[0].res.req_mem or 0), p[0].workload, p[1])
    )
    nodes: list[_Node] = []
    opened: dict[str, int] = {}
    left: dict[str, int] = {}
    for g, _ in pods:
        cpu, mem = g.res.req_cpu or 0, g.res.req_mem or 0
        eligible = {p.pool for p in _eligible(g, pools)}
        node = next((n for n in nodes if _fits(n, g, eligible)), None)
        if node is None:
            for p in pools:
                if p.pool in eligible and opened.get(p.pool, 0) < p.nodes:
                    candidate = _Node(p, p.cpu_m, p.memory, p.pods)
                    if _fits(candidate, g, eligible):
                        opened[p.pool] = opened.get(p.pool, 0) + 1
                        nodes.append(candidate)
                        node = candidate
                        break
        if node is None:
            left[g.workload] = left.get(g.workload, 0) + 1
            continue
        node.cpu -= cpu
        node.mem -= mem
        node.pods -= 1
        node.groups.add(g.workload)
    return left


def check_capacity(
    where: str, objects: Sequence[Mapping[str, Any]], node_pools: Sequence[NodePool]
) -> list[CapacityFinding]:
    """The capacity gate for one namespace: quota fit and node fit of its rendered objects."""
    demand = namespace_demand(objects)
    findings = [CapacityFinding(where, "objects", p) for p in demand.problems]
    findings += check_quota(where, demand)
    findings += check_nodes(where, demand, node_pools)
    return findings


__all__ = [
    "Allocatable",
    "CapacityFinding",
    "LimitRangeDefaults",
    "NamespaceDemand",
    "PodGroup",
    "Res",
    "allocatable",
    "check_capacity",
    "check_nodes",
    "check_quota",
    "namespace_demand",
    "parse_quantity",
    "pod_resources",
]

"""Resolve every plant × environment into a deployment: an Odoo instance in a namespace or VM.

Plants of one tenant group on the shared pattern share one deployment per cluster ×
environment; every other plant gets a deployment of its own. What the architecture
cannot give (an HA tier on a single-zone cluster, a dedicated pattern without a
dedicated cluster, a connection budget too small) is a located :class:`SpecError`,
never a silently weaker deployment.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from plantops.caches import warm_table
from plantops.classify import Classification, classify_fleet, classify_plant
from plantops.errors import Problem, SpecError
from plantops.model import Environment, Fleet, Plant
from plantops.plan.cost import price_deployment
from plantops.sizing import Cost, InfeasibleSizing, Sizing, SizingInputs, size_unit
from plantops.sizing.cost import ServiceCost
from plantops.spec.loader import Location
from plantops.spec.models import ClusterSpec, TierSpec

DEDICATED_CLUSTER_PATTERNS = ("dedicated-cluster", "dedicated-environment")


@dataclass(frozen=True)
class Tenant:
    """One plant served by a deployment: its database and host name."""

    plant: str
    name: str
    database: str
    host: str
    users: int
    timezone: str


@dataclass(frozen=True)
class PinnedRelease:
    """The release pinned to a deployment (``releases/<plant>/<env>.yaml``, read by
    ``plantops.release.pins``): what it renders instead of the fleet-wide image."""

    release: str
    image: str
    digest: str
    config: str
    stage: str
    promoted_at: str
    update_modules: tuple[str, ...]
    upgrade_id: str
    """Names this promotion's upgrade objects (pre-upgrade Backup, upgrade Job)."""
    previous_image: str | None
    """The image it replaced (the previous pin's, or the fleet-wide one), REPO@DIGEST."""
    pin_digest: str
    """Digest(s) of the pin file(s): part of the writer's hash, so a pin change re-renders."""

    @property
    def migrates(self) -> bool:
        return bool(self.update_modules)

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "stage": self.stage,
            "promoted_at": self.promoted_at,
            "config": self.config,
            "update_modules": list(self.update_modules),
            "upgrade_id": self.upgrade_id,
            "previous_image": self.previous_image,
        }


@dataclass(frozen=True)
class Deployment:
    id: str
    unit: str
    environment: Environment
    tier: str
    pattern: str
    runtime: str
    cluster: ClusterSpec | None
    namespace: str
    tenants: tuple[Tenant, ...]
    tier_spec: TierSpec
    sizing: Sizing
    cost: Cost
    cost_by_plant: Mapping[str, Cost]
    classifications: tuple[Classification, ...]
    plants: tuple[Plant, ...]
    image: str
    digest: str
    series: str
    edition: str
    services: tuple[ServiceCost, ...] = ()
    """This deployment's own services as rendered, priced (plantops.sizing.cost)."""
    input_hash: str = field(default="", repr=False)
    """Content hash of this deployment's inputs: unchanged hash, unchanged output. A
    deployment is a pure function of fleet.yaml, its plants' files, the exceptions in force
    and the code (which the caller adds), so those are hashed — never the derived models."""
    release: PinnedRelease | None = None
    """The release pinned to it; ``None``: the fleet-wide image (``image``/``digest``)."""

    @property
    def dir(self) -> str:
        """Directory of this deployment in the output tree."""
        if self.cluster is None:
            return f"vms/{self.unit}-{self.environment.name}"
        return f"clusters/{self.cluster.name}/{self.unit}-{self.environment.name}"

    @property
    def production(self) -> bool:
        return self.environment.production

    @property
    def filestore_needs_rwx(self) -> bool:
        """Web and cron share the filestore: one web replica runs beside cron on a
        ReadWriteOnce volume, more need ReadWriteMany (or the filestore in object storage)."""
        return self.sizing.max_web_replicas > 1

    def as_dict(self) -> dict[str, Any]:
        return dict(self._document)

    @cached_property
    def _document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit": self.unit,
            "environment": self.environment.name,
            "production": self.environment.production,
            "tier": self.tier,
            "pattern": self.pattern,
            "runtime": self.runtime,
            "cluster": self.cluster.name if self.cluster else None,
            "kubernetes_version": self.cluster.kubernetes_version if self.cluster else None,
            "namespace": self.namespace,
            "image": f"{self.image}@{self.digest}",
            "odoo": {"series": self.series, "edition": self.edition},
            "tenants": [t.__dict__ for t in self.tenants],
            "tier_objectives": {
                "ha": self.tier_spec.ha,
                "backup": self.tier_spec.backup.model_dump(mode="json"),
                "slo": self.tier_spec.slo.model_dump(mode="json"),
            },
            "sizing": self.sizing.as_dict(),
            "cost": self.cost.as_dict(),
            "cost_by_plant": {k: v.as_dict() for k, v in sorted(self.cost_by_plant.items())},
            "classification": [c.as_dict() for c in self.classifications],
            **({"release": self.release.as_dict()} if self.release else {}),
        }


@dataclass(frozen=True)
class Plan:
    fleet: Fleet
    classifications: tuple[Classification, ...]
    deployments: tuple[Deployment, ...]
    warnings: tuple[Problem, ...] = ()

    def for_plant(self, code: str) -> tuple[Deployment, ...]:
        return self._by_plant.get(code, ())

    @cached_property
    def _by_plant(self) -> dict[str, tuple[Deployment, ...]]:
        index: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            for t in d.tenants:
                index.setdefault(t.plant, []).append(d)
        return {k: tuple(v) for k, v in index.items()}


def _host(plant: str, env: Environment, domain: str) -> str:
    return f"{plant}.{domain}" if env.production else f"{plant}.{env.name}.{domain}"


def _where(loc: Location) -> tuple[str, int, int, str]:
    return loc.file, loc.line, loc.column, loc.path


def _problem(loc: Location, message: str, hint: str = "") -> Problem:
    return Problem(loc.file, loc.line, loc.column, loc.path, message, hint)


def _choose_cluster(
    plant: Plant, c: Classification, fleet: Fleet, problems: list[Problem]
) -> ClusterSpec | None:
    spec = plant.spec
    if spec.runtime == "vm":
        return None
    clusters = fleet.clusters
    if spec.placement.cluster is not None:
        cl = clusters[spec.placement.cluster]
        # located only for a problem: indexing a plant file's positions costs more than
        # the whole placement of a plant
        where = functools.partial(fleet.source.locate_plant, spec.code, "placement", "cluster")
        if c.pattern in DEDICATED_CLUSTER_PATTERNS and cl.kind != "dedicated":
            problems.append(
                _problem(
                    where(),
                    f"pattern {c.pattern} needs a dedicated cluster; {cl.name!r} is shared",
                    "name a cluster with kind: dedicated, or pin a lighter pattern by override",
                )
            )
        if c.pattern == "shared-multitenant" and cl.kind != "shared":
            problems.append(
                _problem(
                    where(),
                    f"shared-multitenant plants run on a shared cluster; {cl.name!r} is dedicated",
                )
            )
        return cl
    if c.pattern in DEDICATED_CLUSTER_PATTERNS:
        problems.append(
            _problem(
                fleet.source.locate_plant(spec.code, "placement"),
                f"pattern {c.pattern} needs placement.cluster naming a dedicated cluster "
                f"in region {spec.region!r}",
                "add a cluster with kind: dedicated to fleet.yaml and name it here",
            )
        )
        return None
    shared = sorted(
        (cl for cl in clusters.values() if cl.kind == "shared" and cl.region == spec.region),
        key=lambda cl: cl.name,
    )
    if not shared:
        problems.append(
            _problem(
                fleet.source.locate_plant(spec.code, "region"),
                f"no shared cluster in region {spec.region!r} for pattern {c.pattern}",
                "add a shared cluster in this region or set placement.cluster",
            )
        )
        return None
    return shared[0]


def _inputs(
    fleet: Fleet,
    tier: TierSpec,
    plants: Sequence[Plant],
    env: Environment,
    databases: int,
    pattern: str = "",
) -> SizingInputs:
    d = fleet.spec.defaults
    lead = plants[0]

    def pinned(target: str, default: Any) -> Any:
        ov = lead.override(target) if len(plants) == 1 else None
        return ov.value if ov is not None else default

    profile = fleet.profile(str(pinned("resource_profile", tier.resource_profile)))
    custom_rank = ("none", "light", "moderate", "heavy")
    customization = max((p.spec.profile.customization for p in plants), key=custom_rank.index)
    return SizingInputs(
        peak_users=sum(p.spec.users.peak_concurrent for p in plants),
        size_factor=env.size_factor,
        production=env.production,
        ha=tier.ha,
        users_per_worker=int(pinned("users_per_worker", d.users_per_worker)),
        min_workers=d.min_workers,
        web_replicas=int(pinned("web_replicas", tier.web_replicas)),
        max_web_replicas=tier.max_web_replicas,
        cron_replicas=tier.cron_replicas,
        max_cron_threads=d.max_cron_threads,
        web_cpu=profile.web_cpu,
        web_memory_gib=profile.web_memory_gib,
        cron_cpu=profile.cron_cpu,
        cron_memory_gib=profile.cron_memory_gib,
        postgres_instances=int(pinned("postgres_instances", tier.postgres_instances)),
        postgres_cpu=profile.postgres_cpu,
        postgres_memory_gib=profile.postgres_memory_gib,
        postgres_storage_gib=profile.postgres_storage_gib,
        filestore_gib=profile.filestore_gib,
        redis_memory_gib=profile.redis_memory_gib,
        redis_replicas=tier.redis_replicas,
        pgbouncer=bool(pinned("pgbouncer", tier.pgbouncer)),
        pg_max_connections=d.postgres_max_connections,
        pg_reserved_connections=d.postgres_reserved_connections,
        databases=databases,
        customization=customization,
        limit_time_cpu=d.limit_time_cpu,
        limit_time_real=d.limit_time_real,
        limit_request=d.limit_request,
        series=fleet.spec.odoo.series,
        kubernetes=lead.spec.runtime == "kubernetes",
        filestore_pvc=fleet.spec.platform.storage.filestore == "pvc",
        orders_per_day=sum(p.spec.profile.volume.orders_per_day for p in plants),
        stock_moves_per_day=sum(p.spec.profile.volume.stock_moves_per_day for p in plants),
        named_users=sum(p.spec.users.named for p in plants),
        horizon_years=d.data_horizon_years,
        growth_percent=d.data_growth_percent,
    )


def _hash_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class PlanMemo:
    """Classifications (by plant) and unit sizing and pricing (by deployment), each under
    the hash of its inputs: an unchanged plant is not classified again, an unchanged
    deployment not sized or priced again.

    Pure: the caller loads it, passes it to :func:`build_plan` and stores it. ``scope``
    is what invalidates every entry at once (the code's fingerprint and the date, which
    decides the overrides in force); a key covers the rest: fleet.yaml's and the plants'
    file digests and their active overrides, the deployment's unit and environment.
    """

    scope: str
    classifications: dict[str, Classification] = field(default_factory=dict)
    sizings: dict[str, tuple[Sizing, tuple[ServiceCost, ...]]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    """Keys this run read or computed."""
    new: set[str] = field(default_factory=set)
    """Keys this run computed."""

    @property
    def added(self) -> int:
        return len(self.new)

    def pruned(self) -> PlanMemo:
        """Only the entries this run used (plants and deployments that still exist)."""
        return PlanMemo(
            self.scope,
            {k: v for k, v in self.classifications.items() if k in self.used},
            {k: v for k, v in self.sizings.items() if k in self.used},
        )


def _overrides_text(plant: Plant) -> str:
    return f"{sorted((k, repr(v)) for k, v in plant.overrides.items())}"


def _classify(fleet: Fleet, memo: PlanMemo | None) -> dict[str, Classification]:
    if memo is None:
        return {c.plant: c for c in classify_fleet(fleet)}
    fleet_digest = fleet.source.fleet_source.digest
    classes = {}
    for plant in fleet.plants:
        key = _hash_text(
            "classify",
            fleet_digest,
            plant.code,
            fleet.source.plant_sources[plant.code].digest,
            _overrides_text(plant),
        )
        found = memo.classifications.get(key)
        if found is None:
            found = memo.classifications[key] = classify_plant(plant, fleet)
            memo.new.add(key)
        memo.used.add(key)
        classes[plant.code] = found
    return classes


def _check_placement(
    fleet: Fleet, classes: Mapping[str, Classification], problems: list[Problem]
) -> dict[str, ClusterSpec | None]:
    """Each plant's cluster (None for a VM plant), and what the cluster cannot give."""
    placed: dict[str, ClusterSpec | None] = {}
    dedicated_owner: dict[str, str] = {}
    for plant in fleet.plants:
        c = classes[plant.code]
        cl = _choose_cluster(plant, c, fleet, problems)
        placed[plant.code] = cl
        if cl is None:
            continue
        tier = fleet.tier(c.tier)
        if tier.ha and len(cl.zones) < 2:
            problems.append(
                _problem(
                    fleet.source.locate_plant(plant.code, "placement"),
                    f"tier {c.tier} is HA but cluster {cl.name!r} has a single zone",
                    "place the plant on a cluster with at least two zones",
                )
            )
        if c.pattern in DEDICATED_CLUSTER_PATTERNS:
            other = dedicated_owner.setdefault(cl.name, plant.code)
            if other != plant.code:
                problems.append(
                    _problem(
                        fleet.source.locate_plant(plant.code, "placement", "cluster"),
                        f"cluster {cl.name!r} is already dedicated to plant {other!r}",
                    )
                )
        if c.pattern == "dedicated-environment":
            pools = [p for p in cl.node_pools if p.dedicated_to == plant.code]
            if not pools:
                problems.append(
                    _problem(
                        fleet.source.locate_plant(plant.code, "placement", "cluster"),
                        f"dedicated-environment needs node pools dedicated to {plant.code!r} "
                        f"on cluster {cl.name!r}",
                        f"set dedicated_to: {plant.code} on its node pools in fleet.yaml",
                    )
                )
    return placed


def _group_units(
    fleet: Fleet,
    classes: Mapping[str, Classification],
    placed: Mapping[str, ClusterSpec | None],
    problems: list[Problem],
) -> dict[tuple[str, str | None], list[Plant]]:
    """Plants grouped into units: (unit name, cluster) → members; a tenant group must not
    span clusters."""
    units: dict[tuple[str, str | None], list[Plant]] = {}
    for plant in fleet.plants:
        c = classes[plant.code]
        cl = placed[plant.code]
        unit = f"shared-{c.tenant_group}" if c.pattern == "shared-multitenant" else plant.code
        units.setdefault((unit, cl.name if cl else None), []).append(plant)
    seen_units: dict[str, str | None] = {}
    for unit, cl_name in units:
        if unit in seen_units and unit.startswith("shared-"):
            first = units[(unit, cl_name)][0]
            problems.append(
                _problem(
                    fleet.source.locate_plant(first.code, "placement"),
                    f"tenant group {unit.removeprefix('shared-')!r} spans clusters "
                    f"{seen_units[unit]!r} and {cl_name!r}",
                    "plants of one tenant group must share a cluster",
                )
            )
        seen_units[unit] = cl_name
    return units


@dataclass(frozen=True)
class _Unit:
    """One unit's shared facts across its environments."""

    name: str
    members: list[Plant]
    classifications: tuple[Classification, ...]
    tier_name: str
    tier: TierSpec
    pattern: str
    cluster: ClusterSpec | None


def _price(fleet: Fleet, u: _Unit, env: Environment, sizing: Sizing) -> tuple[ServiceCost, ...]:
    return tuple(
        price_deployment(fleet, sizing, cluster=u.cluster, tier=u.tier, production=env.production)
    )


def _sizing_warnings(
    fleet: Fleet, u: _Unit, env: Environment, in_env: list[Plant], sizing: Sizing
) -> list[Problem]:
    return [
        Problem(
            *_where(fleet.source.locate_fleet("tiers", u.tier_name, "max_web_replicas")),
            f"{u.name} {env.name}: {warning}",
            "move the plants to a tier with more web replicas, give the tier a "
            "resource profile with larger web pods"
            + (", or split the tenant group" if len(in_env) > 1 else ""),
            severity="warning",
        )
        for warning in sizing.warnings
    ]


def _deployment(
    fleet: Fleet,
    u: _Unit,
    env: Environment,
    in_env: list[Plant],
    sizing: Sizing,
    services: tuple[ServiceCost, ...],
    input_hash: str,
) -> Deployment:
    """The deployment of unit ``u`` in ``env``: its cost (and each plant's share by peak
    users), tenants, names and input hash."""
    odoo = fleet.spec.odoo
    pricing = fleet.spec.pricing
    cl = u.cluster
    cluster_fee = (
        pricing.dedicated_cluster_month
        if u.pattern in DEDICATED_CLUSTER_PATTERNS and env.production and cl is not None
        else 0.0
    )
    cost = Cost(
        pricing.currency,
        round(sum(sc.compute_month for sc in services), 2),
        round(sum(sc.storage_month + sc.other_month for sc in services), 2),
        round(cluster_fee, 2),
        {sc.service: round(sc.total_month, 2) for sc in services},
    )
    total_users = sum(p.spec.users.peak_concurrent for p in in_env)
    by_plant = {p.code: cost.share(p.spec.users.peak_concurrent / total_users) for p in in_env}
    in_env_codes = {p.code for p in in_env}
    tenants = tuple(
        Tenant(
            plant=p.code,
            name=p.spec.name,
            database=p.code,
            host=_host(p.code, env, fleet.spec.organization.domain),
            users=p.spec.users.peak_concurrent,
            timezone=p.spec.timezone,
        )
        for p in in_env
    )
    namespace = f"{u.name}-{env.name}"
    return Deployment(
        id=f"{cl.name if cl else 'vm'}/{namespace}",
        unit=u.name,
        environment=env,
        tier=u.tier_name,
        pattern=u.pattern,
        runtime=u.members[0].spec.runtime,
        cluster=cl,
        namespace=namespace,
        tenants=tenants,
        tier_spec=u.tier,
        sizing=sizing,
        cost=cost,
        cost_by_plant=by_plant,
        classifications=tuple(c for c in u.classifications if c.plant in in_env_codes),
        plants=tuple(in_env),
        image=odoo.image,
        digest=odoo.digest,
        series=odoo.series,
        edition=odoo.edition.value,
        services=services,
        input_hash=input_hash,
    )


def _plan_unit(
    fleet: Fleet,
    u: _Unit,
    memo: PlanMemo | None,
    deployments: list[Deployment],
    warnings: list[Problem],
    problems: list[Problem],
) -> None:
    """Size, price and build the unit's deployment in each of its environments."""
    fleet_digest = fleet.source.fleet_source.digest
    env_names = sorted(
        {e.name for p in u.members for e in p.environments},
        key=lambda n: fleet.environment(n).order,
    )
    for env_name in env_names:
        env = fleet.environment(env_name)
        in_env = [p for p in u.members if env in p.environments]
        input_hash = _hash_text(
            fleet_digest,
            f"{u.name}/{env_name}",
            *(
                f"{p.code}:{fleet.source.plant_sources[p.code].digest}:{_overrides_text(p)}"
                for p in in_env
            ),
        )
        found = memo.sizings.get(input_hash) if memo is not None else None
        if found is None:
            try:
                sizing = size_unit(_inputs(fleet, u.tier, in_env, env, len(in_env), u.pattern))
            except InfeasibleSizing as exc:
                loc = fleet.source.locate_plant(in_env[0].code, "users", "peak_concurrent")
                problems.append(_problem(loc, f"{env_name}: {exc}"))
                continue
            found = (sizing, _price(fleet, u, env, sizing))
            if memo is not None:
                memo.sizings[input_hash] = found
                memo.new.add(input_hash)
        if memo is not None:
            memo.used.add(input_hash)
        sizing, services = found
        warnings.extend(_sizing_warnings(fleet, u, env, in_env, sizing))
        deployments.append(_deployment(fleet, u, env, in_env, sizing, services, input_hash))


def _plan_unit_memoized(
    fleet: Fleet,
    u: _Unit,
    memo: PlanMemo | None,
    deployments: list[Deployment],
    warnings: list[Problem],
    problems: list[Problem],
) -> None:
    """``_plan_unit``; with a plan memo and the process memo on (``plantops.services
    .warm``), a unit planned before from the same inputs is taken whole: its key is the
    memo's scope (code fingerprint, date), fleet.yaml's digest, the unit, its cluster and
    each member's code, file digest and active overrides — everything its
    classifications, placement, sizing, prices and deployments are computed from."""
    table = warm_table("plan-units") if memo is not None else None
    if table is None or memo is None:
        _plan_unit(fleet, u, memo, deployments, warnings, problems)
        return
    sources = fleet.source.plant_sources
    key = (
        memo.scope,
        fleet.source.fleet_source.digest,
        u.name,
        u.cluster.name if u.cluster else None,
        tuple((p.code, sources[p.code].digest, _overrides_text(p)) for p in u.members),
    )
    found = table.get(key)
    if found is None:
        mine_d: list[Deployment] = []
        mine_w: list[Problem] = []
        mine_p: list[Problem] = []
        _plan_unit(fleet, u, memo, mine_d, mine_w, mine_p)
        deployments += mine_d
        warnings += mine_w
        problems += mine_p
        if not mine_p:
            sized = tuple((d.input_hash, memo.sizings[d.input_hash]) for d in mine_d)
            table.put(key, (tuple(mine_d), tuple(mine_w), sized))
        return
    deps, warns, sized = found
    deployments += deps
    warnings += warns
    for input_hash, sizing in sized:  # the stored memo keeps them as after a cold plan
        if input_hash not in memo.sizings:
            memo.sizings[input_hash] = sizing
            memo.new.add(input_hash)
        memo.used.add(input_hash)


def build_plan(fleet: Fleet, only: Sequence[str] = (), memo: PlanMemo | None = None) -> Plan:
    """Classify, place and size every plant × environment (or only the plants named).

    With ``memo``, classifications and unit sizing whose inputs are unchanged are taken
    from it (and what is computed is added): the same plan, less work."""
    fleet.check_selection(only)
    classes = _classify(fleet, memo)
    problems: list[Problem] = []
    placed = _check_placement(fleet, classes, problems)
    units = _group_units(fleet, classes, placed, problems)
    if problems:
        raise SpecError(sorted(problems))

    deployments: list[Deployment] = []
    warnings: list[Problem] = []
    wanted = set(only)
    for (unit, _), members in sorted(units.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if wanted and not wanted.intersection(p.code for p in members):
            continue
        members.sort(key=lambda p: p.code)
        cls = tuple(classes[p.code] for p in members)
        tier_name = min((c.tier for c in cls), key=lambda t: fleet.tier(t).rank)
        u = _Unit(
            unit,
            members,
            cls,
            tier_name,
            fleet.tier(tier_name),
            cls[0].pattern,
            placed[members[0].code],
        )
        _plan_unit_memoized(fleet, u, memo, deployments, warnings, problems)
    if problems:
        raise SpecError(sorted(problems))
    return Plan(
        fleet=fleet,
        classifications=tuple(classes.values()),
        deployments=tuple(deployments),
        warnings=tuple(sorted(warnings)),
    )

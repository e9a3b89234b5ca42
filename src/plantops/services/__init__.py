"""Use cases shared by the CLI and the server: load → build → classify → plan → write.

Each function takes the world it needs as arguments (paths, ``today``) and returns
data; nothing here prints or exits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plantops as plantops_package
from plantops import __version__
from plantops.check.capacity import CapacityFinding, check_capacity
from plantops.check.compose import validate_compose
from plantops.check.preflight import check_renderable
from plantops.check.schema import DEFAULT_KUBERNETES_VERSION, SchemaFinding, SchemaValidator
from plantops.classify import Classification, classify_fleet
from plantops.errors import GateFailed, Problem, SpecError, UserError
from plantops.gitops import RenderMany, TreeSummary, UnitOfWork, write_tree
from plantops.gitops.ci import PROVIDERS, CiOptions, Provider, generate_ci
from plantops.model import Fleet, build_fleet
from plantops.names import check_label
from plantops.outputs import write_text_atomically
from plantops.plan import Deployment, Plan, build_plan
from plantops.plan.cost import WHAT_IF_TARGETS, cost_plan, with_override
from plantops.render import (
    RenderContext,
    RenderedFile,
    render_deployment_full,
    render_fleet_objects,
)
from plantops.render.core import dump_yaml, dump_yaml_documents
from plantops.services.plancache import memo_scope, open_plan_memo, store_plan_memo
from plantops.sizing.cost import FleetCost
from plantops.spec import ParseCache, load_fleet

# Addons, policy and release code is imported by the use cases that need it: `plan`
# must not pay for manifestoo-core, the policy baseline or the release lock at start-up.
if TYPE_CHECKING:
    from plantops.addons import AddonsReport
    from plantops.check.policy import PolicyContext, PolicyResult, PolicySettings, UnitInfo
    from plantops.check.policy.engine import SpecLocator
    from plantops.release import GitSource
    from plantops.release.rollback import RollbackPlan


@dataclass(frozen=True)
class FleetResult:
    fleet: Fleet
    warnings: tuple[Problem, ...]


def open_fleet(root: Path, *, today: dt.date, allow_expired: bool = False) -> FleetResult:
    loaded = load_fleet(
        root,
        today=today,
        allow_expired_overrides=allow_expired,
        cache=ParseCache.for_fleet(root),
    )
    return FleetResult(build_fleet(loaded, today=today), loaded.warnings)


def classify(root: Path, *, today: dt.date, only: Sequence[str] = ()) -> tuple[Classification, ...]:
    res = open_fleet(root, today=today)
    res.fleet.check_selection(only)
    return classify_fleet(res.fleet, only)


MAX_FINDINGS_SHOWN = 50


@dataclass
class RenderChecker:
    """Renders deployments and validates every object it renders against the target
    cluster's Kubernetes schemas and the bundled CRD schemas (compose files against the
    Compose specification). Validators are built once per Kubernetes version and reused.
    The capacity gate (``check.capacity``) runs on the same objects: each namespace must
    fit its ResourceQuota and its cluster's node pools at its peak.
    """

    ctx: RenderContext
    findings: list[SchemaFinding] = field(default_factory=list)
    capacity: list[CapacityFinding] = field(default_factory=list)
    objects: int = 0
    _validators: dict[str, SchemaValidator] = field(default_factory=dict)

    def validator(self, kubernetes_version: str) -> SchemaValidator:
        found = self._validators.get(kubernetes_version)
        if found is None:
            found = self._validators[kubernetes_version] = SchemaValidator(kubernetes_version)
        return found

    def render(self, dep: Deployment) -> list[RenderedFile]:
        rendered = render_deployment_full(dep, self.ctx)
        version = dep.cluster.kubernetes_version if dep.cluster else DEFAULT_KUBERNETES_VERSION
        validator = self.validator(version)
        for path, index, obj in rendered.documents():
            self.findings += validator.validate(obj, file=path, document_index=index)
        self.objects += len(rendered.objects)
        if dep.cluster is not None:
            objects = [obj for _, obj in rendered.objects]
            self.capacity += check_capacity(dep.dir, objects, dep.cluster.node_pools)
        if rendered.compose is not None:
            path, doc = rendered.compose
            self.objects += 1
            self.findings += [
                SchemaFinding(path, 0, "compose-spec", "Compose", dep.namespace, where, message)
                for where, message in validate_compose(doc)
            ]
        return rendered.files

    def fleet_files(self, deployments: Sequence[Deployment]) -> list[RenderedFile]:
        validator = self.validator(DEFAULT_KUBERNETES_VERSION)
        files = []
        for path, obj in render_fleet_objects(deployments, self.ctx):
            self.findings += validator.validate(obj, file=path)
            self.objects += 1
            files.append(RenderedFile(path, dump_yaml(obj)))
        self.raise_findings()
        return files

    def raise_findings(self) -> None:
        if self.capacity or self.findings:
            raise RenderGateFailed(tuple(sorted(self.findings)), tuple(sorted(self.capacity)))


class RenderGateFailed(GateFailed):
    """Rendered objects failed the schema or capacity gate; nothing was written.

    The findings are data (``schema``, ``capacity``, ``to_dict``) for whatever presents
    them; the message is the same findings as text, capacity first (a namespace that does
    not fit is the bigger problem), at most ``MAX_FINDINGS_SHOWN`` of each.
    """

    def __init__(
        self, schema: tuple[SchemaFinding, ...], capacity: tuple[CapacityFinding, ...] = ()
    ) -> None:
        self.schema = schema
        self.capacity = capacity
        if capacity:
            head = (
                f"{len(capacity)} capacity finding(s): the namespaces would not fit "
                "their quota or node pools at their peak; nothing was written:"
            )
            super().__init__(_listing(head, [f.render() for f in capacity]))
        else:
            head = f"{len(schema)} schema finding(s) in rendered objects; nothing was written:"
            super().__init__(_listing(head, [f.render() for f in schema]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": "gate failed; nothing was written",
            "schema_findings": [f.to_dict() for f in self.schema],
            "capacity_findings": [dataclasses.asdict(f) for f in self.capacity],
        }


def _listing(head: str, lines: list[str]) -> str:
    shown = lines[:MAX_FINDINGS_SHOWN]
    more = len(lines) - len(shown)
    return "\n".join([head, *shown, *([f"... and {more} more"] if more > 0 else [])])


# Below this many deployments to render, forking workers costs more than it saves.
PARALLEL_MIN_RENDERS = 48
# What forked render workers inherit: the deployments to render and the render context.
_POOL_WORK: tuple[Sequence[Deployment], RenderContext] | None = None
_POOL_CHECKER: RenderChecker | None = None


def _render_in_worker(
    i: int,
) -> tuple[list[RenderedFile], list[SchemaFinding], list[CapacityFinding], int]:
    """Render and validate deployment ``i`` in a forked worker (validators compiled once per
    worker, from the on-disk cache)."""
    global _POOL_CHECKER  # noqa: PLW0603 - per-process state of a pool worker
    assert _POOL_WORK is not None, "only called in workers forked by render_in_parallel"
    deps, ctx = _POOL_WORK
    if _POOL_CHECKER is None:
        _POOL_CHECKER = RenderChecker(ctx)
    checker = _POOL_CHECKER
    findings_before, objects_before = len(checker.findings), checker.objects
    capacity_before = len(checker.capacity)
    files = checker.render(deps[i])
    return (
        files,
        checker.findings[findings_before:],
        checker.capacity[capacity_before:],
        checker.objects - objects_before,
    )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_in_parallel(
    checker: RenderChecker, deployments: Mapping[str, Deployment], workers: int
) -> RenderMany:
    """A renderer for the tree writer: renders the units it is given in order, spread over
    ``workers`` forked processes when there are enough of them, while the writer writes
    the results as they come. Once all are rendered it raises if anything failed
    validation — inside the writer's atomic section, so nothing is written then."""

    def render_many(units: Sequence[UnitOfWork]) -> Iterator[Sequence[RenderedFile]]:
        global _POOL_WORK  # noqa: PLW0603 - handed to forked workers, cleared after
        deps = [deployments[u.id] for u in units]
        if workers > 1 and len(deps) >= PARALLEL_MIN_RENDERS:
            _POOL_WORK = (deps, checker.ctx)
            gc.freeze()
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    results = pool.imap(_render_in_worker, range(len(deps)), chunksize=4)
                    for files, findings, capacity, objects in results:
                        checker.findings += findings
                        checker.capacity += capacity
                        checker.objects += objects
                        yield files
            finally:
                _POOL_WORK = None
                gc.unfreeze()
        else:
            for dep in deps:
                yield checker.render(dep)
        checker.raise_findings()

    return render_many


@functools.cache
def renderer_fingerprint() -> str:
    """Hash of the code that shapes the tree (spec defaults, model, classification, sizing,
    planning, renderers) and of the capacity gate: upgrading plantops re-renders (and
    re-checks) what it now renders or judges differently."""
    package = Path(plantops_package.__file__).parent
    digest = hashlib.sha256(__version__.encode())
    shaping = ("spec", "model", "classify", "sizing", "plan", "render")
    # The capacity gate too: a tree written under an older gate is checked again.
    gates = [package / "check" / "capacity.py"]
    for path in sorted([*(p for sub in shaping for p in (package / sub).rglob("*")), *gates]):
        if path.is_file() and path.suffix in (".py", ".json"):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def pinned_plan(root: Path, plan: Plan, *, every_deployment: bool = True) -> Plan:
    """``plan`` with the fleet's release pins (``releases/<plant>/<env>.yaml``) applied:
    a pinned deployment renders the pinned image and its upgrade; the others are as
    planned. The deployments' ``input_hash`` is left as planned (the fleet configuration
    hash of a release must not depend on the pins); the writer's hash adds the pin."""
    from plantops.release.pins import apply_pins, read_pins

    pins = read_pins(root)
    if not pins:
        return plan
    deployments = apply_pins(
        plan.deployments, pins, fleet_dir=root, every_deployment=every_deployment
    )
    return dataclasses.replace(plan, deployments=deployments)


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    tree: TreeSummary
    warnings: tuple[Problem, ...]
    cost: FleetCost | None = None
    """The whole fleet's cost (node pools and platform allocated), for the summary."""


def plan_fleet(
    root: Path,
    out: Path,
    *,
    today: dt.date,
    plants: Sequence[str] = (),
    allow_expired: bool = False,
    dry_run: bool = False,
) -> PlanResult:
    """Load, validate, classify, size, render and write the deployment tree."""
    res = open_fleet(root, today=today, allow_expired=allow_expired)
    memo, memo_at = open_plan_memo(root, memo_scope(renderer_fingerprint(), today))
    plan = pinned_plan(root, build_plan(res.fleet, plants, memo), every_deployment=not plants)
    # Fleet-wide files (Argo CD projects) always reflect every plant, even in a --plant run.
    full = pinned_plan(root, build_plan(res.fleet, (), memo)) if plants else plan
    store_plan_memo(memo, memo_at)
    problems = check_renderable(full)
    if problems:
        raise SpecError(problems)
    checker = RenderChecker(RenderContext.from_fleet(res.fleet.spec))
    units = [
        UnitOfWork(
            id=d.id,
            input_hash=f"{d.input_hash}+{renderer_fingerprint()}"
            + (f"+{d.release.pin_digest}" if d.release else ""),
            plants=tuple(t.plant for t in d.tenants),
            render=lambda d=d: checker.render(d),  # type: ignore[misc]
        )
        for d in plan.deployments
    ]
    tree = write_tree(
        out,
        units,
        selected_plants=plants,
        extra=lambda: checker.fleet_files(full.deployments),
        dry_run=dry_run,
        render_many=render_in_parallel(
            checker, {d.id: d for d in plan.deployments}, workers=available_cpus()
        ),
    )
    return PlanResult(plan, tree, (*res.warnings, *full.warnings), cost_plan(full))


@dataclass(frozen=True)
class WhatIf:
    plant: str
    target: str
    value: str
    before: FleetCost
    after: FleetCost


@dataclass(frozen=True)
class CostResult:
    cost: FleetCost
    what_if: WhatIf | None
    warnings: tuple[Problem, ...]


def cost_fleet(
    root: Path,
    *,
    today: dt.date,
    what_if: str | None = None,
    plant: str | None = None,
) -> CostResult:
    """The fleet's monthly cost; with ``what_if`` ("pattern=dedicated-namespace") also the
    cost after ``plant`` moved, as if that override were in force."""
    res = open_fleet(root, today=today)
    memo, memo_at = open_plan_memo(root, memo_scope(renderer_fingerprint(), today))
    plan = build_plan(res.fleet, (), memo)
    store_plan_memo(memo, memo_at)
    cost = cost_plan(plan)
    if what_if is None:
        return CostResult(cost, None, (*res.warnings, *plan.warnings))
    target, sep, value = what_if.partition("=")
    bad = ""
    if not sep or target not in WHAT_IF_TARGETS or not value:
        bad = f"--what-if takes TARGET=VALUE with TARGET one of {', '.join(WHAT_IF_TARGETS)}"
    elif plant is None:
        bad = "--what-if needs --plant naming the plant that moves"
    elif plant not in {p.code for p in res.fleet.plants}:
        bad = f"unknown plant {plant!r}"
    if bad:
        raise SpecError([Problem("(command line)", 1, 1, "--what-if", bad)])
    assert plant is not None
    moved = build_plan(with_override(res.fleet, plant, target, value))
    return CostResult(
        cost, WhatIf(plant, target, value, cost, cost_plan(moved)), (*res.warnings, *plan.warnings)
    )


@dataclass(frozen=True)
class ReleaseResult:
    """A release lock's text and id, or (``text`` empty) the addon findings that refused it."""

    id: str
    text: str
    content: Mapping[str, object]
    addons: AddonsReport


def fleet_config_hash(plan: Plan) -> str:
    """What the fleet renders, as a hash: every deployment's input hash (its plants, cluster,
    tier, sizing, fleet-wide settings) and the renderer's own fingerprint."""
    digest = hashlib.sha256(renderer_fingerprint().encode())
    for d in sorted(plan.deployments, key=lambda d: d.id):
        digest.update(f"\n{d.id}:{d.input_hash}".encode())
    return "sha256:" + digest.hexdigest()


def create_release(
    root: Path,
    *,
    image: str,
    addons_paths: Sequence[Path],
    packages: Path | None,
    today: dt.date,
) -> ReleaseResult:
    """Check the addons against the fleet's Odoo series and edition, then build the lock
    (nothing is written here; the CLI writes the file)."""
    from plantops.addons import CheckOptions, addon_checksum, check_addons_paths
    from plantops.addons.inputs import load_package_list
    from plantops.release import (
        build_lock_content,
        git_source,
        lock_id,
        parse_image_ref,
        render_lock,
    )

    ref = parse_image_ref(image)
    res = open_fleet(root, today=today)
    odoo = res.fleet.spec.odoo
    package_list = load_package_list(packages) if packages else None
    options = CheckOptions(series=odoo.series, edition=odoo.edition.value, packages=package_list)
    report = check_addons_paths(addons_paths, options, checksums=False)
    if not report.ok:
        return ReleaseResult("", "", {}, report)
    plan = build_plan(res.fleet)
    by_path: dict[Path, GitSource | None] = {}
    checksums: dict[str, str] = {}
    sources: dict[str, GitSource | None] = {}
    for a in sorted(report.addons, key=lambda a: (a.order, a.name)):
        if a.name in checksums:
            continue  # shadowed copies are never loaded
        checksums[a.name] = addon_checksum(a.path, a.manifest_file.rpartition("/")[0])
        if a.addons_path not in by_path:
            by_path[a.addons_path] = git_source(a.addons_path)
        sources[a.name] = by_path[a.addons_path]
    content = build_lock_content(
        series=odoo.series,
        edition=odoo.edition.value,
        image=ref,
        addons=report.addons,
        checksums=checksums,
        sources=sources,
        packages=package_list,
        config_hash=fleet_config_hash(plan),
        deployments=len(plan.deployments),
    )
    return ReleaseResult(lock_id(content), render_lock(content), content, report)


# --- policy (docs/policy.md) -----------------------------------------------------------


def policy_context(
    fleet: Fleet, settings: PolicySettings, units: Mapping[str, UnitInfo]
) -> PolicyContext:
    """What the baseline compares against, from the fleet spec and policies/settings.yaml."""
    from plantops.check.policy import PolicyContext, TierInfo

    spec = fleet.spec
    registries = settings.registries or (spec.odoo.image.split("/", 1)[0],)
    ports = set(settings.open_egress_ports)
    # Integration endpoints (host:port) are the allowed destinations a NetworkPolicy can
    # only name by port.
    for plant in fleet.plants:
        for integ in plant.spec.profile.integrations:
            if integ.endpoint:
                ports.add(int(integ.endpoint.rsplit(":", 1)[1]))
    if spec.defaults.smtp_relay:
        ports.add(int(spec.defaults.smtp_relay.rsplit(":", 1)[1]))
    return PolicyContext(
        registries=registries,
        storage_classes=tuple(sorted({s.name for c in spec.clusters for s in c.storage_classes})),
        tiers={
            name: TierInfo(t.ha, t.backup.pitr, t.backup.rpo_minutes, t.postgres_instances)
            for name, t in spec.tiers.items()
        },
        units=units,
        freeze_plants=frozenset(p.code for p in fleet.plants if p.spec.freeze_windows),
        node_pools={c.name: tuple(c.node_pools) for c in spec.clusters},
        dev_environments=settings.dev_environments,
        open_egress_ports=tuple(sorted(ports)),
    )


def _spec_locator(fleet: Fleet) -> SpecLocator:
    source = fleet.source

    def locate(plant: str, tier: str, spec_field: str) -> str:
        kind, _, rest = spec_field.partition(".")
        if kind == "tier" and tier:
            sm, loc = source.fleet_source, ("tiers", tier, *(x for x in rest.split(".") if x))
        elif kind == "fleet":
            sm, loc = source.fleet_source, tuple(x for x in rest.split(".") if x)
        elif plant in source.plant_sources:
            sm, loc = source.plant_sources[plant], tuple(x for x in rest.split(".") if x)
        else:
            return ""
        line, col = sm.position(loc)
        return f"{sm.file}:{line}:{col}"

    return locate


def check_target(target: Path, *, today: dt.date) -> PolicyResult:
    """``plantops check``: a fleet repository (rendered into a scratch tree, then checked)
    or a directory of manifests."""
    from plantops.check.policy import (
        PolicyConfig,
        PolicyContext,
        evaluate_policies,
        load_policy_config,
        read_manifest_tree,
    )

    config = load_policy_config(target) if (target / "fleet.yaml").is_file() else PolicyConfig()
    if not (target / "fleet.yaml").is_file():
        if not target.exists():
            raise UserError(f"{target}: no such file or directory")
        docs, skipped, units, _, files = read_manifest_tree(target)
        ctx = PolicyContext(
            registries=config.settings.registries,
            units=units,
            open_egress_ports=config.settings.open_egress_ports,
        )
        return evaluate_policies(docs, ctx, config, today=today, skipped=skipped, files=files)
    res = open_fleet(target, today=today)
    with tempfile.TemporaryDirectory(prefix="plantops-check-") as tmp:
        out = Path(tmp) / "tree"
        plan_fleet(target, out, today=today)
        docs, skipped, units, _, files = read_manifest_tree(out)
    ctx = policy_context(res.fleet, config.settings, units)
    return evaluate_policies(
        docs,
        ctx,
        config,
        today=today,
        skipped=skipped,
        files=files,
        spec_location=_spec_locator(res.fleet),
    )


def policy_export(
    root: Path,
    out: Path,
    *,
    today: dt.date,
    export_format: str = "vap",
    exception_namespace: str | None = None,
) -> list[Path]:
    """``plantops policy export``: one file of admission objects. ``vap``: Kubernetes
    ValidatingAdmissionPolicies and bindings; ``kyverno``: Kyverno ValidatingPolicies and
    the exceptions in force today as PolicyExceptions in ``exception_namespace``."""
    from plantops.check.policy import BASELINE, export_vap, load_policy_config
    from plantops.check.policy.kyverno import DEFAULT_EXCEPTION_NAMESPACE, export_kyverno

    if not out.is_dir():
        raise UserError(f"--out {out}: not a directory; create it first")
    config = load_policy_config(root)
    res = open_fleet(root, today=today)
    ctx = policy_context(res.fleet, config.settings, {})
    if export_format == "kyverno":
        objects = export_kyverno(
            BASELINE,
            config.rules,
            config.exceptions,
            ctx,
            today=today,
            namespace=exception_namespace or DEFAULT_EXCEPTION_NAMESPACE,
        )
        path = out / "kyverno-policies.yaml"
    else:
        objects = export_vap(BASELINE, config.rules, ctx)
        path = out / "validating-admission-policies.yaml"
    write_text_atomically(path, dump_yaml_documents(objects))
    return [path]


# --- rollback (docs/releases.md) -------------------------------------------------------


@dataclass(frozen=True)
class RollbackResult:
    plan: RollbackPlan
    written: Path | None


def rollback(
    root: Path,
    *,
    plant: str,
    env: str,
    to: str | None = None,
    at: dt.datetime | None = None,
    apply: bool = False,
    actor: str | None = None,
    reason: str | None = None,
    db: str | None = None,
    today: dt.date,
) -> RollbackResult:
    """``plantops rollback``: the plan for one plant × environment; with ``apply`` the
    previous (or ``to``) pin is written and a ``rollback`` entry (who, why, from which
    release to which, the database decision) appended to the release ledger at ``db``.
    The pin is written first (compare-and-swap); if the ledger refuses the entry, the
    pin is put back, so a rollback is never applied without its record."""
    from plantops.release.pins import pin_path, read_pin
    from plantops.release.rollback import apply_rollback, plan_rollback

    check_label(plant, "--plant")
    check_label(env, "--env")
    if apply and not (actor and actor.strip() and reason and reason.strip()):
        raise UserError(
            "--apply needs --as WHO and --reason WHY: the rollback is recorded in the ledger"
        )
    res = open_fleet(root, today=today)
    if plant not in {p.code for p in res.fleet.plants}:
        raise UserError(f"--plant {plant}: not a plant of {root}")
    deps = [d for d in build_plan(res.fleet, [plant]).for_plant(plant) if d.environment.name == env]
    if not deps:
        raise UserError(f"--env {env}: plant {plant} has no such environment")
    current = read_pin(root, plant, env)
    if current is None:
        raise UserError(
            f"{plant}/{env} has no release pin ({pin_path(root, plant, env)}): it runs the "
            "fleet-wide image, there is no release to roll back"
        )
    when = at or dt.datetime.now(dt.UTC)
    plan = plan_rollback(current, unit=deps[0].unit, fleet_dir=root, to=to, at=when)
    if not apply:
        return RollbackResult(plan, None)
    from plantops.release.pins import write_pin
    from plantops.services.release import record_rollback

    assert actor is not None and reason is not None
    written = apply_rollback(root, plan)
    try:
        record_rollback(
            plant=plant,
            env=env,
            from_release=plan.current.release,
            to_release=plan.target.release,
            actor=actor.strip(),
            reason=reason.strip(),
            database_action=plan.database,
            db=db,
            now=when,
        )
    except BaseException:
        # No record, no rollback: the pin goes back to what it was (compare-and-swap
        # against the pin just written, so a concurrent change is not clobbered).
        write_pin(root, plan.replaces, replaces=plan.pin)
        raise
    return RollbackResult(plan, written)


# --- CI generation (docs/releases.md) --------------------------------------------------


def ci_generate(
    root: Path,
    *,
    provider: Provider,
    out: Path,
    today: dt.date,
    rendered: str = "rendered",
    addons: Sequence[str] = ("addons",),
    vulns_policy: str | None = None,
    install: str = "plantops",
    default_branch: str = "main",
) -> Path:
    """``plantops ci generate``: the pipeline for the fleet at ``root`` (its Odoo series and
    edition go into the addons gate), written atomically to ``out``."""
    if provider not in PROVIDERS:
        raise UserError(f"--provider {provider}: use one of {', '.join(PROVIDERS)}")
    res = open_fleet(root, today=today)
    odoo = res.fleet.spec.odoo
    options = CiOptions(
        fleet=".",
        rendered=rendered,
        addons=tuple(addons),
        series=odoo.series,
        edition=odoo.edition.value,
        install=install,
        vulns_policy=vulns_policy,
        default_branch=default_branch,
    )
    write_text_atomically(out, generate_ci(provider, options))
    return out

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
import json
import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plantops as plantops_package
from plantops import __version__
from plantops.caches import warm_enabled, warm_new_run
from plantops.check.capacity import CapacityFinding, check_capacity
from plantops.check.compose import validate_compose
from plantops.check.preflight import check_renderable
from plantops.check.schema import DEFAULT_KUBERNETES_VERSION, SchemaFinding, SchemaValidator
from plantops.classify import Classification, classify_fleet
from plantops.errors import GateFailed, Problem, SpecError, UserError
from plantops.gitops import RenderMany, TreeSummary, UnitOfWork, write_tree
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
from plantops.services.rendermemo import VALIDATED, ObjectMemo
from plantops.sizing.cost import FleetCost
from plantops.spec import ParseCache, load_fleet, spec_json_schema

# Addons, policy and release code is imported by the use cases that need it: `plan`
# must not pay for manifestoo-core, the policy baseline or the release lock at start-up.
if TYPE_CHECKING:
    from plantops.addons import AddonsReport
    from plantops.check.policy import PolicyContext, PolicyResult, PolicySettings, UnitInfo
    from plantops.check.policy.engine import SpecLocator
    from plantops.check.policy.gate import PolicyGate
    from plantops.check.policy.model import Finding
    from plantops.gitops.ci import Provider
    from plantops.release import GitSource
    from plantops.release.pins import Pin
    from plantops.release.rollback import RollbackPlan
    from plantops.render.assemble import RenderedDeployment


@dataclass(frozen=True)
class FleetResult:
    fleet: Fleet
    warnings: tuple[Problem, ...]


SCHEMA_FILE = "plantops-spec.schema.json"


def init_fleet(directory: Path, *, force: bool) -> tuple[list[str], list[str]]:
    """``plantops init``: scaffold fleet.yaml, one plant and the editor schema into
    ``directory``; returns (written, kept). ``force`` adds the missing files to a
    non-empty directory and never overwrites one. A fleet is never made inside another
    (its fleet.yaml would be read as a plant file, its plants as the outer fleet's)."""
    from importlib import resources

    from plantops.outputs import write_text_atomically

    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a directory; choose a new path")
    for parent in directory.absolute().parents:
        if (parent / "fleet.yaml").is_file():
            raise UserError(
                f"{directory} is inside the fleet at {parent}; a fleet repository cannot"
                " hold another: choose a path outside it"
            )
    if directory.exists() and any(directory.iterdir()) and not force:
        raise UserError(
            f"{directory} is not empty; pass --force to add the missing files "
            "(existing files are kept)"
        )
    scaffold = resources.files("plantops.spec").joinpath("scaffold")
    plants = directory / "plants"
    if plants.exists() and not plants.is_dir():
        raise UserError(f"{plants} exists and is not a directory")
    try:
        plants.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {plants}: {exc.strerror}") from exc
    files = {
        rel: scaffold.joinpath(rel).read_text(encoding="utf-8")
        for rel in ("fleet.yaml", "plants/example-plant.yaml")
    }
    files[SCHEMA_FILE] = spec_schema_text()
    written: list[str] = []
    kept: list[str] = []
    for rel, text in files.items():
        new = write_text_atomically(directory / rel, text, overwrite=False)
        (written if new else kept).append(rel)
    return written, kept


def spec_schema_text() -> str:
    """``plantops schema``: the fleet spec's JSON Schema, as the editor and CI read it."""
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"


def open_fleet(root: Path, *, today: dt.date, allow_expired: bool = False) -> FleetResult:
    if warm_enabled():  # services.warm: a use case starts; what the last one left unused goes
        warm_new_run()
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
    policy: PolicyGate | None = None
    """The policy gate (docs/policy.md); None: not run."""
    policy_findings: list[Finding] = field(default_factory=list)
    memo: ObjectMemo | None = None
    """Objects that passed the schema gate before (``services.rendermemo``); None: none."""
    _validators: dict[str, SchemaValidator] = field(default_factory=dict)
    _scopes: dict[str, str | None] = field(default_factory=dict)

    def validator(self, kubernetes_version: str) -> SchemaValidator:
        found = self._validators.get(kubernetes_version)
        if found is None:
            found = self._validators[kubernetes_version] = SchemaValidator(kubernetes_version)
        return found

    def _scope(self, kubernetes_version: str) -> str | None:
        """What a kept verdict under this version depends on (None: nothing is kept)."""
        if self.memo is None:
            return None
        if kubernetes_version not in self._scopes:
            scope = self.validator(kubernetes_version).verdict_scope()
            self._scopes[kubernetes_version] = (
                None if scope is None else f"{scope}|{renderer_fingerprint()}"
            )
        return self._scopes[kubernetes_version]

    def render(self, dep: Deployment) -> list[RenderedFile]:
        rendered = render_deployment_full(dep, self.ctx)
        version = dep.cluster.kubernetes_version if dep.cluster else DEFAULT_KUBERNETES_VERSION
        validator = self.validator(version)
        memo, scope = self.memo, self._scope(version)
        for path, index, obj in rendered.documents():
            if memo is None:
                self.findings += validator.validate(obj, file=path, document_index=index)
                continue
            key = memo.key(scope, obj)
            if memo.get(key) is not None:
                continue  # passed this gate before, judged by the same code and schemas
            found = validator.validate(obj, file=path, document_index=index)
            self.findings += found
            if not found:
                memo.put(key, VALIDATED)
        self.objects += len(rendered.objects)
        if dep.cluster is not None:
            objects = [obj for _, obj in rendered.objects]
            self.capacity += check_capacity(dep.dir, objects, dep.cluster.node_pools)
        if self.policy is not None:
            self.policy_findings += policy_gate_findings(self.policy, dep, rendered)
        if rendered.compose is not None:
            path, doc = rendered.compose
            self.objects += 1
            self.findings += [
                SchemaFinding(path, 0, "compose-spec", "Compose", dep.namespace, where, message)
                for where, message in validate_compose(doc)
            ]
        return rendered.files

    def fleet_files(
        self,
        deployments: Sequence[Deployment],
        rendered: Sequence[tuple[str, dict[str, Any]]] | None = None,
    ) -> list[RenderedFile]:
        """The fleet-wide files (``rendered``: their objects, when already rendered)."""
        validator = self.validator(DEFAULT_KUBERNETES_VERSION)
        memo, scope = self.memo, self._scope(DEFAULT_KUBERNETES_VERSION)
        files = []
        objects = []
        if rendered is None:
            rendered = render_fleet_objects(deployments, self.ctx)
        for path, obj in rendered:
            key = memo.key(scope, obj) if memo is not None else None
            text = memo.get(key) if memo is not None else None
            if not text:  # not kept (or kept as a verdict only): validate and emit
                found = validator.validate(obj, file=path)
                self.findings += found
                text = dump_yaml(obj)
                if memo is not None and not found:
                    memo.put(key, text)
            self.objects += 1
            objects.append((path, 0, obj))
            files.append(RenderedFile(path, text))
        if self.policy is not None:
            from plantops.check.policy.gate import with_lines

            gate = dataclasses.replace(self.policy, context=())
            self.policy_findings += with_lines(
                gate.failing(objects), {f.path: f.content for f in files}
            )
        self.raise_findings()
        return files

    def raise_findings(self) -> None:
        if self.capacity or self.findings or self.policy_findings:
            raise RenderGateFailed(
                tuple(sorted(self.findings)),
                tuple(sorted(self.capacity)),
                tuple(sorted(self.policy_findings)),
            )


def policy_gate_findings(
    gate: PolicyGate, dep: Deployment, rendered: RenderedDeployment
) -> tuple[Finding, ...]:
    """The plan's policy gate on one rendered deployment: the failing findings (at the
    environment's threshold, no unexpired exception), located at their file and line."""
    from plantops.check.policy.gate import with_lines

    failing = gate.failing(rendered.documents(), (dep.dir, dep.as_dict()))
    if not failing:
        return ()
    return with_lines(failing, {f.path: f.content for f in rendered.files})


class RenderGateFailed(GateFailed):
    """Rendered objects failed the schema, capacity or policy gate; nothing was written.

    The findings are data (``schema``, ``capacity``, ``policy``, ``to_dict``) for whatever
    presents them; the message is the same findings as text, capacity first (a namespace
    that does not fit is the bigger problem), then schema, then policy, at most
    ``MAX_FINDINGS_SHOWN`` of each.
    """

    def __init__(
        self,
        schema: tuple[SchemaFinding, ...],
        capacity: tuple[CapacityFinding, ...] = (),
        policy: tuple[Finding, ...] = (),
    ) -> None:
        self.schema = schema
        self.capacity = capacity
        self.policy = policy
        parts = []
        if capacity:
            head = (
                f"{len(capacity)} capacity finding(s): the namespaces would not fit "
                "their quota or node pools at their peak; nothing was written:"
            )
            parts.append(_listing(head, [f.render() for f in capacity]))
        if schema:
            head = f"{len(schema)} schema finding(s) in rendered objects; nothing was written:"
            parts.append(_listing(head, [f.render() for f in schema]))
        if policy:
            head = (
                f"{len(policy)} policy finding(s) at their environment's threshold in rendered "
                "objects (no exception in force); nothing was written:"
            )
            parts.append(_listing(head, [_policy_line(f) for f in policy]))
        super().__init__("\n".join(parts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": "gate failed; nothing was written",
            "schema_findings": [f.to_dict() for f in self.schema],
            "capacity_findings": [dataclasses.asdict(f) for f in self.capacity],
            "policy_findings": [f.to_dict() for f in self.policy],
        }


def _policy_line(f: Finding) -> str:
    cause = f" (from {f.spec_location})" if f.spec_location else ""
    return (
        f"{f.file}:{f.line}: {f.rule} [{f.severity.label}] {f.object_ref} {f.path}: "
        f"{f.message}{cause}; fix: {f.remediation}"
    )


def _listing(head: str, lines: list[str]) -> str:
    shown = lines[:MAX_FINDINGS_SHOWN]
    more = len(lines) - len(shown)
    return "\n".join([head, *shown, *([f"... and {more} more"] if more > 0 else [])])


# Below this many deployments to render, forking workers costs more than it saves.
PARALLEL_MIN_RENDERS = 48
# What forked render workers inherit: the deployments to render and the render context.
_POOL_WORK: tuple[Sequence[Deployment], RenderContext, PolicyGate | None] | None = None
_POOL_CHECKER: RenderChecker | None = None


def _render_in_worker(
    i: int,
) -> tuple[list[RenderedFile], list[SchemaFinding], list[CapacityFinding], list[Finding], int]:
    """Render and validate deployment ``i`` in a forked worker (validators compiled once per
    worker, from the on-disk cache)."""
    global _POOL_CHECKER  # noqa: PLW0603 - per-process state of a pool worker
    assert _POOL_WORK is not None, "only called in workers forked by render_in_parallel"
    deps, ctx, policy = _POOL_WORK
    if _POOL_CHECKER is None:
        _POOL_CHECKER = RenderChecker(ctx, policy=policy)
    checker = _POOL_CHECKER
    findings_before, objects_before = len(checker.findings), checker.objects
    capacity_before, policy_before = len(checker.capacity), len(checker.policy_findings)
    files = checker.render(deps[i])
    return (
        files,
        checker.findings[findings_before:],
        checker.capacity[capacity_before:],
        checker.policy_findings[policy_before:],
        checker.objects - objects_before,
    )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def may_fork() -> bool:
    """Render workers may be forked from this process: it runs no other thread. A fork
    copies only the calling thread, and any lock another thread held at that moment (a
    logging handler's, a queue's, the allocator's in C code) stays held for ever in the
    child: the background policy check of ``plantops serve`` (uvicorn's and the thread
    pool's threads) once hung that way with a worker stuck on the pool's queue lock.
    Such a process — the server, the plan server (its thread watching the caller) —
    renders serially."""
    return threading.active_count() == 1


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
        if workers > 1 and len(deps) >= PARALLEL_MIN_RENDERS and may_fork():
            _POOL_WORK = (deps, checker.ctx, checker.policy)
            gc.freeze()
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    results = pool.imap(_render_in_worker, range(len(deps)), chunksize=4)
                    for files, findings, capacity, policy, objects in results:
                        checker.findings += findings
                        checker.capacity += capacity
                        checker.policy_findings += policy
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


POLICY_FOLDER = "policies"


def plan_policy_gate(
    root: Path,
    fleet: Fleet,
    fleet_objects: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    today: dt.date,
) -> PolicyGate | None:
    """The policy gate ``plan`` runs on every deployment it renders (docs/policy.md):
    the baseline and ``policies/*.yaml``, exceptions and thresholds as ``check`` has them,
    with the fleet's AppProjects beside each deployment's Application. A malformed policy
    file or CEL that does not compile stops here (exit 2).

    None for a fleet without a ``policies/`` folder: the gate refuses writes, so a fleet
    opts in where its thresholds and exceptions live (``check`` applies the baseline to
    any fleet)."""
    if not (root / POLICY_FOLDER).is_dir():
        return None  # before the imports: a fleet without policies never loads the engine
    from plantops.check.policy import BASELINE, load_policy_config
    from plantops.check.policy.gate import PolicyGate
    from plantops.check.policy.model import Document

    config = load_policy_config(root)
    ctx = policy_context(fleet, config.settings, {})
    projects = tuple(
        Document(path, 0, obj) for path, obj in fleet_objects if obj.get("kind") == "AppProject"
    )
    # PO-CAP-* are the capacity model as rules, for manifests plantops did not render:
    # plan's own capacity gate (check.capacity) already runs it on these objects.
    rules = tuple(r for r in BASELINE if not r.id.startswith("PO-CAP-"))
    return PolicyGate(config, ctx, today, _spec_locator(fleet), rules, projects)


@functools.cache
def _policy_code_digest() -> str:
    package = Path(plantops_package.__file__).parent / "check" / "policy"
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def policy_fingerprint(root: Path, gate: PolicyGate) -> str:
    """Hash of the policy code, the fleet's ``policies/`` files and which exceptions are
    in force on the gate's day: changing a rule, a threshold or an exception re-renders
    (and so re-checks) every deployment on the next plan, and so does the day an
    exception expires, though no file changed (the finding it covered must come back)."""
    digest = hashlib.sha256(_policy_code_digest().encode())
    folder = root / POLICY_FOLDER
    if folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for e in gate.config.exceptions:
        digest.update(f"{e.where}:{e.expires >= gate.today}\n".encode())
    return digest.hexdigest()[:12]


RELEASES_FOLDER = "releases"
"""``release.pins.RELEASES_DIR``, named here so a fleet without pins never imports the
release code (a test holds the two equal)."""


def fleet_pins(root: Path) -> Mapping[tuple[str, str], Pin]:
    """The fleet's release pins (``release.pins.read_pins``); none without the folder."""
    if not (root / RELEASES_FOLDER).is_dir():
        return {}
    from plantops.release.pins import read_pins

    return read_pins(root)


def pinned_plan(
    root: Path,
    plan: Plan,
    *,
    every_deployment: bool = True,
    pins: Mapping[tuple[str, str], Pin] | None = None,
) -> Plan:
    """``plan`` with the fleet's release pins (``releases/<plant>/<env>.yaml``, or
    ``pins`` already read from there) applied: a pinned deployment renders the pinned
    image and its upgrade; the others are as planned. The deployments' ``input_hash`` is
    left as planned (the fleet configuration hash of a release must not depend on the
    pins); the writer's hash adds the pin."""
    if pins is None:
        pins = fleet_pins(root)
    if not pins:
        return plan
    from plantops.release.pins import apply_pins

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
    policy_gate: bool = True,
) -> PlanResult:
    """Load, validate, classify, size, render and write the deployment tree.

    Every rendered object passes the schema, capacity and (``policy_gate``) policy gates
    first; a finding raises ``RenderGateFailed`` and nothing is written."""
    res = open_fleet(root, today=today, allow_expired=allow_expired)
    memo, memo_at = open_plan_memo(root, memo_scope(renderer_fingerprint(), today))
    pins = fleet_pins(root)  # once: a --plant run applies them to both plans
    selected = build_plan(res.fleet, plants, memo)
    plan = pinned_plan(root, selected, every_deployment=not plants, pins=pins)
    # Fleet-wide files (Argo CD projects) always reflect every plant, even in a --plant run.
    full = pinned_plan(root, build_plan(res.fleet, (), memo), pins=pins) if plants else plan
    store_plan_memo(memo, memo_at)
    problems = check_renderable(full)
    if problems:
        raise SpecError(problems)
    render_ctx = RenderContext.from_fleet(res.fleet.spec)
    fleet_objects = render_fleet_objects(full.deployments, render_ctx)
    gate = plan_policy_gate(root, res.fleet, fleet_objects, today=today) if policy_gate else None
    policy_hash = policy_fingerprint(root, gate) if gate is not None else "no-policy-gate"
    kept = ObjectMemo.for_fleet(root, renderer_fingerprint()) if not dry_run else None
    checker = RenderChecker(render_ctx, policy=gate, memo=kept)
    units = [
        UnitOfWork(
            id=d.id,
            input_hash=f"{d.input_hash}+{renderer_fingerprint()}+{policy_hash}"
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
        extra=lambda: checker.fleet_files(full.deployments, fleet_objects),
        dry_run=dry_run,
        render_many=render_in_parallel(
            checker, {d.id: d for d in plan.deployments}, workers=available_cpus()
        ),
    )
    if kept is not None:
        kept.save()
    notices = _exception_warnings(gate) if gate is not None else ()
    return PlanResult(plan, tree, (*res.warnings, *full.warnings, *notices), cost_plan(full))


def _exception_warnings(gate: PolicyGate) -> tuple[Problem, ...]:
    return tuple(
        Problem(
            e.file,
            e.line,
            1,
            "",
            f"policy exception for {e.rule} by {e.owner} {why}",
            hint=f"renew it (owner and reason) or fix what it covers: {e.reason}",
            severity="warning",
        )
        for e, why in gate.exception_notices()
    )


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
    # Without an allowlist in policies/settings.yaml, the fleet spec's own
    # (platform.images.registries) is the allowed one; without either, the registries of
    # the images the fleet spec names (Odoo and the platform images).
    images = [spec.odoo.image, spec.platform.images.redis, spec.platform.images.redis_exporter]
    images += [spec.platform.images.postgres, spec.platform.images.traefik]
    registries = (
        settings.registries
        or tuple(spec.platform.images.registries)
        or tuple(sorted({str(i).split("/", 1)[0] for i in images}))
    )
    ports = set(settings.open_egress_ports)
    # Integration endpoints (host:port) are the allowed destinations a NetworkPolicy can
    # only name by port.
    for plant in fleet.plants:
        for integ in plant.spec.profile.integrations:
            if integ.endpoint:
                ports.add(int(integ.endpoint.rsplit(":", 1)[1]))
    if spec.defaults.smtp_relay:
        ports.add(int(spec.defaults.smtp_relay.rsplit(":", 1)[1]))
    from plantops.check.policy.baseline import image_repository

    image_fields = {image_repository(spec.odoo.image): "fleet.odoo.image"}
    for name in ("redis", "redis_exporter", "postgres", "traefik"):
        image = str(getattr(spec.platform.images, name))
        image_fields.setdefault(image_repository(image), f"fleet.platform.images.{name}")
    return PolicyContext(
        image_fields=image_fields,
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
        plan_fleet(target, out, today=today, policy_gate=False)
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
    from plantops.outputs import check_output_dir

    check_output_dir(out)
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
    from plantops.gitops.ci import PROVIDERS, CiOptions, generate_ci

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

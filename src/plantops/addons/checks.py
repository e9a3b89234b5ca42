"""Addon integrity checks over discovered addons: pure, deterministic, no I/O.

Each finding names the manifest file and line that causes it and, for dependency
problems, the chain of addons that needs the culprit. Severity ``error`` fails the check
(exit 1); ``warning`` is reported only.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from manifestoo_core.core_addons import (
    get_core_addon_license,
    is_core_ce_addon,
    is_core_ee_addon,
)
from manifestoo_core.exceptions import UnsupportedOdooSeries
from manifestoo_core.metadata import EXTERNAL_DEPENDENCIES_MAP
from manifestoo_core.odoo_series import OdooSeries
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from plantops.addons.discover import Addon
from plantops.addons.inputs import ODOO_LICENSES, LicenseMatrix, PackageList, version_satisfies
from plantops.errors import UserError

Edition = Literal["ce", "ee"]

# The OCA's development_status values (oca-towncrier / maintainer-tools), lowest first.
DEVELOPMENT_STATUSES = ("Alpha", "Beta", "Production/Stable", "Mature")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    code: str
    addon: str
    message: str
    severity: str = "error"
    chain: tuple[str, ...] = ()
    hint: str = ""

    def render(self) -> str:
        text = (
            f"{self.file}:{self.line}: {self.severity} [{self.code}] {self.addon}: {self.message}"
        )
        if self.chain:
            text += f" (chain: {' → '.join(self.chain)})"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "addon": self.addon,
            "message": self.message,
            "severity": self.severity,
            "chain": list(self.chain),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class CheckOptions:
    series: str
    edition: Edition = "ce"
    licenses: LicenseMatrix = field(default_factory=LicenseMatrix)
    packages: PackageList | None = None
    binaries: frozenset[str] | None = None
    min_development_status: str | None = None


def odoo_series(value: str) -> OdooSeries:
    try:
        return OdooSeries.from_str(value)
    except UnsupportedOdooSeries:
        known = ", ".join(s.value for s in OdooSeries)
        raise UserError(
            f"--series {value}: not an Odoo series manifestoo-core knows ({known})"
        ) from None


@dataclass
class _Ctx:
    options: CheckOptions
    series: OdooSeries
    index: dict[str, Addon]
    findings: list[Finding] = field(default_factory=list)
    parents: dict[str, list[str]] = field(default_factory=dict)
    """Installable addon → installable addons that depend on it directly."""

    def add(self, addon: Addon, key: str, code: str, message: str, **kw: Any) -> None:
        line = (
            addon.parsed.depend_lines.get(key, addon.parsed.line_of("depends"))
            if kw.pop("depend", False)
            else addon.parsed.line_of(key)
        )
        self.findings.append(Finding(addon.manifest_file, line, code, addon.name, message, **kw))

    def chain_to(self, name: str) -> tuple[str, ...]:
        """The shortest chain from an addon nothing depends on down to ``name``."""
        seen = {name}
        queue: deque[tuple[str, ...]] = deque([(name,)])
        while queue:
            path = queue.popleft()
            ups = sorted(p for p in self.parents.get(path[0], []) if p not in seen)
            if not ups:
                return path
            for up in ups:
                seen.add(up)
                queue.append((up, *path))
        return (name,)  # pragma: no cover - every BFS ends at a root


def check_addons(addons: Sequence[Addon], options: CheckOptions) -> list[Finding]:
    """Every finding for the addons of the given paths, sorted."""
    series = odoo_series(options.series)
    index: dict[str, Addon] = {}
    ctx = _Ctx(options, series, index)
    for addon in sorted(addons, key=lambda a: (a.order, a.name)):
        first = index.get(addon.name)
        if first is None:
            index[addon.name] = addon
            continue
        # odoo/modules/module.py get_module_path: the first addons path holding it wins.
        ctx.add(
            addon,
            "name",
            "shadowed",
            f"same addon name as {first.manifest_file} (an earlier addons path); "
            "this copy is never loaded",
            hint="remove one copy or reorder the addons paths",
        )
    installable = {n: a for n, a in index.items() if a.parsed.manifest.installable}
    for name, addon in installable.items():
        for dep in addon.parsed.manifest.depends:
            if dep in installable:
                ctx.parents.setdefault(dep, []).append(name)
    for name in sorted(installable):
        addon = installable[name]
        if is_core_ce_addon(name, series) or is_core_ee_addon(name, series):
            ctx.add(
                addon,
                "name",
                "shadows-core",
                f"has the name of an Odoo {series.value} core addon",
                severity="warning",
                hint="whichever comes first in addons_path replaces the core addon",
            )
        _check_version(ctx, addon)
        _check_license_field(ctx, addon)
        _check_status(ctx, addon)
        _check_external(ctx, addon)
        _check_depends(ctx, addon, installable)
    _check_cycles(ctx, installable)
    _check_license_conflicts(ctx, installable)
    return sorted(set(ctx.findings))


_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")


def _check_version(ctx: _Ctx, addon: Addon) -> None:
    """As Odoo 17+ does (odoo/modules/module.py adapt_version, check_version): ``x.y`` and
    ``x.y.z`` get the series prefixed; anything else must start with ``SERIES.``."""
    version = addon.parsed.manifest.version
    serie = ctx.series.value
    if version is None:
        ctx.add(
            addon,
            "name",
            "version-missing",
            "no version: Odoo reads it as 1.0",
            severity="warning",
            hint=f"set 'version': '{serie}.1.0.0'",
        )
        return
    if version.startswith(serie + "."):
        base = version[len(serie) + 1 :]
        if not _VERSION.match(base):
            ctx.add(
                addon,
                "version",
                "version-invalid",
                f"version {version!r}: after {serie}. Odoo expects x.y or x.y.z",
            )
        return
    if _VERSION.match(version):
        ctx.add(
            addon,
            "version",
            "version-no-series",
            f"version {version!r} has no series; Odoo reads it as {serie}.{version}",
            severity="warning",
            hint=f"write '{serie}.{version}'",
        )
        return
    found = ".".join(version.split(".")[:2])
    ctx.add(
        addon,
        "version",
        "version-series-mismatch",
        f"version {version!r} is for series {found}, not {serie}; Odoo {serie} refuses to load it",
        hint=f"port the addon to {serie} (version {serie}.x.y.z)",
    )


def _check_license_field(ctx: _Ctx, addon: Addon) -> None:
    license_ = addon.parsed.manifest.license
    if license_ is None:
        ctx.add(
            addon,
            "name",
            "license-missing",
            "no license: Odoo assumes LGPL-3",
            severity="warning",
            hint="set 'license' explicitly",
        )
    elif license_ not in ODOO_LICENSES:
        ctx.add(
            addon,
            "license",
            "license-unknown",
            f"license {license_!r} is not one Odoo knows",
            severity="warning",
            hint="one of: " + ", ".join(sorted(ODOO_LICENSES)),
        )


def _check_status(ctx: _Ctx, addon: Addon) -> None:
    threshold = ctx.options.min_development_status
    status = addon.parsed.manifest.development_status
    if threshold is None or status is None:
        return
    if status not in DEVELOPMENT_STATUSES:
        ctx.add(
            addon,
            "development_status",
            "development-status-unknown",
            f"development_status {status!r} is not one of {', '.join(DEVELOPMENT_STATUSES)}",
            severity="warning",
        )
        return
    if DEVELOPMENT_STATUSES.index(status) < DEVELOPMENT_STATUSES.index(threshold):
        ctx.add(
            addon,
            "development_status",
            "development-status",
            f"development_status {status} is below the required {threshold}",
            hint="keep it out of this stage or raise its maturity",
        )


def _check_external(ctx: _Ctx, addon: Addon) -> None:
    external = addon.parsed.manifest.external_dependencies
    packages, binaries = ctx.options.packages, ctx.options.binaries
    if packages is not None:
        for dep in external.get("python", []):
            _check_python_dep(ctx, addon, dep, packages)
    if binaries is not None:
        for binary in external.get("bin", []):
            # odoo/modules/module.py check_manifest_dependencies: tools.find_in_path(binary)
            if binary not in binaries:
                ctx.add(
                    addon,
                    "external_dependencies",
                    "external-bin-missing",
                    f"needs the program {binary!r}, not in the image's binaries list",
                    hint="install it in the image",
                )


def _check_python_dep(ctx: _Ctx, addon: Addon, dep: str, packages: PackageList) -> None:
    """As Odoo 17+ (odoo/modules/module.py check_python_external_dependency): the entry is
    a PEP 508 requirement whose name is a distribution; older manifests give an import name,
    which manifestoo-core's map translates (``ldap`` → ``python-ldap``)."""
    try:
        req = Requirement(dep)
    except InvalidRequirement as exc:
        ctx.add(
            addon,
            "external_dependencies",
            "external-python-invalid",
            f"python dependency {dep!r} is not a valid requirement: {exc}",
        )
        return
    names = [canonicalize_name(req.name)]
    mapped = EXTERNAL_DEPENDENCIES_MAP.get(req.name)
    if mapped:
        names.append(canonicalize_name(mapped))
    names.append(canonicalize_name(req.name.split(".")[0]))
    installed = next((n for n in names if n in packages.versions), None)
    marker = f" (when {req.marker})" if req.marker else ""
    if installed is None:
        ctx.add(
            addon,
            "external_dependencies",
            "external-python-missing",
            f"needs the Python package {req.name!r}{marker}, not in {packages.source}",
            hint=f"add {mapped or req.name} to the image",
        )
        return
    version = packages.versions[installed]
    if not version_satisfies(req, version):
        ctx.add(
            addon,
            "external_dependencies",
            "external-python-version",
            f"needs {dep!r}{marker}; the image has {installed} {version}",
        )


def _check_depends(ctx: _Ctx, addon: Addon, installable: Mapping[str, Addon]) -> None:
    for dep in addon.parsed.manifest.depends:
        if dep in installable:
            continue
        found = ctx.index.get(dep)
        if found is not None:
            # odoo/addons/base/models/ir_module.py Module._state_update refuses it: "depends
            # on module X. But the latter module cannot be installed."
            ctx.add(
                addon,
                dep,
                "depends-on-uninstallable",
                f"depends on {dep}, which is 'installable': False ({found.manifest_file})",
                depend=True,
                chain=(*ctx.chain_to(addon.name), dep),
            )
            continue
        if is_core_ce_addon(dep, ctx.series):
            continue
        if is_core_ee_addon(dep, ctx.series):
            if ctx.options.edition == "ce":
                ctx.add(
                    addon,
                    dep,
                    "enterprise-on-ce",
                    f"depends on {dep}, an Odoo Enterprise addon; the fleet runs Community",
                    depend=True,
                    chain=(*ctx.chain_to(addon.name), dep),
                    hint="remove the dependency or run the plants on Enterprise (--edition ee)",
                )
            continue
        # ir_module.py Module._state_update: "… the latter module is not available".
        ctx.add(
            addon,
            dep,
            "missing-dependency",
            f"depends on {dep}, found in no addons path and not an Odoo {ctx.series.value} "
            "core addon",
            depend=True,
            chain=(*ctx.chain_to(addon.name), dep),
            hint=f"add the repository holding {dep} to the addons paths",
        )


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (a deep dependency chain must not hit recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def _check_cycles(ctx: _Ctx, installable: Mapping[str, Addon]) -> None:
    graph = {
        name: [d for d in a.parsed.manifest.depends if d in installable]
        for name, a in installable.items()
    }
    for component in _strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        members = set(component)
        # One concrete loop through the component, from its first member.
        first = component[0]
        path = [first]
        where = {first: 0}
        while True:
            nxt = next(d for d in sorted(graph[path[-1]]) if d in members)
            if nxt in where:
                loop = path[where[nxt] :] + [nxt]
                break
            where[nxt] = len(path)
            path.append(nxt)
        head = installable[loop[0]]
        ctx.add(
            head,
            loop[1],
            "dependency-cycle",
            f"dependency cycle among {len(members)} addon(s): Odoo cannot order them",
            depend=True,
            chain=tuple(loop),
            hint="break the cycle: move the shared part into a base addon",
        )


def _license_of(ctx: _Ctx, name: str, installable: Mapping[str, Addon]) -> str | None:
    if name in installable:
        return installable[name].parsed.manifest.license or "LGPL-3"
    if is_core_ce_addon(name, ctx.series) or is_core_ee_addon(name, ctx.series):
        # manifestoo-core: core licenses are uniform per series and edition.
        return get_core_addon_license(name, ctx.series)
    return None


def _check_license_conflicts(ctx: _Ctx, installable: Mapping[str, Addon]) -> None:
    forbid = ctx.options.licenses.forbid
    for name in sorted(installable):
        addon = installable[name]
        own = addon.parsed.manifest.license or "LGPL-3"
        banned = forbid.get(own)
        if not banned:
            continue
        # Breadth first: the first conflict met has the shortest chain; the others are
        # counted in the same finding (one finding per addon, not one per pair).
        seen = {name}
        queue: deque[tuple[str, ...]] = deque([(name,)])
        conflicts: list[tuple[tuple[str, ...], str]] = []
        while queue:
            path = queue.popleft()
            deps = installable[path[-1]].parsed.manifest.depends if path[-1] in installable else []
            for dep in sorted(deps):
                if dep in seen:
                    continue
                seen.add(dep)
                lic = _license_of(ctx, dep, installable)
                if lic in banned:
                    conflicts.append(((*path, dep), lic or ""))
                queue.append((*path, dep))
        if not conflicts:
            continue
        chain, lic = conflicts[0]
        others = [c[-1] for c, _ in conflicts[1:]]
        more = (
            f"; {len(others)} more: {', '.join(others[:5])}{'…' if len(others) > 5 else ''}"
            if others
            else ""
        )
        ctx.add(
            addon,
            chain[1],
            "license-conflict",
            f"licensed {own} but depends on {chain[-1]} ({lic}){more}; "
            f"the matrix ({ctx.options.licenses.source}) forbids {own} → {', '.join(sorted(banned))}",
            depend=True,
            chain=chain,
            hint="relicense one of them or drop the dependency",
        )


__all__ = [
    "DEVELOPMENT_STATUSES",
    "CheckOptions",
    "Edition",
    "Finding",
    "check_addons",
    "odoo_series",
]

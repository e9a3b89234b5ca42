"""Odoo addon integrity: discovery in addons paths, safe manifest reading, the dependency
graph and its checks, per-addon checksums.

This package reads the addons paths and the small list files it is given; it never
imports, executes or writes anything, and never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.addons.checks import CheckOptions, Finding, check_addons
from plantops.addons.checksum import addon_checksum, changed_addons
from plantops.addons.discover import Addon, AddonsInputError, discover_addons, expand_addons_paths
from plantops.errors import display_path


@dataclass(frozen=True)
class AddonsReport:
    series: str
    edition: str
    addons_paths: tuple[str, ...]
    addons: tuple[Addon, ...]
    findings: tuple[Finding, ...]
    checksums: dict[str, str] | None
    external_checked: bool

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        shadowed = {f.file for f in self.findings if f.code == "shadowed"}
        return {
            "series": self.series,
            "edition": self.edition,
            "addons_paths": list(self.addons_paths),
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "external_dependencies_checked": self.external_checked,
            "findings": [f.to_dict() for f in self.findings],
            "addons": [
                {
                    "name": a.name,
                    "version": a.parsed.manifest.version,
                    "license": a.parsed.manifest.license,
                    "installable": a.parsed.manifest.installable,
                    "depends": list(a.parsed.manifest.depends),
                    "manifest": a.manifest_file,
                    "shadowed": a.manifest_file in shadowed,
                    **(
                        {"checksum": self.checksums.get(a.manifest_file)}
                        if self.checksums is not None
                        else {}
                    ),
                }
                for a in self.addons
            ],
        }


def check_addons_paths(
    paths: Sequence[Path], options: CheckOptions, *, checksums: bool = False
) -> AddonsReport:
    """Discover, parse and check; unreadable inputs raise :class:`AddonsInputError`."""
    roots = expand_addons_paths(paths)
    addons = discover_addons(roots)
    findings = check_addons(addons, options)
    sums = (
        {
            a.manifest_file: addon_checksum(a.path, a.manifest_file.rpartition("/")[0])
            for a in addons
        }
        if checksums
        else None
    )
    base = Path.cwd()
    return AddonsReport(
        series=options.series,
        edition=options.edition,
        addons_paths=tuple(display_path(r, base) for r in roots),
        addons=tuple(sorted(addons, key=lambda a: (a.name, a.order))),
        findings=tuple(findings),
        checksums=sums,
        external_checked=options.packages is not None,
    )


__all__ = [
    "Addon",
    "AddonsInputError",
    "AddonsReport",
    "CheckOptions",
    "Finding",
    "addon_checksum",
    "changed_addons",
    "check_addons",
    "check_addons_paths",
    "discover_addons",
    "expand_addons_paths",
]

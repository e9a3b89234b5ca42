"""The small input files of ``addons check``: the image's package list, its binaries and
the license matrix. Each is read through :mod:`plantops.inputs` (bounded, regular files
only) and every malformed line is a located :class:`~plantops.inputs.BadInput`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from plantops.errors import display_path
from plantops.inputs import (
    SPEC_LIMITS,
    BadInput,
    Limits,
    read_text,
    yaml_documents_located,
)

LIST_LIMITS = Limits(max_bytes=4 * 1024 * 1024, max_nodes=100_000, max_depth=16)

# Odoo's own license choices (odoo/addons/base/models/ir_module.py Module.license);
# a manifest without one is read as LGPL-3 (odoo/modules/module.py load_manifest).
ODOO_LICENSES = frozenset(
    {
        "GPL-2",
        "GPL-2 or any later version",
        "GPL-3",
        "GPL-3 or any later version",
        "AGPL-3",
        "LGPL-3",
        "Other OSI approved licence",
        "OEEL-1",
        "OPL-1",
        "Other proprietary",
    }
)
PROPRIETARY = ("OEEL-1", "OPL-1", "Other proprietary")
STRONG_COPYLEFT = (
    "AGPL-3",
    "GPL-2",
    "GPL-2 or any later version",
    "GPL-3",
    "GPL-3 or any later version",
)


@dataclass(frozen=True)
class LicenseMatrix:
    """``forbid[A]``: licenses an addon licensed ``A`` must not depend on, even indirectly
    (everything an addon depends on is loaded into the same Odoo process with it)."""

    forbid: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {p: frozenset(STRONG_COPYLEFT) for p in PROPRIETARY}
    )
    source: str = "built-in"


def load_license_matrix(path: Path) -> LicenseMatrix:
    """A matrix file: ``forbid: {OPL-1: [AGPL-3, GPL-3], …}`` (YAML)."""
    shown = display_path(path, Path.cwd())
    text = read_text(path, shown, limits=SPEC_LIMITS)
    docs = yaml_documents_located(text, shown, limits=SPEC_LIMITS)
    data = docs[0][2] if docs else None
    if (
        not isinstance(data, dict)
        or set(data) != {"forbid"}
        or not isinstance(data["forbid"], dict)
    ):
        raise BadInput(shown, 1, 1, "expected one mapping 'forbid: {LICENSE: [LICENSE, …]}'")
    forbid: dict[str, frozenset[str]] = {}
    for key, value in data["forbid"].items():
        if not isinstance(key, str) or not isinstance(value, list):
            raise BadInput(shown, 1, 1, f"forbid[{key!r}] must be a list of licenses")
        unknown = [v for v in [key, *value] if v not in ODOO_LICENSES]
        if unknown:
            raise BadInput(
                shown,
                1,
                1,
                f"unknown license {unknown[0]!r}",
                "one of Odoo's: " + ", ".join(sorted(ODOO_LICENSES)),
            )
        forbid[key] = frozenset(value)
    return LicenseMatrix(forbid, shown)


@dataclass(frozen=True)
class PackageList:
    """An image's Python distributions from a ``pip freeze``-style file."""

    versions: Mapping[str, str | None]
    """Canonical name → version (``None`` for a URL or editable install)."""
    source: str


def parse_package_list(text: str, shown: str) -> PackageList:
    versions: dict[str, str | None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "--editable ")):
            egg = line.partition("#egg=")[2].split("&", 1)[0]
            if egg:
                versions[canonicalize_name(egg)] = None
            continue
        if line.startswith("-"):
            continue  # pip options (-i, --hash lines of a requirements file)
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BadInput(
                shown, number, 1, f"not a package line: {exc}", "expected NAME==VERSION"
            ) from None
        pinned = [s.version for s in req.specifier if s.operator in ("==", "===")]
        versions[canonicalize_name(req.name)] = pinned[0] if pinned else None
    return PackageList(versions, shown)


def load_package_list(path: Path) -> PackageList:
    shown = display_path(path, Path.cwd())
    return parse_package_list(read_text(path, shown, limits=LIST_LIMITS), shown)


def load_binaries(path: Path) -> frozenset[str]:
    """Executable names, one a line (``ls /usr/bin /usr/local/bin`` of the image)."""
    shown = display_path(path, Path.cwd())
    text = read_text(path, shown, limits=LIST_LIMITS)
    return frozenset(
        Path(line.strip()).name
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def version_satisfies(req: Requirement, version: str | None) -> bool:
    """Whether an installed version meets a requirement's specifier (no version: unknown,
    taken as met, as pip cannot say either for a URL install)."""
    if version is None or not req.specifier:
        return True
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


__all__ = [
    "ODOO_LICENSES",
    "LicenseMatrix",
    "PackageList",
    "load_binaries",
    "load_license_matrix",
    "load_package_list",
    "parse_package_list",
    "version_satisfies",
]

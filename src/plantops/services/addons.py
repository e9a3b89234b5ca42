"""The use case behind ``plantops addons check``: the addon integrity gate."""

from __future__ import annotations

from pathlib import Path

from plantops.addons import AddonsReport, CheckOptions, check_addons_paths
from plantops.addons.checks import DEVELOPMENT_STATUSES, odoo_series
from plantops.addons.inputs import (
    LicenseMatrix,
    load_binaries,
    load_license_matrix,
    load_package_list,
)
from plantops.errors import UserError


def check_addons(
    paths: list[Path],
    series: str,
    edition: str,
    license_matrix: Path | None,
    packages: Path | None,
    binaries: Path | None,
    min_status: str | None,
    checksums: bool,
) -> AddonsReport:
    """Check the addons under ``paths`` for ``series``/``edition`` with the optional
    license matrix, package list, binaries and minimum development status."""
    odoo_series(series)
    if min_status is not None and min_status not in DEVELOPMENT_STATUSES:
        raise UserError(
            f"--min-development-status {min_status}: one of {', '.join(DEVELOPMENT_STATUSES)}"
        )
    options = CheckOptions(
        series=series,
        edition="ee" if edition == "ee" else "ce",
        licenses=load_license_matrix(license_matrix) if license_matrix else LicenseMatrix(),
        packages=load_package_list(packages) if packages else None,
        binaries=load_binaries(binaries) if binaries else None,
        min_development_status=min_status,
    )
    return check_addons_paths(paths, options, checksums=checksums)


__all__ = ["AddonsReport", "check_addons"]

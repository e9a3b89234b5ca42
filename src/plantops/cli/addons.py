"""``plantops addons check``: addon integrity over addons paths.

Exit codes: 0 no error finding · 1 error findings · 2 unreadable or hostile input, bad usage.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops.errors import EXIT_FINDINGS
from plantops.services import addons as addons_services
from plantops.services.addons import AddonsReport

addons_app = typer.Typer(help="Odoo addon integrity.", no_args_is_help=True)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class EditionChoice(str, Enum):
    ce = "ce"
    ee = "ee"


def _summary(report: AddonsReport) -> str:
    n = len(report.addons)
    head = (
        f"{n} addon{'s' if n != 1 else ''} in {len(report.addons_paths)} addons path(s), "
        f"Odoo {report.series} {report.edition.upper()}"
    )
    errors, warnings = len(report.errors), len(report.findings) - len(report.errors)
    tail = "ok" if report.ok else f"{errors} error(s)"
    if warnings:
        tail += f", {warnings} warning(s)"
    if not report.external_checked:
        tail += " (external dependencies not checked: no --packages)"
    return f"{head}: {tail}"


@addons_app.command("check")
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Addons paths (directories of addons, as in Odoo's addons_path, first wins), "
            "or directories of such repositories."
        ),
    ],
    series: Annotated[str, typer.Option("--series", help="Odoo series, e.g. 17.0.")],
    edition: Annotated[
        EditionChoice, typer.Option("--edition", help="ce refuses Enterprise addons.")
    ] = EditionChoice.ce,
    license_matrix: Annotated[
        Path | None,
        typer.Option(
            "--license-matrix",
            help="YAML 'forbid: {LICENSE: [LICENSE…]}' (default: proprietary must not "
            "depend on AGPL/GPL).",
        ),
    ] = None,
    packages: Annotated[
        Path | None,
        typer.Option("--packages", help="The image's `pip freeze` (checks python deps)."),
    ] = None,
    binaries: Annotated[
        Path | None,
        typer.Option("--binaries", help="The image's executables, one a line (checks bin deps)."),
    ] = None,
    min_status: Annotated[
        str | None,
        typer.Option("--min-development-status", help="Alpha, Beta, Production/Stable or Mature."),
    ] = None,
    checksums: Annotated[
        bool, typer.Option("--checksums", help="Add each addon's checksum to the JSON output.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Check addons: missing dependencies (with the chain that needs them), cycles,
    shadowing, version vs series, uninstallable dependencies, Enterprise on CE, license
    conflicts, external dependencies, development status."""
    from plantops.cli.console import out, run_guarded

    report = run_guarded(
        addons_services.check_addons,
        paths,
        series,
        edition.value,
        license_matrix,
        packages,
        binaries,
        min_status,
        checksums,
    )
    if output_format is OutputFormat.json:
        out.print(
            json.dumps(report.to_dict(), indent=2, sort_keys=True), markup=False, soft_wrap=True
        )
    else:
        for finding in report.findings:
            out.print(finding.render(), markup=False, soft_wrap=True)
        out.print(_summary(report), markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


def register(app: typer.Typer) -> None:
    """Add ``addons`` to the plantops app."""
    app.add_typer(addons_app, name="addons")

"""``plantops validate-manifests``: strict schema validation of any Kubernetes manifests.

Exit codes: 0 every object valid · 1 findings · 2 unparsable input or bad usage ·
3 a schema download failed.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops.errors import EXIT_FINDINGS
from plantops.services.manifests import (
    DEFAULT_KUBERNETES_VERSION,
    ManifestValidation,
    validate_manifests_at,
)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def _summary(result: ManifestValidation) -> str:
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    objects = f"{result.objects} object{'s' if result.objects != 1 else ''}"
    head = f"{objects} in {files} against Kubernetes {result.kubernetes_version}"
    if result.skipped:
        head += f" ({len(result.skipped)} non-object document(s) skipped)"
    if result.ok:
        return f"{head}: all valid"
    return (
        f"{head}: {result.invalid_objects} invalid "
        f"({len(result.findings)} finding{'s' if len(result.findings) != 1 else ''})"
    )


def validate_manifests(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Manifest files or directories (*.yaml, *.yml, *.json, recursively)."),
    ],
    schemas: Annotated[
        list[str] | None,
        typer.Option(
            "--schemas",
            metavar="DIR|URL",
            help="CRD schema directory or URL template in the layout "
            "{group}/{kind}_{version}.json (repeatable; searched before the bundled schemas). "
            "Downloads are cached in $PLANTOPS_SCHEMA_CACHE or ~/.cache/plantops/schemas.",
        ),
    ] = None,
    kubernetes_version: Annotated[
        str,
        typer.Option(
            "--kubernetes-version", metavar="VERSION", help="Target Kubernetes version, e.g. 1.30."
        ),
    ] = DEFAULT_KUBERNETES_VERSION,
    ignore_missing_schemas: Annotated[
        bool,
        typer.Option(
            "--ignore-missing-schemas", help="Skip objects of kinds without a known schema."
        ),
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Validate Kubernetes manifests strictly against a Kubernetes version's schemas.

    Unknown fields are rejected; CRDs are checked against their schemas. Offline unless
    given a URL.
    """
    from plantops.cli.console import err, out, run_guarded

    result = run_guarded(
        validate_manifests_at,
        paths,
        list(schemas or []),
        kubernetes_version,
        ignore_missing_schemas,
    )
    if result.kubernetes_version != result.requested_version:
        err.print(
            f"note: no schemas for Kubernetes {result.requested_version}; "
            f"using {result.kubernetes_version}, the closest shipped",
            markup=False,
        )
    if output_format is OutputFormat.json:
        out.print(
            json.dumps(result.to_dict(), indent=2, sort_keys=True), markup=False, soft_wrap=True
        )
    else:
        for finding in result.findings:
            out.print(finding.render(), markup=False, soft_wrap=True)
        out.print(_summary(result), markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


def register(app: typer.Typer) -> None:
    """Add ``validate-manifests`` to the plantops app."""
    app.command("validate-manifests")(validate_manifests)

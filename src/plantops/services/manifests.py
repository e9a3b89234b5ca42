"""The use case behind ``plantops validate-manifests``: any manifests, strict schemas."""

from __future__ import annotations

from pathlib import Path

from plantops.check.schema import (
    DEFAULT_KUBERNETES_VERSION,
    ManifestValidation,
    SchemaValidator,
    validate_manifest_paths,
)
from plantops.errors import UserError


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def build_validator(
    schemas: list[str], kubernetes_version: str, ignore_missing_schemas: bool
) -> SchemaValidator:
    """A validator from the CLI options: each ``--schemas`` is a directory or URL template."""
    crd_dirs: list[Path] = []
    templates: list[str] = []
    for value in schemas:
        if _is_url(value):
            templates.append(value)
        elif Path(value).is_dir():
            crd_dirs.append(Path(value))
        else:
            raise UserError(
                f"--schemas {value}: not a directory nor an http(s) URL template "
                "(expected DIR in the layout {group}/{kind}_{version}.json, or "
                "https://…/{group}/{kind}_{version}.json)"
            )
    return SchemaValidator(
        kubernetes_version,
        crd_dirs=crd_dirs,
        url_templates=templates,
        ignore_missing_schemas=ignore_missing_schemas,
    )


def validate_manifests_at(
    paths: list[Path], schemas: list[str], kubernetes_version: str, ignore_missing: bool
) -> ManifestValidation:
    """Every object in ``paths`` validated against Kubernetes ``kubernetes_version`` and
    the CRD schemas (``schemas``: directories or URL templates); paths shown relative to
    the working directory."""
    validator = build_validator(schemas, kubernetes_version, ignore_missing)
    return validate_manifest_paths(paths, validator, base=Path.cwd())


__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "ManifestValidation",
    "build_validator",
    "validate_manifests_at",
]

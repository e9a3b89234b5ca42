"""Validate manifest files end to end: read, validate, summarize (returns data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.check.schema.documents import discover_manifest_files, load_manifests
from plantops.check.schema.findings import SchemaFinding
from plantops.check.schema.validator import SchemaValidator

DEFAULT_KUBERNETES_VERSION = "1.31"


@dataclass(frozen=True)
class ManifestValidation:
    """The outcome of validating a set of manifest files."""

    requested_version: str
    kubernetes_version: str
    files: int
    objects: int
    findings: tuple[SchemaFinding, ...]

    @property
    def invalid_objects(self) -> int:
        return len({(f.file, f.document_index) for f in self.findings})

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "kubernetes_version": self.kubernetes_version,
            "requested_kubernetes_version": self.requested_version,
            "files": self.files,
            "objects": self.objects,
            "invalid_objects": self.invalid_objects,
            "findings": [f.to_dict() for f in self.findings],
        }


def validate_manifest_paths(
    paths: Sequence[Path], validator: SchemaValidator, base: Path | None = None
) -> ManifestValidation:
    """Read every manifest under ``paths`` and validate each object.

    Raises ``UserError`` for paths that do not exist or files that do not parse.
    """
    files = discover_manifest_files(paths)
    documents = load_manifests(files, base)
    return ManifestValidation(
        requested_version=validator.requested_version,
        kubernetes_version=validator.resolved_version,
        files=len(files),
        objects=len(documents),
        findings=tuple(validator.validate_many(documents)),
    )


__all__ = ["DEFAULT_KUBERNETES_VERSION", "ManifestValidation", "validate_manifest_paths"]

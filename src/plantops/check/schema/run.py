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
    skipped: tuple[str, ...] = ()
    """``file#index`` of documents that are not cluster objects (see ``is_cluster_object``)."""

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
            "skipped": list(self.skipped),
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
    objects = [d for d in documents if is_cluster_object(d.obj)]
    skipped = tuple(f"{d.file}#{d.index}" for d in documents if not is_cluster_object(d.obj))
    return ManifestValidation(
        requested_version=validator.requested_version,
        kubernetes_version=validator.resolved_version,
        files=len(files),
        objects=len(objects),
        findings=tuple(validator.validate_many(objects)),
        skipped=skipped,
    )


# Build-tool configuration that sits beside manifests but is never applied to a cluster.
TOOL_API_GROUPS = ("kustomize.config.k8s.io/",)


# The keys of the ``deployment.json`` plantops writes beside each deployment's manifests.
PLANTOPS_SIDECAR_KEYS = frozenset({"id", "unit", "environment", "sizing", "tenants"})


def is_cluster_object(obj: Any) -> bool:
    """False only for documents known not to be applied to a cluster: a Kustomization, and
    plantops' own ``deployment.json``. Everything else — a mapping without ``kind`` (a
    typo such as ``Kind:``) included — is validated, and fails as kubectl would fail it."""
    if not isinstance(obj, dict):
        return True
    api = obj.get("apiVersion")
    if isinstance(api, str) and api.startswith(TOOL_API_GROUPS):
        return False
    return not ("apiVersion" not in obj and "kind" not in obj and set(obj) >= PLANTOPS_SIDECAR_KEYS)


__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "ManifestValidation",
    "is_cluster_object",
    "validate_manifest_paths",
]

"""Strict JSON Schema validation of Kubernetes objects (core and custom resources).

    validator = SchemaValidator("1.30", crd_dirs=[Path("schemas")])
    findings = validator.validate(obj)              # [] when valid
    findings = validator.validate_many(objects)

Core schemas come from the kubernetes-validate package (offline); CRD schemas from
directories or URL templates in the kubeconform layout, then from the copies
bundled with plantops. Never prints; findings are data.
"""

from plantops.check.schema.documents import (
    discover_manifest_files,
    load_manifests,
    parse_manifest_text,
)
from plantops.check.schema.findings import SchemaFinding
from plantops.check.schema.run import (
    DEFAULT_KUBERNETES_VERSION,
    ManifestValidation,
    validate_manifest_paths,
)
from plantops.check.schema.sources import (
    DirectorySource,
    Fetcher,
    GroupVersionKind,
    KubernetesSchemas,
    PackageSource,
    SchemaSource,
    UrlTemplateSource,
    default_cache_dir,
)
from plantops.check.schema.validator import ManifestDocument, SchemaValidator

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "DirectorySource",
    "Fetcher",
    "GroupVersionKind",
    "KubernetesSchemas",
    "ManifestDocument",
    "ManifestValidation",
    "PackageSource",
    "SchemaFinding",
    "SchemaSource",
    "SchemaValidator",
    "UrlTemplateSource",
    "default_cache_dir",
    "discover_manifest_files",
    "load_manifests",
    "parse_manifest_text",
    "validate_manifest_paths",
]

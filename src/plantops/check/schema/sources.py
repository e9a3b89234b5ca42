"""Where schemas come from: the edge of the schema checker.

Core Kubernetes schemas are the ``-local-strict`` JSON Schemas the
``kubernetes-validate`` package ships inside itself, so validation works offline
on a fresh machine. Custom resource schemas come from sources in the kubeconform
layout ``{group}/{kind}_{version}.json`` (kind lowercased): a directory, a URL
template (only when the user passes one; downloads are cached on disk), and the
CRD schemas bundled with plantops for the objects it renders.

Every source only *reads*; compiling and validating happen in ``validator``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from plantops.caches import cache_base, store_atomically
from plantops.check.schema.transform import SchemaVisitor, inline_definitions
from plantops.errors import PermanentError, TransientError, UserError

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@dataclass(frozen=True, order=True)
class GroupVersionKind:
    """The identity of a Kubernetes object type; ``group`` is ``""`` for the core group."""

    group: str
    version: str
    kind: str

    @classmethod
    def of(cls, api_version: str, kind: str) -> GroupVersionKind:
        group, _, version = api_version.rpartition("/")
        return cls(group, version, kind)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.kind} ({self.api_version})"


class SchemaSource(Protocol):
    """A place custom resource schemas are read from."""

    @property
    def description(self) -> str:
        """Where this source reads from, for messages."""
        ...

    def load(self, gvk: GroupVersionKind) -> Mapping[str, Any] | None:
        """The raw JSON Schema for ``gvk``, or ``None`` when this source has none."""
        ...


def catalog_path(gvk: GroupVersionKind) -> str:
    """The kubeconform/CRDs-catalog relative path: ``{group}/{kind}_{version}.json``."""
    return f"{gvk.group}/{gvk.kind.lower()}_{gvk.version}.json"


def _parse_json(text: str, where: str) -> Mapping[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{where}:{exc.lineno}:{exc.colno}: schema is not valid JSON: {exc.msg}"
        ) from exc
    if not isinstance(document, Mapping):
        raise UserError(f"{where}: schema must be a JSON object, not {type(document).__name__}")
    return document


class DirectorySource:
    """CRD schemas from a local directory in the kubeconform layout."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise UserError(
                f"schema directory {root} does not exist or is not a directory "
                "(expected the layout {group}/{kind}_{version}.json)"
            )
        self.root = root

    @property
    def description(self) -> str:
        return str(self.root)

    def load(self, gvk: GroupVersionKind) -> Mapping[str, Any] | None:
        if not gvk.group:
            return None
        path = self.root / catalog_path(gvk)
        if not path.is_file():
            return None
        return _parse_json(path.read_text(encoding="utf-8"), str(path))


class PackageSource:
    """The CRD schemas bundled inside plantops (``plantops/check/schema/crds``)."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.root = root if root is not None else resources.files(__package__).joinpath("crds")

    @property
    def description(self) -> str:
        return "bundled CRD schemas"

    def load(self, gvk: GroupVersionKind) -> Mapping[str, Any] | None:
        if not gvk.group:
            return None
        entry = self.root.joinpath(catalog_path(gvk))
        if not entry.is_file():
            return None
        return _parse_json(entry.read_text(encoding="utf-8"), f"plantops:{catalog_path(gvk)}")


class Fetcher(Protocol):
    """Gets a URL's body; ``None`` when the server says it does not exist (404)."""

    def __call__(self, url: str) -> bytes | None: ...


class UrllibFetcher:
    """The real fetcher: plain HTTP(S) GET with a timeout."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def __call__(self, url: str) -> bytes | None:
        import urllib.error  # here: urllib.request pulls in ssl, which plan never needs
        import urllib.request

        request = urllib.request.Request(url, headers={"User-Agent": "plantops"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404, 410):
                return None
            if exc.code >= 500 or exc.code == 429:
                raise TransientError(f"fetching schema {url}: HTTP {exc.code}") from exc
            raise PermanentError(f"fetching schema {url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientError(
                f"fetching schema {url}: {exc} (offline? use --schemas DIR instead)"
            ) from exc


def default_cache_dir() -> Path:
    """``$PLANTOPS_SCHEMA_CACHE``, else ``$XDG_CACHE_HOME/plantops/schemas``, else ~/.cache."""
    explicit = os.environ.get("PLANTOPS_SCHEMA_CACHE")
    return Path(explicit) if explicit else cache_base() / "schemas"


# kubeconform's Go-template spelling and the plain one are both accepted.
_TEMPLATE_FIELDS = {
    "{{.Group}}": "{group}",
    "{{ .Group }}": "{group}",
    "{{.ResourceKind}}": "{kind}",
    "{{ .ResourceKind }}": "{kind}",
    "{{.ResourceAPIVersion}}": "{version}",
    "{{ .ResourceAPIVersion }}": "{version}",
}


def normalize_url_template(template: str) -> str:
    """Accept ``{group}/{kind}_{version}`` or kubeconform's ``{{.Group}}`` spelling."""
    normalized = template
    for go, plain in _TEMPLATE_FIELDS.items():
        normalized = normalized.replace(go, plain)
    missing = [f for f in ("{group}", "{kind}", "{version}") if f not in normalized]
    if missing:
        raise UserError(
            f"schema URL template {template!r} lacks {', '.join(missing)}; expected e.g. "
            "https://example.org/crds/{group}/{kind}_{version}.json"
        )
    leftover = re.sub(r"\{(group|kind|version)\}", "", normalized)
    if "{" in leftover or "}" in leftover:
        raise UserError(
            f"schema URL template {template!r} has an unknown placeholder; "
            "only {group}, {kind} and {version} are filled in"
        )
    return normalized


class UrlTemplateSource:
    """CRD schemas downloaded from a URL template, cached on disk forever.

    Used only when the user passes a template. A cached copy is read without any
    network access, so a warmed cache works offline.
    """

    def __init__(
        self, template: str, cache_dir: Path | None = None, fetcher: Fetcher | None = None
    ) -> None:
        self.template = normalize_url_template(template)
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.fetcher: Fetcher = fetcher if fetcher is not None else UrllibFetcher()

    @property
    def description(self) -> str:
        return self.template

    def url_for(self, gvk: GroupVersionKind) -> str:
        return self.template.format(group=gvk.group, kind=gvk.kind.lower(), version=gvk.version)

    def cache_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.cache_dir / f"{digest}.json"

    def load(self, gvk: GroupVersionKind) -> Mapping[str, Any] | None:
        if not gvk.group:
            return None
        url = self.url_for(gvk)
        cached = self.cache_path(url)
        if cached.is_file():
            return _parse_json(cached.read_text(encoding="utf-8"), f"{url} (cached {cached})")
        body = self.fetcher(url)
        if body is None:
            return None
        text = body.decode("utf-8")
        document = _parse_json(text, url)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(cached)  # atomic: a crash never leaves half a schema in the cache
        return document


# --- core Kubernetes schemas ------------------------------------------------------

_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$")
_REQUESTED = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

Version = tuple[int, int]


def parse_kubernetes_version(text: str) -> Version:
    """``"1.30"``, ``"v1.30"`` or ``"1.30.2"`` -> ``(1, 30)``."""
    match = _REQUESTED.match(text.strip())
    if match is None:
        raise UserError(f"Kubernetes version {text!r} is not like 1.30 or v1.30.2")
    return int(match.group(1)), int(match.group(2))


def resolve_version(requested: Version, available: list[Version]) -> Version:
    """The schema version to use for ``requested``.

    The same minor version when shipped; otherwise the newest one older than it;
    a version newer than everything shipped gets the newest (the caller can tell
    the user). Older than everything shipped is an error: validating against a
    newer API would accept fields that cluster does not know.
    """
    if not available:
        raise UserError("no Kubernetes schemas found in the kubernetes-validate package")
    ordered = sorted(available)
    candidates = [v for v in ordered if v <= requested]
    if not candidates:
        lo, hi = ordered[0], ordered[-1]
        raise UserError(
            f"no Kubernetes schemas for {requested[0]}.{requested[1]}: the installed "
            f"kubernetes-validate ships {lo[0]}.{lo[1]} to {hi[0]}.{hi[1]} "
            "(pass --kubernetes-version within that range)"
        )
    return candidates[-1]


def _core_file_name(gvk: GroupVersionKind) -> str:
    """kubernetes-validate's naming: ``deployment-apps-v1.json``, ``service-v1.json``."""
    group = gvk.group.split(".", 1)[0]
    middle = f"-{group}" if group else ""
    return f"{gvk.kind.lower()}{middle}-{gvk.version}.json"


def _package_files(name: str) -> Traversable:
    """A package's files without importing it (kubernetes_validate's ``__init__`` pulls
    in its own validator stack, which plantops does not use)."""
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return resources.files(name)


class KubernetesSchemas:
    """The strict core schemas of one Kubernetes version, from kubernetes-validate."""

    def __init__(
        self,
        requested_version: str,
        root: Traversable | None = None,
        *,
        index_cache: Path | None = None,
    ) -> None:
        self.index_cache = index_cache
        self.root = (
            root
            if root is not None
            else _package_files("kubernetes_validate").joinpath("kubernetes-json-schema")
        )
        self.requested = parse_kubernetes_version(requested_version)
        shipped: dict[Version, str] = {}
        for entry in self.root.iterdir():
            match = _VERSION_DIR.match(entry.name)
            if match:
                shipped[(int(match.group(1)), int(match.group(2)))] = entry.name
        self.version = resolve_version(self.requested, list(shipped))
        self.directory = self.root.joinpath(shipped[self.version])

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def description(self) -> str:
        return f"Kubernetes {self.version_text} (kubernetes-validate, strict)"

    @cached_property
    def definitions(self) -> Mapping[str, Any]:
        where = f"kubernetes-validate {self.directory.name}/_definitions.json"
        document = _parse_json(
            self.directory.joinpath("_definitions.json").read_text(encoding="utf-8"), where
        )
        defs = document.get("$defs", document.get("definitions", {}))
        if not isinstance(defs, Mapping):
            raise PermanentError(f"{where}: no $defs")
        return defs

    @cached_property
    def index(self) -> Mapping[GroupVersionKind, str]:
        """Every (group, version, kind) of the core API -> its definition name.

        Building it parses all of ``_definitions.json``; with ``index_cache`` it is kept
        there (keyed by the schema directory's path and size) for the next run."""
        cached = self._cached_index()
        if cached is not None:
            return cached
        found: dict[GroupVersionKind, str] = {}
        for name, schema in self.definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                key = GroupVersionKind(gvk.get("group", ""), gvk["version"], gvk["kind"])
                found.setdefault(key, name)
        self._store_index(found)
        return found

    def _index_path(self) -> Path | None:
        if self.index_cache is None or not isinstance(self.directory, Path):
            return None
        try:
            size = (self.directory / "_definitions.json").stat().st_size
        except OSError:
            return None
        key = hashlib.sha256(f"{self.directory}|{size}".encode()).hexdigest()[:24]
        return self.index_cache / f"core-index-{key}.json"

    def _cached_index(self) -> dict[GroupVersionKind, str] | None:
        path = self._index_path()
        if path is None:
            return None
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            return {GroupVersionKind(g, v, k): name for g, v, k, name in rows}
        except (OSError, ValueError, TypeError):
            return None

    def _store_index(self, found: Mapping[GroupVersionKind, str]) -> None:
        path = self._index_path()
        if path is None:
            return
        rows = [[k.group, k.version, k.kind, name] for k, name in found.items()]
        store_atomically(path, json.dumps(rows).encode())

    def knows(self, gvk: GroupVersionKind) -> bool:
        return gvk in self.index

    def load(
        self, gvk: GroupVersionKind, also: SchemaVisitor | None = None
    ) -> dict[str, Any] | None:
        """The self-contained strict schema of a core kind (refs inlined), or ``None``;
        ``also`` rewrites every node in the same walk."""
        name = self.index.get(gvk)
        if name is None:
            return None
        entry = self.directory.joinpath(_core_file_name(gvk))
        # The per-kind file adds apiVersion/kind enums to the definition: use it, as
        # kubernetes-validate does, when it is there.
        root: Mapping[str, Any]
        if entry.is_file():
            root = _parse_json(entry.read_text(encoding="utf-8"), entry.name)
        else:
            root = self.definitions[name]
        return self._inline(root, str(gvk), also)

    def object_meta(self, also: SchemaVisitor | None = None) -> dict[str, Any]:
        """ObjectMeta as one self-contained document (for custom resources' metadata)."""
        return self._inline(self.definitions[OBJECT_META], "ObjectMeta", also)

    def _inline(
        self, root: Mapping[str, Any], what: str, also: SchemaVisitor | None
    ) -> dict[str, Any]:
        try:
            return inline_definitions(root, self.definitions, also)
        except KeyError as exc:
            raise PermanentError(
                f"Kubernetes {self.version_text} schema for {what} references "
                f"missing definition {exc.args[0]}"
            ) from exc


__all__ = [
    "DirectorySource",
    "Fetcher",
    "GroupVersionKind",
    "KubernetesSchemas",
    "PackageSource",
    "SchemaSource",
    "UrlTemplateSource",
    "UrllibFetcher",
    "catalog_path",
    "default_cache_dir",
    "normalize_url_template",
    "parse_kubernetes_version",
    "resolve_version",
]

"""Strict schema validation of Kubernetes objects, compiled once and reused.

Each object type's schema is compiled by ``jsonschema-rs`` (a Rust JSON Schema
validator) the first time it is needed and kept for the process. A valid object
costs one ``is_valid`` call; only an invalid one is walked again with
``iter_errors``, whose typed errors (keyword, instance path, schema path) are turned
into plain findings here — findings are the rare case, explanations matter there.

Custom resources are held to the same standard as core objects: unknown fields
are rejected wherever the CRD is structural (never where it preserves unknown
fields) and ``metadata`` is checked as ObjectMeta, as the API server does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema_rs

from plantops.caches import store_atomically
from plantops.check.schema.findings import SchemaFinding
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
from plantops.check.schema.transform import (
    DEPRECATED,
    NAME_RULE,
    declared_properties,
    name_rule_words,
    strict_crd_schema,
    strip_node,
    with_metadata_schema,
    with_name_rule,
)
from plantops.errors import UserError

_MAX_MESSAGE = 240


@dataclass(frozen=True)
class ManifestDocument:
    """One YAML/JSON document of a manifest file (``obj`` may be anything YAML gives)."""

    file: str
    index: int
    obj: Any
    line: int = 0
    """1-based line where the document starts (0 for an object not read from a file)."""


class _Compiled:
    """A kind's compiled validator and its prepared schema document (parsed only when an
    object fails and the document is needed to explain it)."""

    def __init__(self, gvk: GroupVersionKind, origin: str, prepared: _Prepared) -> None:
        self.gvk = gvk
        self.origin = origin
        self.check = prepared.check
        self._prepared = prepared

    @property
    def document(self) -> dict[str, Any]:
        return self._prepared.document


class _Prepared:
    def __init__(self, text: str, check: jsonschema_rs.Validator) -> None:
        self.text = text
        self.check = check
        self._document: dict[str, Any] | None = None

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = json.loads(self.text)
        return self._document


class _Unknown:
    """A kind not looked up yet (or not an object at all)."""


_UNKNOWN = _Unknown()

# Compiled validators are shared by every SchemaValidator in the process, keyed by what
# the schema was prepared from: a renderer that builds one validator per deployment
# still compiles each schema once.
_COMPILED: dict[str, _Prepared] = {}
_COMPILED_LOCK = threading.Lock()


def validator_cache_dir() -> Path | None:
    """Where prepared schema documents and the index of core kinds are kept between runs:
    ``$PLANTOPS_VALIDATOR_CACHE`` (empty to disable), else beside the schema download cache."""
    explicit = os.environ.get("PLANTOPS_VALIDATOR_CACHE")
    if explicit is not None:
        return Path(explicit) if explicit else None
    return default_cache_dir().parent / "validators"


@functools.cache
def _preparation_tag() -> str:
    """What a prepared document depends on besides its raw schema: the rewrites (this
    package's code) and kubernetes-validate's version (core schemas are keyed by path)."""
    digest = hashlib.sha256()
    for name in ("transform.py", "sources.py", "validator.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        digest.update(importlib.metadata.version("kubernetes-validate").encode())
    return digest.hexdigest()


_TREE_DIGESTS: dict[str, str] = {}


def _tree_digest(root: Traversable) -> str:
    """SHA-256 over the names and bytes of every file under ``root`` (the bundled CRD
    schemas: 27 files, ~6 MB, a few milliseconds), once per process."""
    found = _TREE_DIGESTS.get(str(root))
    if found is None:
        found = _TREE_DIGESTS[str(root)] = _hash_tree(root)
    return found


def _hash_tree(root: Traversable) -> str:
    digest = hashlib.sha256()
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                stack.append((entry, f"{name}/"))
            elif entry.is_file():
                digest.update(name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()


def _compile(key: str, build: Callable[[], dict[str, Any]], what: str) -> _Prepared:
    """The validator for the schema ``build`` prepares, compiled once per process and
    ``key`` (what it is prepared from).

    Preparing (inlining references, the strictness rewrites) is Python walking the whole
    schema, most of a re-plan's schema cost; the prepared document is kept on disk as JSON
    text, which jsonschema-rs compiles directly — a later run neither prepares nor parses
    it in Python."""
    with _COMPILED_LOCK:
        cached = _COMPILED.get(key)
    if cached is not None:
        return cached
    cache = validator_cache_dir()
    digest = hashlib.sha256(f"{_preparation_tag()}|{key}".encode()).hexdigest()
    path = cache / f"prepared-{digest[:32]}.json" if cache is not None else None
    text: str | None = None
    if path is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text(encoding="utf-8")
    fresh = text is None
    if text is None:
        text = json.dumps(build(), separators=(",", ":"))
    try:
        # Formats (int32, date-time, …) are not asserted, like the API server's schema
        # pass and kubernetes-validate; patterns are Rust regexes, whose syntax is Go's
        # RE2 (a mid-pattern ``(?i)`` included), the dialect Kubernetes schemas are written in.
        check = jsonschema_rs.Draft202012Validator(text, validate_formats=False)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        if not fresh:  # a damaged cache entry: prepare again
            return _compile_fresh(key, build, what, path)
        raise UserError(f"schema for {what} cannot be compiled: {exc}") from exc
    if fresh and path is not None:
        store_atomically(path, text.encode())
    prepared = _Prepared(text, check)
    with _COMPILED_LOCK:
        _COMPILED[key] = prepared
    return prepared


def _compile_fresh(
    key: str, build: Callable[[], dict[str, Any]], what: str, path: Path | None
) -> _Prepared:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
    return _compile(key, build, what)


def prepare_crd_schema(
    raw: Mapping[str, Any], object_meta: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A catalog CRD schema made as strict as the API server, annotation-free."""
    document = strict_crd_schema(raw)
    if object_meta is not None:
        document = with_metadata_schema(document, object_meta)
    return dict(document)


class SchemaValidator:
    """Validates Kubernetes objects against strict core and CRD JSON Schemas.

    ``kubernetes_version`` picks the core schemas (the closest shipped version, see
    ``resolved_version``). Custom resource schemas are looked up, in order, in
    ``crd_dirs``, then ``url_templates`` (downloads cached under ``cache_dir``),
    then the CRD schemas bundled with plantops. Offline unless a URL is given.

    Build one and reuse it: schemas are loaded and compiled on first use.
    """

    def __init__(
        self,
        kubernetes_version: str,
        crd_dirs: Sequence[Path] = (),
        url_template: str | None = None,
        *,
        url_templates: Sequence[str] = (),
        cache_dir: Path | None = None,
        fetcher: Fetcher | None = None,
        bundled_crds: bool = True,
        ignore_missing_schemas: bool = False,
        extra_sources: Sequence[SchemaSource] = (),
    ) -> None:
        self.core = KubernetesSchemas(kubernetes_version, index_cache=validator_cache_dir())
        sources: list[SchemaSource] = [DirectorySource(Path(d)) for d in crd_dirs]
        templates = [*url_templates, *([url_template] if url_template else [])]
        sources += [UrlTemplateSource(t, cache_dir, fetcher) for t in templates]
        sources += list(extra_sources)
        if bundled_crds:
            sources.append(PackageSource())
        self.sources: tuple[SchemaSource, ...] = tuple(sources)
        self.ignore_missing_schemas = ignore_missing_schemas
        self._compiled: dict[tuple[str, str], _Compiled | None] = {}
        self._object_meta: dict[str, Any] | None = None

    # --- what was resolved ---------------------------------------------------------

    @property
    def resolved_version(self) -> str:
        """The Kubernetes version whose schemas are used (``"1.30"``)."""
        return self.core.version_text

    def verdict_scope(self) -> str | None:
        """A digest of everything this validator's verdicts depend on — the rewrites
        (this package's code), kubernetes-validate's version and the core schema folder
        used, the bundled CRD schemas' bytes — so a caller may keep "valid" verdicts
        between runs under it; ``None`` when schemas also come from directories or URLs,
        whose content can change without plantops knowing."""
        if any(not isinstance(s, PackageSource) for s in self.sources):
            return None
        bundled = [s for s in self.sources if isinstance(s, PackageSource)]
        digest = hashlib.sha256(_preparation_tag().encode())
        digest.update(f"|{self.core.root}|{self.core.directory.name}|".encode())
        for source in bundled:
            digest.update(_tree_digest(source.root).encode())
        return digest.hexdigest()

    @property
    def requested_version(self) -> str:
        return f"{self.core.requested[0]}.{self.core.requested[1]}"

    def has_schema(self, api_version: str, kind: str) -> bool:
        if not api_version or not kind:
            return False
        return self._get(api_version, kind) is not None

    # --- validating ------------------------------------------------------------------

    def is_valid(self, obj: Mapping[str, Any]) -> bool:
        """Fast yes/no, without explanations (a kind without a schema is invalid
        unless missing schemas are ignored)."""
        compiled = self._known(obj)
        if isinstance(compiled, _Unknown):
            if _identity_problem(obj) is not None:
                return False
            compiled = self._get(obj["apiVersion"], obj["kind"])
        if compiled is None:
            return self.ignore_missing_schemas
        try:
            return compiled.check.is_valid(obj)
        except ValueError:  # e.g. a non-string mapping key
            return False

    def _known(self, obj: Any) -> _Compiled | None | _Unknown:
        """The hot path: the compiled kind of an object whose identity was seen before
        (only well-formed identities are ever cached), else ``_UNKNOWN``."""
        try:
            return self._compiled[obj["apiVersion"], obj["kind"]]
        except (KeyError, TypeError, IndexError):
            return _UNKNOWN

    def validate(
        self, obj: Mapping[str, Any], *, file: str = "", document_index: int = 0
    ) -> list[SchemaFinding]:
        """Every schema finding for one object; ``[]`` when it is valid."""
        return sorted(self._validate(obj, file, document_index, ""))

    def validate_many(
        self, objects: Iterable[Mapping[str, Any] | ManifestDocument]
    ) -> list[SchemaFinding]:
        """Findings for many objects, sorted by file, document and path.

        Plain mappings are numbered by their position; ``ManifestDocument`` keeps
        its own file and index.
        """
        findings: list[SchemaFinding] = []
        for position, item in enumerate(objects):
            if isinstance(item, ManifestDocument):
                found = self._validate(item.obj, item.file, item.index, "")
                if item.line and found:
                    found = [dataclasses.replace(f, line=item.line) for f in found]
                findings += found
            else:
                findings += self._validate(item, "", position, "")
        return sorted(findings)

    def _validate(self, obj: Any, file: str, index: int, prefix: str) -> list[SchemaFinding]:
        known = self._known(obj)
        if isinstance(known, _Compiled) and obj["kind"] != "List":
            try:
                if known.check.is_valid(obj):
                    return []
            except ValueError:
                pass  # explained below
        problem = _identity_problem(obj)
        if problem is not None:
            api_version, kind = _identity(obj)
            return [SchemaFinding(file, index, api_version, kind, _name(obj), *problem)]
        api_version, kind = obj["apiVersion"], obj["kind"]
        if api_version == "v1" and kind == "List" and isinstance(obj.get("items"), list):
            found: list[SchemaFinding] = []
            for i, item in enumerate(obj["items"]):
                found += self._validate(item, file, index, f"{prefix}items[{i}].")
            return found
        compiled = self._get(api_version, kind)
        if compiled is None:
            if self.ignore_missing_schemas:
                return []
            gvk = GroupVersionKind.of(api_version, kind)
            message = self._missing_message(gvk)
            return [SchemaFinding(file, index, api_version, kind, _name(obj), prefix[:-1], message)]
        try:
            if compiled.check.is_valid(obj):
                return []
            explained = _explain(compiled, obj)
        except ValueError as exc:  # e.g. a non-string mapping key
            explained = [("", f"cannot be validated: {exc}")]
        name = _name(obj)
        return [
            SchemaFinding(
                file,
                index,
                api_version,
                kind,
                name,
                f"{prefix}{path}" if path else prefix[:-1],
                msg,
            )
            for path, msg in explained
        ]

    def _missing_message(self, gvk: GroupVersionKind) -> str:
        if not gvk.group or gvk.group.endswith(".k8s.io") or "." not in gvk.group:
            return (
                f"no schema for {gvk} in Kubernetes {self.resolved_version} "
                "(wrong apiVersion, or removed in this version?)"
            )
        looked = ", ".join(s.description for s in self.sources) or "no CRD sources"
        return f"no schema for {gvk} (looked in: {looked}); pass --schemas DIR"

    # --- loading and compiling -------------------------------------------------------

    def _get(self, api_version: str, kind: str) -> _Compiled | None:
        # Keyed by the object's own strings: one dict lookup per object on the hot path.
        try:
            return self._compiled[api_version, kind]
        except KeyError:
            compiled = self._compiled[api_version, kind] = self._load(
                GroupVersionKind.of(api_version, kind)
            )
            return compiled

    def _load(self, gvk: GroupVersionKind) -> _Compiled | None:
        if self.core.knows(gvk):
            core = self.core

            def build_core() -> dict[str, Any]:
                loaded = core.load(gvk, also=strip_node)
                assert loaded is not None, "known kinds have a schema"
                return with_name_rule(loaded, gvk.kind)

            # kubernetes-validate's files do not change within one installed version
            key = f"core|{core.root}|{core.directory.name}|{gvk}"
            return _Compiled(gvk, core.description, _compile(key, build_core, str(gvk)))
        for source in self.sources:
            found = source.load(gvk)
            if found is None:
                continue
            raw: Mapping[str, Any] = found

            def build_crd(raw: Mapping[str, Any] = raw) -> dict[str, Any]:
                return with_name_rule(prepare_crd_schema(raw, self.object_meta()), gvk.kind)

            # metadata is checked as this Kubernetes version's ObjectMeta
            digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
            key = f"crd|{self.core.root}|{self.core.directory.name}|{gvk.kind}|{digest}"
            what = f"{gvk} from {source.description}"
            return _Compiled(gvk, source.description, _compile(key, build_crd, what))
        return None

    def object_meta(self) -> dict[str, Any]:
        if self._object_meta is None:
            self._object_meta = self.core.object_meta(also=strip_node)
        return self._object_meta


# --- explaining failures -------------------------------------------------------------


def _identity(obj: Any) -> tuple[str, str]:
    if not isinstance(obj, Mapping):
        return "", ""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    return (
        api_version if isinstance(api_version, str) else "",
        kind if isinstance(kind, str) else "",
    )


def _identity_problem(obj: Any) -> tuple[str, str] | None:
    """(path, message) when ``obj`` is not even a Kubernetes object (its name is checked
    by the schema: ``transform.with_name_rule``)."""
    if not isinstance(obj, Mapping):
        return "", f"document is {_json_type(obj)}, not a Kubernetes object"
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            typo = next((k for k in obj if isinstance(k, str) and k.lower() == key.lower()), None)
            hint = f" (did you mean {key!r} instead of {typo!r}?)" if typo and typo != key else ""
            return key, f"not a Kubernetes object: {key} is missing or not a string{hint}"
    return None


def _name(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return ""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return ""
    name = meta.get("name") or meta.get("generateName") or ""
    return name if isinstance(name, str) else str(name)


_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def format_path(parts: Iterable[str | int]) -> str:
    """``["spec", "containers", 0, "name"]`` -> ``spec.containers[0].name``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(types: Any) -> str:
    listed = types if isinstance(types, list) else [types]
    shown = [t for t in listed if t != "null"] or listed
    return " or ".join(str(t) for t in shown)


def _clip(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


_USE_INSTEAD = re.compile(r"\buse\s+`?([A-Za-z][A-Za-z0-9]*)", re.IGNORECASE)


def _did_you_mean(key: str, declared: Mapping[str, Any]) -> str:
    """A hint naming the field the user probably meant (the current one, not a
    deprecated one when the schema says what replaces it)."""
    names = sorted(declared)
    lowered = {d.lower(): d for d in names}
    guess = lowered.get(key.lower())
    if guess is None:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        guess = close[0] if close else None
    if guess is None:
        return ""
    note = declared[guess].get(DEPRECATED) if isinstance(declared[guess], Mapping) else None
    if isinstance(note, str):
        match = _USE_INSTEAD.search(note)
        current = lowered.get(match.group(1).lower()) if match else None
        if current is not None:
            return f' (did you mean "{current}"? "{guess}" is deprecated)'
    return f' (did you mean "{guess}"?)'


def _schema_at(document: Mapping[str, Any], path: Sequence[str | int]) -> Any:
    """The (sub)schema at a jsonschema-rs schema path (absolute within ``document``)."""
    node: Any = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return node


def _bare_types(alternatives: Any) -> list[list[str]] | None:
    """The type lists of ``[{"type": ...}, ...]``; None unless every alternative is a bare
    type constraint (Kubernetes' int-or-string, kubernetes-validate's nullable forms)."""
    if not isinstance(alternatives, list) or not alternatives:
        return None
    found: list[list[str]] = []
    for alt in alternatives:
        if not isinstance(alt, Mapping) or set(alt) != {"type"}:
            return None
        types = alt["type"]
        found.append([types] if isinstance(types, str) else list(types))
    return found


def _allowed_types(keyword: str, alternatives: list[list[str]]) -> list[str]:
    """What a value may be under ``anyOf``/``oneOf`` of bare types: for ``oneOf`` only the
    types exactly one alternative names (a value matching two is refused)."""
    flat = [t for types in alternatives for t in types]
    if keyword == "oneOf":
        flat = [t for t in flat if flat.count(t) == 1]
    return sorted(set(flat)) or sorted({t for types in alternatives for t in types})


def _name_message(kind: str, name: Any) -> tuple[str, str]:
    """The name rule's finding: ``kind`` is the object's kind, or ``"required"`` when the
    name is missing (``name`` is then the metadata)."""
    rule = name_rule_words(kind) if kind != "required" else None
    if kind == "required" or not isinstance(name, str) or not name:
        return "metadata.name", "metadata.name is missing or not a string"
    if rule is None:
        return "metadata.name", f"{name!r} is not a valid name: no '/', '%', '.' or '..'"
    limit, words = rule
    return (
        "metadata.name",
        f"{name!r} is not a valid {kind} name: it must be {words} of at most {limit} "
        "characters: lowercase letters, digits and '-'" + (", '.'" if limit == 253 else ""),
    )


def _got(instance: Any) -> str:
    return f"got {_json_type(instance)} {_short(instance)}"


def _explain_one(
    error: jsonschema_rs.ValidationError, document: Mapping[str, Any]
) -> list[tuple[str, str]]:
    path = list(error.instance_path)
    where = format_path(path)
    kind = error.kind
    instance = error.instance
    node = _schema_at(document, error.schema_path[:-1])
    if isinstance(node, Mapping) and NAME_RULE in node:
        return [_name_message(node[NAME_RULE], instance)]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        declared = declared_properties(node, document)
        return [
            (format_path([*path, key]), f'unknown field "{key}"{_did_you_mean(key, declared)}')
            for key in kind.unexpected
        ]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        return [(where, f"expected {_expected(kind.types)}, {_got(instance)}")]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return [(where, f'missing required field "{kind.property}"')]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        allowed = ", ".join(_short(v) for v in kind.options)
        return [(where, _clip(f"{_short(instance)} is not one of: {allowed}"))]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Pattern):
        return [(where, _clip(f'{_short(instance)} does not match the pattern "{kind.pattern}"'))]
    keyword = error.schema_path[-1] if error.schema_path else ""
    if keyword in ("anyOf", "oneOf"):
        types = _bare_types(_schema_at(document, error.schema_path))
        if types is not None:
            return [
                (
                    where,
                    f"expected {_expected(_allowed_types(str(keyword), types))}, {_got(instance)}",
                )
            ]
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.OneOfMultipleValid):
            return [(where, f"{_short(instance)} matches more than one allowed form (oneOf)")]
    message = error.message
    if not isinstance(kind, jsonschema_rs.ValidationErrorKind.Format):
        message = message.replace(json.dumps(instance), _short(instance))
    return [(where, _clip(message))]


def _explain(compiled: _Compiled, obj: Any) -> list[tuple[str, str]]:
    explained: list[tuple[str, str]] = []
    for error in compiled.check.iter_errors(obj):
        explained += _explain_one(error, compiled.document)
    return sorted(set(explained))


__all__ = [
    "ManifestDocument",
    "SchemaValidator",
    "format_path",
    "prepare_crd_schema",
]

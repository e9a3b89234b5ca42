"""Strict schema validation of Kubernetes objects, compiled once and reused.

Each object type's schema is compiled with fastjsonschema the first time it is
needed (hundreds of times faster per object than an interpreting validator) and
kept. A valid object costs one call of that compiled function. Only an invalid
object pays for a second, interpreting pass with ``jsonschema`` that lists every
problem with its field path — findings are the rare case, explanations matter
there, speed does not.

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
import marshal
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

import fastjsonschema

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
    allow_nullable,
    declared_properties,
    forbid_unknown_fields,
    known_properties,
    mark_deprecated,
    merge_type_alternatives,
    python_patterns,
    strip_annotations,
    with_metadata_schema,
)
from plantops.errors import UserError

if TYPE_CHECKING:  # jsonschema is imported only to explain a failure
    import jsonschema

FastValidator = Callable[[Any], Any]

_MAX_MESSAGE = 240


@dataclass(frozen=True)
class ManifestDocument:
    """One YAML/JSON document of a manifest file (``obj`` may be anything YAML gives)."""

    file: str
    index: int
    obj: Any
    line: int = 0
    """1-based line where the document starts (0 for an object not read from a file)."""


@dataclass
class _Compiled:
    """A compiled schema and, built only when an object fails, its document and
    explainer."""

    gvk: GroupVersionKind
    origin: str
    build: Callable[[], dict[str, Any]]
    fast: FastValidator
    _document: dict[str, Any] | None = field(default=None, repr=False)
    _explainer: jsonschema.protocols.Validator | None = field(default=None, repr=False)

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = self.build()
        return self._document

    @property
    def explainer(self) -> jsonschema.protocols.Validator:
        if self._explainer is None:
            import jsonschema

            self._explainer = jsonschema.Draft202012Validator(self.document)
        return self._explainer


# Compiled code is shared by every SchemaValidator in the process, keyed by what the
# schema was prepared from (see ``_load``): a renderer that builds one validator per
# deployment still compiles each schema once.
_COMPILED: dict[str, FastValidator] = {}
_COMPILED_LOCK = threading.Lock()


# Part of the cache key: generated code depends on the options it was generated with.
_OPTIONS = "use_default=False,use_formats=False,detailed_exceptions=False,fstring-names"

# fastjsonschema names nested values with ``"a.{key}".format(**locals())``: ``locals()``
# of a function with thousands of variables costs more than the check itself. An
# f-string reads the same variables directly and gives the same text.
_FORMAT_LOCALS = re.compile(r'"((?:[^"\\\n]|\\.)*)"\.format\(\*\*locals\(\)\)')


def _without_locals(source: str) -> str:
    return _FORMAT_LOCALS.sub(r'f"\1"', source)


def validator_cache_dir() -> Path | None:
    """Where generated validator code is kept between runs: ``$PLANTOPS_VALIDATOR_CACHE``
    (empty to disable), else beside the schema download cache."""
    explicit = os.environ.get("PLANTOPS_VALIDATOR_CACHE")
    if explicit is not None:
        return Path(explicit) if explicit else None
    return default_cache_dir().parent / "validators"


def _run_code(code: CodeType) -> FastValidator:
    """Run byte code that fastjsonschema generated and return its ``validate``."""
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    fn: FastValidator = namespace["validate"]
    return fn


@functools.cache
def _code_tag() -> str:
    """What generated code depends on besides its input: the compiler, its options, the
    schema rewrites and kubernetes-validate's schemas."""
    here = Path(__file__).parent
    digest = hashlib.sha256(f"{fastjsonschema.VERSION}|{_OPTIONS}|".encode())
    for name in ("transform.py", "validator.py"):
        digest.update((here / name).read_bytes())
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        digest.update(importlib.metadata.version("kubernetes-validate").encode())
    return digest.hexdigest()


def _compile(key: str, build: Callable[[], Mapping[str, Any]], what: str) -> FastValidator:
    """Compile the schema ``build`` prepares, once per process and ``key`` (what it is
    prepared from). The generated code is also cached on disk, so a later ``plan`` pays
    for loading byte code — neither for preparing the schema nor for generating code."""
    digest = hashlib.sha256(f"{_code_tag()}|{key}".encode()).hexdigest()
    with _COMPILED_LOCK:
        cached = _COMPILED.get(digest)
    if cached is not None:
        return cached
    cache = validator_cache_dir()
    # Byte code, like a .pyc: keyed by the interpreter too, since marshal is version-bound.
    tag = sys.implementation.cache_tag
    path = cache / f"{digest}.{tag}.marshal" if cache is not None else None
    compiled: FastValidator | None = None
    if path is not None and path.is_file():
        try:
            code = marshal.loads(path.read_bytes())
            compiled = _run_code(code) if isinstance(code, CodeType) else None
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            compiled = None  # a damaged cache entry is regenerated below
    if compiled is None:
        try:
            source = fastjsonschema.compile_to_code(
                dict(build()), use_default=False, use_formats=False, detailed_exceptions=False
            )
        except (fastjsonschema.JsonSchemaDefinitionException, re.error, RecursionError) as exc:
            raise UserError(f"schema for {what} cannot be compiled: {exc}") from exc
        code = compile(_without_locals(source), f"<schema {what}>", "exec")
        compiled = _run_code(code)
        if path is not None:
            store_atomically(path, marshal.dumps(code))
    with _COMPILED_LOCK:
        _COMPILED[digest] = compiled
    return compiled


def prepare_crd_schema(
    raw: Mapping[str, Any], object_meta: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A catalog CRD schema made strict, Python-compilable and annotation-free."""
    document = merge_type_alternatives(
        strip_annotations(
            mark_deprecated(forbid_unknown_fields(allow_nullable(python_patterns(raw))))
        )
    )
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
        self._compiled: dict[GroupVersionKind, _Compiled | None] = {}
        self._object_meta: dict[str, Any] | None = None

    # --- what was resolved ---------------------------------------------------------

    @property
    def resolved_version(self) -> str:
        """The Kubernetes version whose schemas are used (``"1.30"``)."""
        return self.core.version_text

    @property
    def requested_version(self) -> str:
        return f"{self.core.requested[0]}.{self.core.requested[1]}"

    def has_schema(self, api_version: str, kind: str) -> bool:
        return self._get(GroupVersionKind.of(api_version, kind)) is not None

    # --- validating ------------------------------------------------------------------

    def is_valid(self, obj: Mapping[str, Any]) -> bool:
        """Fast yes/no, without explanations (a kind without a schema is invalid
        unless missing schemas are ignored)."""
        if _identity_problem(obj) is not None:
            return False
        compiled = self._get(GroupVersionKind.of(obj["apiVersion"], obj["kind"]))
        if compiled is None:
            return self.ignore_missing_schemas
        try:
            compiled.fast(obj)
        except (fastjsonschema.JsonSchemaValueException, TypeError, ValueError):
            return False
        return True

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
                if item.line:
                    found = [dataclasses.replace(f, line=item.line) for f in found]
                findings += found
            else:
                findings += self._validate(item, "", position, "")
        return sorted(findings)

    def _validate(self, obj: Any, file: str, index: int, prefix: str) -> list[SchemaFinding]:
        problem = _identity_problem(obj)
        if problem is not None:
            api_version, kind = _identity(obj)
            return [SchemaFinding(file, index, api_version, kind, _name(obj), *problem)]
        gvk = GroupVersionKind.of(obj["apiVersion"], obj["kind"])
        if gvk == GroupVersionKind("", "v1", "List") and isinstance(obj.get("items"), list):
            found: list[SchemaFinding] = []
            for i, item in enumerate(obj["items"]):
                found += self._validate(item, file, index, f"{prefix}items[{i}].")
            return found
        compiled = self._get(gvk)
        name = _name(obj)
        if compiled is None:
            if self.ignore_missing_schemas:
                return []
            return [
                SchemaFinding(
                    file,
                    index,
                    gvk.api_version,
                    gvk.kind,
                    name,
                    prefix.rstrip("."),
                    self._missing_message(gvk),
                )
            ]
        try:
            compiled.fast(obj)
            return []
        except fastjsonschema.JsonSchemaValueException as exc:
            fallback = (_fast_path(exc), str(exc.message))
        except (TypeError, ValueError) as exc:  # e.g. a non-string mapping key
            fallback = ("", f"cannot be validated: {exc}")
        explained = _explain(compiled, obj) or [fallback]
        return [
            SchemaFinding(
                file,
                index,
                gvk.api_version,
                gvk.kind,
                name,
                f"{prefix}{path}" if path else prefix.rstrip("."),
                message,
            )
            for path, message in explained
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

    def _get(self, gvk: GroupVersionKind) -> _Compiled | None:
        if gvk in self._compiled:
            return self._compiled[gvk]
        compiled = self._load(gvk)
        self._compiled[gvk] = compiled
        return compiled

    def _load(self, gvk: GroupVersionKind) -> _Compiled | None:
        if self.core.knows(gvk):
            core = self.core

            def build_core() -> dict[str, Any]:
                loaded = core.load(gvk)
                assert loaded is not None, "known kinds have a schema"
                return dict(merge_type_alternatives(strip_annotations(loaded)))

            # kubernetes-validate's files do not change within one installed version
            key = f"core|{core.root}|{core.directory.name}|{gvk}"
            return _Compiled(gvk, core.description, build_core, _compile(key, build_core, str(gvk)))
        for source in self.sources:
            found = source.load(gvk)
            if found is None:
                continue
            raw: Mapping[str, Any] = found

            def build_crd(raw: Mapping[str, Any] = raw) -> dict[str, Any]:
                return prepare_crd_schema(raw, self.object_meta())

            # metadata is checked as this Kubernetes version's ObjectMeta
            key = f"crd|{self.core.directory.name}|{json.dumps(raw)}"
            what = f"{gvk} from {source.description}"
            return _Compiled(gvk, source.description, build_crd, _compile(key, build_crd, what))
        return None

    def object_meta(self) -> dict[str, Any]:
        if self._object_meta is None:
            self._object_meta = strip_annotations(self.core.object_meta())
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
    """(path, message) when ``obj`` is not even a Kubernetes object."""
    if not isinstance(obj, Mapping):
        return "", f"document is {_json_type(obj)}, not a Kubernetes object"
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            typo = next((k for k in obj if isinstance(k, str) and k.lower() == key.lower()), None)
            hint = f" (did you mean {key!r} instead of {typo!r}?)" if typo and typo != key else ""
            return key, f"not a Kubernetes object: {key} is missing or not a string{hint}"
    return _name_problem(obj)


# Object names as the API server validates them (k8s.io/apimachinery validation,
# pkg/apis/core/validation): most kinds take a DNS-1123 subdomain (NameIsDNSSubdomain);
# a Namespace a DNS-1123 label (ValidateNamespaceName); a Service a DNS-1035 label
# (ValidateServiceName); RBAC objects any path segment (ValidatePathSegmentName).
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_KINDS = {"Namespace": (_DNS1123_LABEL, 63, "a DNS-1123 label")}
_SERVICE_KINDS = {"Service": (_DNS1035_LABEL, 63, "a DNS-1035 label (starts with a letter)")}
_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def _name_problem(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None  # the schema says what is wrong with metadata
    name = meta.get("name")
    if name is None and "generateName" in meta:
        return None
    if not isinstance(name, str) or not name:
        return "metadata.name", "metadata.name is missing or not a string"
    kind = obj["kind"]
    if kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return "metadata.name", f"{name!r} is not a valid name: no '/', '%', '.' or '..'"
        return None
    pattern, limit, words = {**_LABEL_KINDS, **_SERVICE_KINDS}.get(
        kind, (_DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain")
    )
    if len(name) > limit or not pattern.fullmatch(name):
        return (
            "metadata.name",
            f"{name!r} is not a valid {kind} name: it must be {words} of at most {limit} "
            "characters: lowercase letters, digits and '-'" + (", '.'" if limit == 253 else ""),
        )
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


def _fast_path(exc: fastjsonschema.JsonSchemaValueException) -> str:
    path = list(exc.path or [])
    return format_path(path[1:] if path and path[0] == "data" else path)


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


def _unknown_fields(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> list[str]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    declared = known_properties(schema, root)
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    return [
        str(key)
        for key in instance
        if key not in declared and not any(p.search(str(key)) for p in patterns)
    ]


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


def _explain_one(
    error: jsonschema.ValidationError, root: Mapping[str, Any]
) -> list[tuple[str, str]]:
    path = list(error.absolute_path)
    where = format_path(path)
    kind = error.validator
    if kind == "additionalProperties" and error.validator_value is False:
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        declared = declared_properties(schema, root)
        return [
            (format_path([*path, key]), f'unknown field "{key}"{_did_you_mean(key, declared)}')
            for key in _unknown_fields(error, root)
        ]
    if kind == "type":
        got = _json_type(error.instance)
        return [
            (
                where,
                f"expected {_expected(error.validator_value)}, got {got} {_short(error.instance)}",
            )
        ]
    if kind == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [(where, f'missing required field "{r}"') for r in required if r not in instance]
    if kind == "enum":
        values = error.validator_value if isinstance(error.validator_value, list) else []
        allowed = ", ".join(_short(v) for v in values)
        return [(where, _clip(f"{_short(error.instance)} is not one of: {allowed}"))]
    if kind == "oneOf" and not error.context:
        return [(where, f"{_short(error.instance)} matches more than one allowed form (oneOf)")]
    if kind in ("oneOf", "anyOf") and error.context:
        types = [c.validator_value for c in error.context if c.validator == "type"]
        if len(types) == len(error.context):
            flat = [t for ts in types for t in (ts if isinstance(ts, list) else [ts])]
            expected = _expected(sorted(set(flat), key=flat.index))
            return [(where, f"expected {expected}, got {_json_type(error.instance)}")]
    message = error.message
    if kind not in ("pattern", "format"):
        message = message.replace(repr(error.instance), _short(error.instance))
    return [(where, _clip(message))]


def _explain(compiled: _Compiled, obj: Any) -> list[tuple[str, str]]:
    explained: list[tuple[str, str]] = []
    for error in compiled.explainer.iter_errors(obj):
        explained += _explain_one(error, compiled.document)
    return sorted(set(explained))


__all__ = [
    "ManifestDocument",
    "SchemaValidator",
    "format_path",
    "prepare_crd_schema",
]

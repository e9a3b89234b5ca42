"""Pure rewrites of JSON Schema documents before they are compiled.

Kubernetes and CRD schemas are written for the API server, not for a JSON Schema
compiler: the core schemas spread ``$ref`` across a shared ``_definitions.json``,
carry megabytes of descriptions, and CRD schemas leave the object root and
``metadata`` open. These functions turn one schema into a single self-contained,
annotation-free document that fastjsonschema compiles quickly and that rejects
unknown fields exactly where the API server would.

They walk schemas structurally (keyword by keyword), never textually: a CRD may well
have a property named ``description`` or ``$ref``, and that must survive.

Nothing here reads files or mutates its input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# Keywords whose value is a map of name -> schema.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
# Keywords whose value is one schema (or a boolean, for additionalProperties).
_SCHEMA_ONE = frozenset(
    {"additionalProperties", "additionalItems", "items", "not", "contains", "propertyNames"}
)
# Keywords whose value is a list of schemas.
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# Pure annotations: no effect on validation, but they bloat the generated code.
_ANNOTATIONS = frozenset({"description", "title", "example", "examples", "$comment"})

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"

SchemaVisitor = Callable[[dict[str, Any]], dict[str, Any]]


def map_schema(schema: Any, visit: SchemaVisitor) -> Any:
    """Rebuild ``schema`` bottom-up, calling ``visit`` on every (sub)schema object.

    ``visit`` receives a fresh dict whose subschemas are already rewritten, and
    returns the dict to use in its place.
    """
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: map_schema(sub, visit) for name, sub in value.items()}
        elif key in _SCHEMA_ONE:
            if isinstance(value, list):
                out[key] = [map_schema(sub, visit) for sub in value]
            else:
                out[key] = map_schema(value, visit)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [map_schema(sub, visit) for sub in value]
        else:
            out[key] = value
    return visit(out)


def strip_annotations(schema: Any) -> Any:
    """Drop descriptions, examples and ``x-kubernetes-*`` annotations that never validate.

    ``x-kubernetes-preserve-unknown-fields`` is kept: strictness depends on it.
    """

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value
            for key, value in node.items()
            if key not in _ANNOTATIONS
            and not (key.startswith("x-kubernetes-") and key != PRESERVE_UNKNOWN)
        }

    return map_schema(schema, visit)


DEPRECATED = "x-plantops-deprecated"
_DEPRECATED_TEXT = re.compile(r"^\s*deprecated\b", re.IGNORECASE)


def mark_deprecated(schema: Any) -> Any:
    """Keep the deprecation notes of properties as ``x-plantops-deprecated``.

    Descriptions are stripped before compiling, but "Deprecated: use X instead" is
    worth keeping: it lets a finding suggest the current field, not the old one.
    Validators ignore the keyword.
    """

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        props = node.get("properties")
        if isinstance(props, Mapping):
            marked: dict[str, Any] = {}
            for name, sub in props.items():
                text = sub.get("description") if isinstance(sub, Mapping) else None
                if isinstance(text, str) and _DEPRECATED_TEXT.match(text):
                    marked[name] = {**sub, DEPRECATED: text.strip().splitlines()[0][:200]}
                else:
                    marked[name] = sub
            node["properties"] = marked
        return node

    return map_schema(schema, visit)


def forbid_unknown_fields(schema: Any) -> Any:
    """Make every structural object schema reject fields it does not declare.

    This is what the API server does for a structural CRD (unknown fields are
    pruned, or rejected with strict field validation). An object that already
    says what to do with extra keys (``additionalProperties``) or that preserves
    unknown fields is left exactly as it is.
    """

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        if (
            "properties" in node
            and "additionalProperties" not in node
            and "patternProperties" not in node
            and not node.get(PRESERVE_UNKNOWN)
        ):
            node["additionalProperties"] = False
        return node

    return map_schema(schema, visit)


def allow_nullable(schema: Any) -> Any:
    """Turn OpenAPI's ``nullable: true`` into a JSON Schema type that admits null."""

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        if node.get("nullable") is True and "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            if "null" not in types:
                node["type"] = [*types, "null"]
        return node

    return map_schema(schema, visit)


def _ref_name(ref: str) -> str:
    """``/api/_definitions.json#/$defs/io.k8s.X`` -> ``io.k8s.X``."""
    return ref.rsplit("/", 1)[-1]


def inline_definitions(root: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``root`` as one document holding every definition it reaches.

    Every ``$ref`` (local or into the shared definitions file) is rewritten to
    ``#/$defs/<name>`` and exactly the reachable definitions are copied under
    ``$defs``, so a compiler never has to resolve a remote reference.
    Raises ``KeyError`` naming the definition when a reference dangles.
    """
    needed: list[str] = []
    seen: set[str] = set()

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = _ref_name(ref)
            node["$ref"] = f"#/$defs/{name}"
            if name not in seen:
                seen.add(name)
                needed.append(name)
        return node

    document: dict[str, Any] = map_schema(root, visit)
    existing = document.pop("$defs", {})
    document.pop("$id", None)
    document.pop("$schema", None)
    defs: dict[str, Any] = {}
    while needed:
        name = needed.pop()
        if name in defs:
            continue
        source = existing.get(name, definitions.get(name))
        if source is None:
            raise KeyError(name)
        defs[name] = map_schema(source, visit)
    if defs:
        document["$defs"] = dict(sorted(defs.items()))
    return document


def with_metadata_schema(
    crd_schema: Mapping[str, Any], object_meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate a custom resource's ``metadata`` as the API server does: as ObjectMeta.

    CRD schemas leave ``metadata`` as a bare ``type: object``. ``object_meta`` is a
    self-contained ObjectMeta document (its own ``$defs``); those definitions are
    merged into the root so the references keep resolving.
    """
    document = dict(crd_schema)
    properties = dict(document.get("properties", {}))
    if "metadata" not in properties:
        return document
    meta = dict(object_meta)
    meta_defs = meta.pop("$defs", {})
    properties["metadata"] = meta
    document["properties"] = properties
    if meta_defs:
        document["$defs"] = {**meta_defs, **document.get("$defs", {})}
    return document


def declared_properties(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """The properties a (sub)schema declares (name -> schema), following ``$ref``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = root.get("$defs", {}).get(_ref_name(ref), {})
        return declared_properties(target, root) if target is not schema else {}
    props = schema.get("properties", {})
    return props if isinstance(props, Mapping) else {}


def known_properties(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    """The property names a (sub)schema declares, following ``$ref``."""
    return sorted(declared_properties(schema, root))


_INLINE_FLAGS = re.compile(r"\(\?([imsx]+)\)")


def _group_end(pattern: str, start: int) -> int:
    """Index of the ``)`` closing the group that encloses ``start`` (or len(pattern))."""
    depth = 0
    in_class = False
    i = start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return len(pattern)


def translate_go_regex(pattern: str) -> str | None:
    """Rewrite a Go (RE2) pattern for Python's ``re``; ``None`` if it cannot be.

    RE2 lets ``(?i)`` appear mid-pattern, scoped to the rest of its group; Python
    only allows global flags at the start, so each becomes a scoped ``(?i:...)``.
    """
    try:
        re.compile(pattern)
        return pattern
    except re.error:
        pass
    result = pattern
    while True:
        match = next((m for m in _INLINE_FLAGS.finditer(result) if m.start() > 0), None)
        if match is None:
            break
        end = _group_end(result, match.end())
        result = (
            f"{result[: match.start()]}(?{match.group(1)}:{result[match.end() : end]})"
            f"{result[end:]}"
        )
    try:
        re.compile(result)
    except re.error:
        return None
    return result


def python_patterns(schema: Any) -> Any:
    """Make every ``pattern`` compile under Python's ``re``.

    A pattern that cannot be translated is dropped: a missed check is better than
    rejecting valid objects with a pattern we misread.
    """

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            translated = translate_go_regex(pattern)
            if translated is None:
                del node["pattern"]
            else:
                node["pattern"] = translated
        return node

    return map_schema(schema, visit)


__all__ = [
    "DEPRECATED",
    "PRESERVE_UNKNOWN",
    "allow_nullable",
    "declared_properties",
    "forbid_unknown_fields",
    "inline_definitions",
    "known_properties",
    "map_schema",
    "mark_deprecated",
    "python_patterns",
    "strip_annotations",
    "translate_go_regex",
    "with_metadata_schema",
]


_TYPE_ONLY = frozenset({"type"})


def _alternative_types(alternatives: Any) -> list[set[str]] | None:
    """The type sets of ``[{"type": ...}, ...]``; None unless every alternative is a bare
    ``type`` constraint."""
    if not isinstance(alternatives, list) or len(alternatives) < 2:
        return None
    sets: list[set[str]] = []
    for alt in alternatives:
        if not isinstance(alt, Mapping) or set(alt) != _TYPE_ONLY:
            return None
        t = alt["type"]
        types = [t] if isinstance(t, str) else t
        if not isinstance(types, list) or not all(isinstance(x, str) for x in types):
            return None
        sets.append(set(types))
    return sets


def merge_type_alternatives(schema: Any) -> Any:
    """Turn ``anyOf``/``oneOf`` lists of bare type constraints into one ``type`` list.

    Kubernetes writes int-or-string as ``anyOf: [{type: integer}, {type: string}]`` and
    kubernetes-validate as ``oneOf: [{type: [string, null]}, {type: [number, null]}]``.
    Validating those as written costs an exception per failed alternative, hundreds of
    microseconds each in the generated code; a type list gives the same verdicts with a
    single ``isinstance``. ``anyOf`` is the union of the types. ``oneOf`` admits a value
    of exactly one alternative, so its types are those named by exactly one alternative —
    rewritten only when no ``integer`` and ``number`` sit in different alternatives
    (an integer matches both, which a type list cannot say).
    """

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        if "type" in node:
            return node
        for keyword in ("anyOf", "oneOf"):
            sets = _alternative_types(node.get(keyword))
            if sets is None:
                continue
            if keyword == "anyOf":
                allowed = set().union(*sets)
            else:
                if any(
                    "integer" in a and "number" in b
                    for i, a in enumerate(sets)
                    for j, b in enumerate(sets)
                    if i != j
                ):
                    continue
                allowed = {t for t in set().union(*sets) if sum(t in s for s in sets) == 1}
                if not allowed:
                    continue
            merged = {k: v for k, v in node.items() if k != keyword}
            merged["type"] = sorted(allowed)
            return merged
        return node

    return map_schema(schema, visit)

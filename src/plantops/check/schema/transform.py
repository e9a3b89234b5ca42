"""Pure rewrites of JSON Schema documents before they are compiled.

Kubernetes and CRD schemas are written for the API server, not for a JSON Schema
validator: the core schemas spread ``$ref`` across a shared ``_definitions.json``
and carry megabytes of descriptions; CRD schemas leave the object root and
``metadata`` open and say "int or string" and "nullable" in OpenAPI extensions.
These functions turn one schema into a single self-contained, annotation-free
document that rejects what the API server would reject — no more, no less. Each
one is about verdicts (strictness); none exists to please a particular engine.

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
# Pure annotations: no effect on validation, only on the size of every compiled schema.
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


def strip_node(node: dict[str, Any]) -> dict[str, Any]:
    """One node of ``strip_annotations`` (a visitor for ``map_schema``)."""
    return {
        key: value
        for key, value in node.items()
        if key not in _ANNOTATIONS
        and not (key.startswith("x-kubernetes-") and key != PRESERVE_UNKNOWN)
    }


def strip_annotations(schema: Any) -> Any:
    """Drop descriptions, examples and ``x-kubernetes-*`` annotations that never validate.

    ``x-kubernetes-preserve-unknown-fields`` is kept: strictness depends on it.
    """
    return map_schema(schema, strip_node)


DEPRECATED = "x-plantops-deprecated"
_DEPRECATED_TEXT = re.compile(r"^\s*deprecated\b", re.IGNORECASE)


def _mark_deprecated(node: dict[str, Any]) -> dict[str, Any]:
    text = node.get("description")
    if isinstance(text, str) and _DEPRECATED_TEXT.match(text):
        node[DEPRECATED] = text.strip().splitlines()[0][:200]
    return node


def mark_deprecated(schema: Any) -> Any:
    """Keep a (sub)schema's deprecation note as ``x-plantops-deprecated``.

    Descriptions are stripped before compiling, but "Deprecated: use X instead" is
    worth keeping: it lets a finding suggest the current field, not the old one.
    Validators ignore the keyword.
    """
    return map_schema(schema, _mark_deprecated)


def _forbid_unknown(node: dict[str, Any]) -> dict[str, Any]:
    if (
        "properties" in node
        and "additionalProperties" not in node
        and "patternProperties" not in node
        and not node.get(PRESERVE_UNKNOWN)
    ):
        node["additionalProperties"] = False
    return node


def forbid_unknown_fields(schema: Any) -> Any:
    """Make every structural object schema reject fields it does not declare.

    This is what the API server does for a structural CRD (unknown fields are
    pruned, or rejected with strict field validation). An object that already
    says what to do with extra keys (``additionalProperties``) or that preserves
    unknown fields is left exactly as it is.
    """
    return map_schema(schema, _forbid_unknown)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("nullable") is True and "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if "null" not in types:
            node["type"] = [*types, "null"]
    return node


def allow_nullable(schema: Any) -> Any:
    """Turn OpenAPI's ``nullable: true`` into a JSON Schema type that admits null."""
    return map_schema(schema, _nullable)


INT_OR_STRING = "x-kubernetes-int-or-string"


def int_or_string(schema: Any) -> Any:
    """Give ``x-kubernetes-int-or-string: true`` its meaning where a schema states only the
    extension. The API server admits an integer or a string there (apiextensions/v1
    types_jsonschema.go, JSONSchemaProps.XIntOrString: "this value is either an integer
    or a string"; an empty type is allowed beside it). Once annotations are stripped, an
    extension-only node would otherwise accept any value.
    """

    return map_schema(schema, _int_or_string)


def _int_or_string(node: dict[str, Any]) -> dict[str, Any]:
    if node.get(INT_OR_STRING) is True and not {"type", "anyOf", "oneOf"} & node.keys():
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return node


def strict_crd_schema(raw: Any) -> Any:
    """Every CRD rewrite above in one walk: nullable, unknown fields refused, int-or-string,
    deprecation notes kept, annotations stripped (each looks at its own node only, so one
    bottom-up pass gives what the chain of passes gives)."""

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        return strip_node(_mark_deprecated(_int_or_string(_forbid_unknown(_nullable(node)))))

    return map_schema(raw, visit)


NAME_RULE = "x-plantops-name"
"""Marks the name rule's subschemas (for messages); validators ignore the keyword."""

# Object names as the API server validates them (k8s.io/apimachinery validation,
# pkg/apis/core/validation): most kinds take a DNS-1123 subdomain (NameIsDNSSubdomain);
# a Namespace a DNS-1123 label (ValidateNamespaceName); a Service a DNS-1035 label
# (ValidateServiceName); RBAC objects any path segment (ValidatePathSegmentName).
_SEGMENT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = (f"^{_SEGMENT}(\\.{_SEGMENT})*$", 253, "a DNS-1123 subdomain")
_NAME_RULES: dict[str, tuple[str, int, str]] = {
    "Namespace": (f"^{_SEGMENT}$", 63, "a DNS-1123 label"),
    "Service": ("^[a-z]([-a-z0-9]*[a-z0-9])?$", 63, "a DNS-1035 label (starts with a letter)"),
}
_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def name_rule_words(kind: str) -> tuple[int, str] | None:
    """(length limit, what a name must be) for ``kind``; None for path-segment names."""
    if kind in _PATH_SEGMENT_KINDS:
        return None
    _, limit, words = _NAME_RULES.get(kind, _SUBDOMAIN)
    return limit, words


def with_name_rule(document: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Check ``metadata.name`` as the API server checks a ``kind``'s name: present (or a
    ``generateName``), a string, and of the kind's form. Done in the schema, the check
    costs nothing on the hot path; ``NAME_RULE`` marks it for the messages."""
    if kind in _PATH_SEGMENT_KINDS:
        name: dict[str, Any] = {"pattern": "^[^/%]+$", "not": {"enum": [".", ".."]}}
    else:
        pattern, limit, _ = _NAME_RULES.get(kind, _SUBDOMAIN)
        name = {"pattern": pattern, "maxLength": limit}
    rule = {
        NAME_RULE: "required",
        "anyOf": [
            {"required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
            {"required": ["generateName"]},
        ],
        "properties": {"name": {NAME_RULE: kind, **name}},
    }
    out = dict(document)
    properties = dict(out.get("properties", {}))
    if "metadata" not in properties:
        return out
    properties["metadata"] = {"allOf": [properties["metadata"], rule]}
    out["properties"] = properties
    return out


def _ref_name(ref: str) -> str:
    """``/api/_definitions.json#/$defs/io.k8s.X`` -> ``io.k8s.X``."""
    return ref.rsplit("/", 1)[-1]


def inline_definitions(
    root: Mapping[str, Any],
    definitions: Mapping[str, Any],
    also: SchemaVisitor | None = None,
) -> dict[str, Any]:
    """Return ``root`` as one document holding every definition it reaches.

    Every ``$ref`` (local or into the shared definitions file) is rewritten to
    ``#/$defs/<name>`` and exactly the reachable definitions are copied under
    ``$defs``, so a compiler never has to resolve a remote reference.
    ``also`` is applied to every node in the same walk.
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
        return also(node) if also is not None else node

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


__all__ = [
    "DEPRECATED",
    "NAME_RULE",
    "PRESERVE_UNKNOWN",
    "allow_nullable",
    "declared_properties",
    "forbid_unknown_fields",
    "inline_definitions",
    "int_or_string",
    "map_schema",
    "mark_deprecated",
    "name_rule_words",
    "strict_crd_schema",
    "strip_annotations",
    "strip_node",
    "with_metadata_schema",
    "with_name_rule",
]

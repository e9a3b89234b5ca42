"""Differential tests: plantops' verdicts against kubernetes-validate and ``jsonschema``.

Objects are the example fleet's rendered objects, mutated by Hypothesis the way a
hand edit or a renderer bug would change them (a value of another type, a deleted
field, a misspelt or unknown field, a list where an object belongs). For every
mutant plantops (jsonschema-rs on the prepared documents) must say what
``kubernetes_validate.validate(..., strict=True)`` says for core kinds, and what the
pure-Python ``jsonschema`` says on the very same prepared document for every kind —
and the explaining pass must agree with the fast one.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import EXAMPLE
from tests.render.conftest import render_fleet

from plantops.check.schema import SchemaValidator

VERSION = "1.30"

# Identity and names are checked by plantops before the schema (more strictly than
# kubernetes-validate: names as the API server validates them), so they stay intact.
FIXED = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name")}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=2)
    | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    """One object of each (apiVersion, kind, file) of the example fleet, rendered."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    example = render_fleet(EXAMPLE)
    for _, path, obj in example.objects:
        seen.setdefault((obj["apiVersion"], obj["kind"], path.rsplit("/", 1)[-1]), obj)
    for path, obj in example.fleet_objects:
        seen.setdefault((obj["apiVersion"], obj["kind"], path.rsplit("/", 1)[-1]), obj)
    return tuple(seen[k] for k in sorted(seen))


def is_core(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return not group or "." not in group or group.endswith(".k8s.io")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix and prefix not in FIXED else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutants(draw: st.DrawFn, objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(objects)))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(_paths(obj)))
        *parents, last = path
        node: Any = obj
        for part in parents:
            node = node[part]
        how = draw(st.sampled_from(["value", "delete", "unknown", "typo", "wrap"]))
        if how == "value":
            node[last] = draw(VALUES)
        elif how == "delete":
            del node[last]
        elif how == "wrap":
            node[last] = [node[last]]
        elif isinstance(node[last], dict):
            key = draw(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8))
            if how == "typo" and node[last]:
                existing = draw(st.sampled_from(sorted(node[last], key=str)))
                key = f"{existing}s" if isinstance(existing, str) else key
            node[last][key] = draw(VALUES)
        if not _paths(obj):
            break
    return obj


def kubernetes_validate_verdict(obj: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    return SchemaValidator(VERSION)


def _python_verdict(validator: SchemaValidator, obj: dict[str, Any]) -> bool:
    compiled = validator._get(obj["apiVersion"], obj["kind"])
    assert compiled is not None
    return bool(jsonschema.Draft202012Validator(compiled.document).is_valid(obj))


def test_rendered_objects_cover_core_and_custom_kinds(validator: SchemaValidator) -> None:
    objects = rendered()
    assert sum(is_core(o) for o in objects) >= 10
    assert sum(not is_core(o) for o in objects) >= 5
    for obj in objects:  # the unmutated objects are valid for all three
        assert validator.validate(obj) == [], obj["kind"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_verdicts_as_kubernetes_validate_on_mutated_core_objects(
    validator: SchemaValidator, data: st.DataObject
) -> None:
    obj = data.draw(mutants(tuple(o for o in rendered() if is_core(o))))
    ours = validator.is_valid(obj)
    assert ours == kubernetes_validate_verdict(obj), obj
    findings = validator.validate(obj)
    assert (not findings) == ours, findings
    assert all(f.message for f in findings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_verdicts_as_jsonschema_on_mutated_objects(
    validator: SchemaValidator, data: st.DataObject
) -> None:
    obj = data.draw(mutants(rendered()))
    ours = validator.is_valid(obj)
    assert ours == _python_verdict(validator, obj), obj
    findings = validator.validate(obj)
    assert (not findings) == ours, findings

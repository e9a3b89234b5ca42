"""The schema rewrites that make compiled validators fast must not change a verdict."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plantops.check.schema.transform import merge_type_alternatives
from plantops.check.schema.validator import _without_locals

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)

ALTERNATIVES: list[dict[str, Any]] = [
    {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": "^[0-9]+(m|Mi|Gi)?$",
    },
    {"oneOf": [{"type": ["string", "null"]}, {"type": ["number", "null"]}]},
    {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
    {"oneOf": [{"type": "string"}, {"type": ["string", "boolean"]}]},
    # not rewritten: an integer matches both alternatives, a type list cannot say that
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    # not rewritten: an alternative with more than a type
    {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]},
    {"type": "object", "properties": {"q": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}},
]


@pytest.mark.parametrize("schema", ALTERNATIVES, ids=lambda s: str(s)[:60])
@given(value=JSON_VALUES)
def test_merged_type_alternatives_give_the_same_verdicts(
    schema: dict[str, Any], value: Any
) -> None:
    original = jsonschema.Draft202012Validator(schema).is_valid(value)
    merged = merge_type_alternatives(schema)
    assert jsonschema.Draft202012Validator(merged).is_valid(value) == original
    nested = {"q": value}
    assert jsonschema.Draft202012Validator(merged).is_valid(nested) == (
        jsonschema.Draft202012Validator(schema).is_valid(nested)
    )


def test_int_or_string_becomes_one_type_list() -> None:
    schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": "^a"}
    assert merge_type_alternatives(schema) == {"pattern": "^a", "type": ["integer", "string"]}
    kept = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert merge_type_alternatives(kept) == kept


def test_generated_code_names_nested_keys_without_locals() -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    source = fastjsonschema.compile_to_code(schema, detailed_exceptions=False)
    assert ".format(**locals())" in source
    rewritten = _without_locals(source)
    assert "locals()" not in rewritten
    namespace: dict[str, Any] = {}
    exec(compile(rewritten, "<test>", "exec"), namespace)
    validate = namespace["validate"]
    validate({"labels": {"a": "b"}})
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as caught:
        validate({"labels": {"app.kubernetes.io/name": 3}})
    assert caught.value.message == "data.labels.app.kubernetes.io/name must be string"

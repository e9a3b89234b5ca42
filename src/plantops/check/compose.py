"""Validate a rendered compose document against the Compose specification's JSON Schema.

The schema ships with plantops (offline); it is compiled once per process by
jsonschema-rs, the engine that checks Kubernetes objects too.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs


@cache
def _compiled() -> jsonschema_rs.Validator:
    text = resources.files("plantops.check.schema").joinpath("compose/compose-spec.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    # The spec declares draft 7 in $schema; formats are not asserted, as before.
    return jsonschema_rs.validator_for(schema, validate_formats=False)


def validate_compose(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(path, message)]`` for every violation; ``[]`` when the document is valid."""
    validator = _compiled()
    if validator.is_valid(doc):
        return []
    out = []
    for err in validator.iter_errors(doc):
        path = ".".join(str(p) for p in err.instance_path)
        out.append((path, err.message))
    return sorted(out)

"""Validate a compose document against the Compose specification's JSON Schema.

The schema ships with plantops (offline); it is compiled once per process.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("plantops.render.compose").joinpath("schema/compose-spec.json")
    data: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return data


@cache
def _compiled() -> Any:
    return fastjsonschema.compile(_schema(), use_formats=False)


def validate_compose(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(path, message)]`` for every violation; ``[]`` when the document is valid."""
    try:
        _compiled()(doc)
        return []
    except fastjsonschema.JsonSchemaValueException:
        pass
    import jsonschema  # only to explain a failure: its import is not cheap

    validator = jsonschema.Draft7Validator(_schema())
    out = []
    for err in validator.iter_errors(doc):
        path = ".".join(str(p) for p in err.absolute_path)
        out.append((path, err.message))
    return sorted(out)

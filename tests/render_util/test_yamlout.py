"""The fast YAML emitter reads back, through PyYAML's safe loader, as exactly what went in."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.render.yamlout import emit_yaml

tricky = st.sampled_from(
    [
        "yes",
        "No",
        "on",
        "off",
        "null",
        "~",
        "true",
        "1e3",
        "0x1F",
        "0o17",
        "012",
        "1_000",
        "1:20",
        ".inf",
        "-.5",
        "17.0",
        "",
        " lead",
        "trail ",
        "a: b",
        "a #b",
        "#x",
        "- x",
        "*alias",
        "&anchor",
        "!tag",
        "%dir",
        "@at",
        "`tick",
        "{x}",
        "[x]",
        "x,y",
        "'q'",
        '"q"',
        "multi\nline\n",
        "multi\nline",
        "two\n\n",
        "\nlead newline",
        "tab\there",
        "é ü 字",
        "^%d$",
        "/web/database",
        "sha256:abc",
        "10.0.0.0/8",
        "*",
        "-",
        "?",
        "a\u2028b",
        "end:",
        "k8s.io/name",
        "0 0 * * * *",
        "=",
        "<<",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    tricky,
)
keys = st.one_of(st.text(), tricky)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(keys, data, max_size=6))
def test_round_trip(doc: dict[str, Any]) -> None:
    assert yaml.safe_load(emit_yaml(doc)) == (doc or {})


def test_block_literal_for_config_files() -> None:
    text = emit_yaml({"data": {"odoo.conf": "[options]\nlist_db = False\n"}})
    assert text == "data:\n  odoo.conf: |\n    [options]\n    list_db = False\n"


def test_quotes_what_would_change_type() -> None:
    assert emit_yaml({"v": "17.0", "b": "yes", "n": "null"}) == 'v: "17.0"\nb: "yes"\nn: "null"\n'

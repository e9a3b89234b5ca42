"""The fast YAML emitter reads back, through PyYAML's safe loader, as exactly what went in."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict, UserDict
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.render import yamlout
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


# Exact output, written out by hand from the emitter's behaviour: what an exact-str scalar
# looks like as a key or as a one-line value.
ONE_LINE = {
    **{plain: plain for plain in ["a", "b", "c", "d", "e", "f", "g", "h", "k", "n", "x", "name"]},
    "yes": '"yes"',
    "No": '"No"',
    "on": '"on"',
    "off": '"off"',
    "null": '"null"',
    "~": '"~"',
    "true": '"true"',
    "False": '"False"',
    "y": "y",
    "NaN": "NaN",
    ".NaN": '".NaN"',
    "1e3": "1e3",
    "0x1F": '"0x1F"',
    "0o17": "0o17",
    "012": '"012"',
    "1_000": '"1_000"',
    "1:20": '"1:20"',
    ".inf": '".inf"',
    "-.5": '"-.5"',
    "+1": '"+1"',
    "17.0": '"17.0"',
    "2026-11-22": '"2026-11-22"',
    "2026-11-22T10:00:00Z": '"2026-11-22T10:00:00Z"',
    "": '""',
    " lead": '" lead"',
    "trail ": '"trail "',
    "a: b": '"a: b"',
    "cpu: 2000m": '"cpu: 2000m"',
    "a:b": "a:b",
    "end:": '"end:"',
    "a #b": '"a #b"',
    "a#b": '"a#b"',
    "#x": '"#x"',
    "- x": '"- x"',
    "-": '"-"',
    "?": '"?"',
    "<<": '"<<"',
    "*alias": '"*alias"',
    "!tag": '"!tag"',
    "{x}": '"{x}"',
    "[x]": '"[x]"',
    "x,y": '"x,y"',
    "'q'": "\"'q'\"",
    '"q"': '"\\"q\\""',
    "back\\slash": '"back\\\\slash"',
    "tab\there": '"tab\\there"',
    "a\u2028b": '"a\\u2028b"',
    "a\x85b": '"a\\u0085b"',
    "é ü 字": '"é ü 字"',
    "k8s.io/name": "k8s.io/name",
    "sha256:abc": "sha256:abc",
    "10.0.0.0/8": "10.0.0.0/8",
    "0 0 * * *": "0 0 * * *",
    "8Gi": "8Gi",
}
# Strings with a newline: (text as a key, literal block header or None when the value is
# double-quoted like the key, the block's lines without their indentation).
MULTI_LINE: dict[str, tuple[str, str | None, list[str]]] = {
    "multi\nline\n": ('"multi\\nline\\n"', "|", ["multi", "line"]),
    "multi\nline": ('"multi\\nline"', "|-", ["multi", "line"]),
    "two\n\n": ('"two\\n\\n"', "|+", ["two", ""]),
    "two\n\n\n": ('"two\\n\\n\\n"', "|+", ["two", "", ""]),
    "a\n\nb\n": ('"a\\n\\nb\\n"', "|", ["a", "", "b"]),
    "x\n  indented\n": ('"x\\n  indented\\n"', "|", ["x", "  indented"]),
    "- item\n# not a comment\n": (
        '"- item\\n# not a comment\\n"',
        "|",
        ["- item", "# not a comment"],
    ),
    "é\n字\n": ('"é\\n字\\n"', "|", ["é", "字"]),
    "\nlead newline": ('"\\nlead newline"', None, []),
    "  indented\nx\n": ('"  indented\\nx\\n"', None, []),
    "trail \nx": ('"trail \\nx"', None, []),
    "tab\tx\ny": ('"tab\\tx\\ny"', None, []),
    "a\r\nb\n": ('"a\\r\\nb\\n"', None, []),
    "a\u2028b\nc": ('"a\\u2028b\\nc"', None, []),
    "\n": ('"\\n"', None, []),
    "\n\n": ('"\\n\\n"', None, []),
    "x\n": ('"x\\n"', "|", ["x"]),
    "x \n": ('"x \\n"', None, []),
}
FLOATS = {
    1.0: "1.0",
    3.14: "3.14",
    -0.0: "-0.0",
    1e20: "1.0e+20",
    1.5e-7: "1.5e-07",
    math.inf: ".inf",
    -math.inf: "-.inf",
}


def _key_text(k: Any) -> str:
    if type(k) is str:
        return ONE_LINE[k] if k in ONE_LINE else MULTI_LINE[k][0]
    return _scalar_text(k, "")


def _scalar_text(v: Any, pad: str) -> str:
    """A scalar as it follows ``key: `` or ``- ``; ``pad`` indents a literal block's lines."""
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int:
        return str(v)
    if type(v) is float:
        return FLOATS[v]
    if v in ONE_LINE:
        return ONE_LINE[v]
    key_text, header, lines = MULTI_LINE[v]
    if header is None:
        return key_text
    return "\n".join([header] + [pad + line if line else "" for line in lines])


def _reference(obj: Any, indent: str = "") -> list[str]:
    """A plain re-statement of the block layout: lines without their newline."""
    if isinstance(obj, dict):
        lines: list[str] = []
        for k, v in obj.items():
            key = f"{indent}{_key_text(k)}:"
            if isinstance(v, dict | list) and not v:
                lines.append(f"{key} {'{}' if isinstance(v, dict) else '[]'}")
            elif isinstance(v, dict):
                lines += [key, *_reference(v, indent + "  ")]
            elif isinstance(v, list):
                lines += [key, *_reference(v, indent)]
            else:
                lines.append(f"{key} {_scalar_text(v, indent + '  ')}")
        return lines
    lines = []
    for item in obj:
        if isinstance(item, dict | list) and not item:
            lines.append(f"{indent}- {'{}' if isinstance(item, dict) else '[]'}")
        elif isinstance(item, dict | list):
            first, *rest = _reference(item, indent + "  ")
            lines += [f"{indent}- {first[len(indent) + 2 :]}", *rest]
        else:
            lines.append(f"{indent}- {_scalar_text(item, indent + '    ')}")
    return lines


def reference_yaml(obj: dict[Any, Any] | list[Any]) -> str:
    if not obj:
        return "{}\n" if isinstance(obj, dict) else "[]\n"
    return "\n".join(_reference(obj)) + "\n"


tricky_text = st.sampled_from(sorted(ONE_LINE) + sorted(MULTI_LINE))
tricky_leaf = st.one_of(
    tricky_text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from(sorted(FLOATS)),
    st.builds(dict),
    st.builds(list),
)
tricky_data = st.recursive(
    tricky_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(tricky_text, inner, max_size=4)
    ),
    max_leaves=30,
)
tricky_docs = st.one_of(
    st.dictionaries(tricky_text, tricky_data, max_size=6), st.lists(tricky_data, max_size=6)
)


@settings(max_examples=400, deadline=None)
@given(doc=tricky_docs)
def test_tricky_scalars_match_reference_and_round_trip(doc: dict[str, Any] | list[Any]) -> None:
    text = emit_yaml(doc)
    assert text == reference_yaml(doc)
    assert yaml.safe_load(text) == (doc or ({} if isinstance(doc, dict) else []))


@contextmanager
def _cache_limit(limit: int) -> Iterator[None]:
    saved = yamlout._CACHE_LIMIT
    yamlout._CACHE_LIMIT = limit
    try:
        yield
    finally:
        yamlout._CACHE_LIMIT = saved


@settings(max_examples=100, deadline=None)
@given(doc=tricky_docs)
def test_same_output_when_the_memos_overflow(doc: dict[str, Any] | list[Any]) -> None:
    with _cache_limit(2):
        assert emit_yaml(doc) == reference_yaml(doc)


def test_exact_layout_of_empty_and_nested_containers() -> None:
    doc = {
        "a": [[], {}, [[1, []]], [{}], {"b": {}, "c": []}],
        "d": {"e": {}},
        "f": [[{"g": 1, "h": [2]}]],
    }
    assert emit_yaml(doc) == (
        "a:\n"
        "- []\n"
        "- {}\n"
        "- - - 1\n"
        "    - []\n"
        "- - {}\n"
        "- b: {}\n"
        "  c: []\n"
        "d:\n"
        "  e: {}\n"
        "f:\n"
        "- - g: 1\n"
        "    h:\n"
        "    - 2\n"
    )
    assert emit_yaml(doc) == reference_yaml(doc)
    assert emit_yaml([[{}]]) == "- - {}\n"


def test_exact_layout_of_a_pod_like_object() -> None:
    doc = {
        "containers": [
            {"name": "x", "args": ["--a", "yes", "17.0"], "env": [{"name": "A", "value": "1"}]}
        ],
        "data": {"conf": "a\nb\n"},
        "items": [{"script": "x\ny"}, "a\n\nb\n"],
    }
    assert emit_yaml(doc) == (
        "containers:\n"
        "- name: x\n"
        "  args:\n"
        '  - "--a"\n'
        '  - "yes"\n'
        '  - "17.0"\n'
        "  env:\n"
        "  - name: A\n"
        '    value: "1"\n'
        "data:\n"
        "  conf: |\n"
        "    a\n"
        "    b\n"
        "items:\n"
        "- script: |-\n"
        "    x\n"
        "    y\n"
        "- |\n"
        "    a\n"
        "\n"
        "    b\n"
    )


def test_top_level_scalars_and_non_string_keys() -> None:
    assert emit_yaml("x") == "x\n"
    assert emit_yaml("a\nb\n") == "|\n  a\n  b\n"
    assert emit_yaml(None) == "null\n"
    assert emit_yaml(1.5) == "1.5\n"
    assert emit_yaml([]) == "[]\n"
    assert emit_yaml({}) == "{}\n"
    assert emit_yaml({1: "a", None: "b", False: "c", 2.5: "d", "": "e"}) == (
        '1: a\nnull: b\nfalse: c\n2.5: d\n"": e\n'
    )


def test_deep_nesting() -> None:
    doc: Any = "multi\nline\n"
    for depth in range(80):
        doc = {"k": doc, "n": depth} if depth % 3 else [doc, {"x": "yes"}]
    assert emit_yaml(doc) == reference_yaml(doc)
    assert yaml.safe_load(emit_yaml(doc)) == doc


class _Color(enum.IntEnum):
    RED = 1


class _Str(str):
    __slots__ = ()


class _List(list[Any]):
    pass


def test_other_mappings_and_subclasses_emit_like_the_plain_types() -> None:
    plain = {"a": {"b": [1, "x"], "c": {}}, "d": [], "e": [{"f": "yes"}], "g": "yes"}
    other = OrderedDict(
        a=MappingProxyType({"b": _List([_Color.RED, _Str("x")]), "c": MappingProxyType({})}),
        d=_List(),
        e=[UserDict({"f": _Str("yes")})],
        g=_Str("yes"),
    )
    assert emit_yaml(other) == emit_yaml(plain)
    assert emit_yaml(_List([other])) == emit_yaml([plain])
    assert emit_yaml(MappingProxyType({})) == "{}\n"
    assert emit_yaml(_List()) == "[]\n"


@pytest.mark.parametrize("bad", [(1,), {1, 2}, b"x", {"k": [1, (2,)]}, {(1,): 2}, [{"a": 1j}]])
def test_unsupported_types_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"^cannot emit (tuple|set|bytes|complex) as YAML$"):
        emit_yaml(bad)


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ({"x\n": 1}, '"x\\n": 1\n'),
        ({"A\n": []}, '"A\\n": []\n'),
        ({"k": "x \n"}, 'k: "x \\n"\n'),
        (["a b \n"], '- "a b \\n"\n'),
    ],
)
def test_a_final_newline_is_never_plain(doc: Any, text: str) -> None:
    # Regression: the plain-scalar pattern ended in $, which also matches before a final
    # newline, so these came out plain ("x\n: 1", "k: x \n") and did not read back.
    assert emit_yaml(doc) == text
    assert yaml.safe_load(text) == doc

"""Readers and the manifest parser never crash on hostile shapes: they read what they
understand or refuse with a located BadInput."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.addons.manifest import parse_manifest_text
from plantops.inputs import BadInput
from plantops.vulns.readers import READERS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
KEYS = [
    "Results", "Vulnerabilities", "ModifiedFindings", "CVSS", "PkgIdentifier", "matches",
    "ignoredMatches", "vulnerability", "artifact", "fix", "cvss", "metrics", "runs", "tool",
    "driver", "rules", "results", "properties", "tags", "message", "locations",
    "suppressions", "components", "vulnerabilities", "ratings", "affects", "analysis",
    "versions", "source", "metadata", "component", "appliedIgnoreRules",
]  # fmt: skip
shaped = st.recursive(
    json_values,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=40,
)


def test_reader_shapes_that_once_crashed() -> None:
    assert READERS["grype"](
        {"matches": [{"vulnerability": {"fix": {"versions": 5}}, "artifact": {}}]}, "g.json"
    )
    assert READERS["sarif"](
        {"runs": [{"tool": {"driver": {"rules": [{"id": "X", "properties": {"tags": 1}}]}},
                   "results": [{"ruleId": "X"}]}]},
        "s.sarif",
    )  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    doc=st.dictionaries(st.sampled_from(KEYS), shaped, max_size=6),
    fmt=st.sampled_from(sorted(READERS)),
)
def test_readers_never_crash(doc: dict[str, Any], fmt: str) -> None:
    for row in READERS[fmt](doc, "r.json"):
        assert isinstance(row.id, str) and row.severity in (
            "critical", "high", "medium", "low", "unknown",
        )  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200) | st.builds(repr, json_values))
def test_manifest_parser_only_refuses_with_badinput(text: str) -> None:
    try:
        parsed = parse_manifest_text(text, "m.py")
    except BadInput:
        return
    assert isinstance(parsed.data, dict)

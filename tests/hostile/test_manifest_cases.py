"""Hostile manifests through ``plantops validate-manifests``: every case is a located
finding (exit 1), a located error (exit 2) or all valid (exit 0) — in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile.harness import changed_outside, check, run_cli, snapshot

GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n"

NAMES = {
    "ok": ("ok-name", 0),
    "underscore": ("Bad_Name!", 1),
    "upper": ("Upper", 1),
    "dash-start": ("-a", 1),
    "dot-end": ("a.", 1),
    "too-long": ("a" * 254, 1),
    "unicode": ("'naïve'", 1),
    "space": ("'a b'", 1),
    "slash": ("a/b", 1),
    "traversal": ("../../etc", 1),
    "empty": ("''", 1),
    "number": ("123", 1),  # an int, not a string: the schema says string
    "null": ("null", 1),
}


@pytest.mark.parametrize("name,code", NAMES.values(), ids=list(NAMES))
def test_object_names(tmp_path: Path, name: str, code: int) -> None:
    (tmp_path / "m.yaml").write_text(GOOD.format(name=name))
    outcome = run_cli(["validate-manifests", "m.yaml"], cwd=tmp_path)
    check(outcome, allowed={code})
    if code == 1:
        assert "m.yaml:1 (document 0)" in outcome.output, outcome.output  # the document's line


DOCS: dict[str, tuple[str, set[int], str]] = {
    "kind-typo": ("apiVersion: v1\nKind: ConfigMap\nmetadata: {name: a}\n", {1, 2}, "kind"),
    "no-apiversion": ("kind: ConfigMap\nmetadata: {name: a}\n", {1, 2}, "apiVersion"),
    "unknown-field": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nbogus: 1\n",
        {1},
        "bogus",
    ),
    "data-not-string": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: 1}\n",
        {1},
        "m.yaml:",
    ),
    "metadata-list": ("apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n", {1}, "m.yaml:"),
    "scalar-doc": ("just text\n", {1, 2}, "m.yaml"),
    "list-doc": ("- a\n- b\n", {1, 2}, "m.yaml"),
    "unknown-kind": (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n",
        {1, 2},
        "Widget",
    ),
    "wrong-version": (
        "apiVersion: apps/v0\nkind: Deployment\nmetadata: {name: a}\n",
        {1, 2},
        "m.yaml",
    ),
    "bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
            for i in range(9)
        ),
        {2},
        "m.yaml:",
    ),
    "recursive-alias": ("a: &a [*a]\n", {2}, "m.yaml:"),
    "deep": ("a: " + "[" * 3000 + "]" * 3000 + "\n", {2}, "m.yaml:"),
    "bad-yaml": ("a: [\n", {2}, "m.yaml:"),
    "duplicate-key": (
        "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: a}\n",
        {1, 2},
        "m.yaml:",
    ),
    "bad-date": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: 2027-02-30}\n",
        {1, 2},
        "m.yaml:",
    ),
    "python-tag": ("a: !!python/object/apply:os.system [ls]\n", {1, 2}, "m.yaml:"),
    "empty-docs": ("---\n---\n", {0, 1, 2}, ""),
    "many-docs-mixed": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: B}\n",
        {1},
        "m.yaml:5",
    ),
}


@pytest.mark.parametrize("text,codes,expect", DOCS.values(), ids=list(DOCS))
def test_documents(tmp_path: Path, text: str, codes: set[int], expect: str) -> None:
    (tmp_path / "m.yaml").write_text(text)
    before = snapshot(tmp_path)
    outcome = run_cli(["validate-manifests", "m.yaml"], cwd=tmp_path)
    check(outcome, allowed=codes, expect=[expect])
    assert "all valid" not in outcome.output or outcome.exit_code == 0
    assert changed_outside(before, snapshot(tmp_path), []) == []


JSONS = {
    "deep-json": ("[" * 100_000 + "]" * 100_000, {2}),
    "bad-json": ('{"a": ', {2}),
    "json-scalar": ("1", {1, 2}),
    "json-object": ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}', {0}),
}


@pytest.mark.parametrize("text,codes", JSONS.values(), ids=list(JSONS))
def test_json(tmp_path: Path, text: str, codes: set[int]) -> None:
    (tmp_path / "m.json").write_text(text)
    outcome = run_cli(["validate-manifests", "m.json"], cwd=tmp_path)
    check(outcome, allowed=codes, expect=["m.json"] if codes != {0} else [])


SPECIAL = [
    "fifo",
    "link-loop",
    "dangling",
    "dir-named-yaml",
    "link-etc",
    "missing",
    "binary",
    "bad-utf8",
    "huge",
    "dev-zero",
]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files(tmp_path: Path, kind: str) -> None:
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "ok.yaml").write_text(GOOD.format(name="a"))
    target = d / "x.yaml"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "link-loop":
        target.symlink_to(target)
    elif kind == "dangling":
        target.symlink_to(d / "nope.yaml")
    elif kind == "dir-named-yaml":
        target.mkdir()
    elif kind == "link-etc":
        target.symlink_to("/etc/passwd")
    elif kind == "binary":
        target.write_bytes(bytes(range(256)) * 4)
    elif kind == "bad-utf8":
        target.write_bytes(b"a: \xff\xfe\n")
    elif kind == "huge":
        target.write_bytes(b"# " + b"x" * (17 * 1024 * 1024))
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    args = (
        ["validate-manifests", "manifests"]
        if kind != "missing"
        else ["validate-manifests", "manifests/x.yaml"]
    )
    before = snapshot(tmp_path)
    outcome = run_cli(args, cwd=tmp_path)
    # a directory named x.yaml is walked (it holds nothing): all valid is the right answer
    check(
        outcome,
        allowed={0} if kind == "dir-named-yaml" else {2},
        expect=["x.yaml"] if kind != "dir-named-yaml" else ["all valid"],
    )
    assert "root:" not in outcome.output  # /etc/passwd's content never echoed
    assert changed_outside(before, snapshot(tmp_path), []) == []

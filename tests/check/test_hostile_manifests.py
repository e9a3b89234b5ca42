"""Hostile manifests for ``validate-manifests``: bombs, deep JSON, special files, links,
typos that kubectl rejects, names the API server refuses. Each ends in seconds with a
located error (exit 2) or a finding (exit 1) — never a traceback, a hang or "all valid".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from plantops.cli.main import app

runner = CliRunner()
CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: 'b'\n"


def _run(*args: str) -> tuple[int, str]:
    started = time.monotonic()
    result = runner.invoke(app, ["validate-manifests", *args, "--kubernetes-version", "1.30"])
    assert time.monotonic() - started < 10, "took longer than 10 s"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_billion_laughs_manifest_is_refused_in_seconds(tmp_path: Path) -> None:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: x}", 'l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    code, output = _run(str(tmp_path / "bomb.yaml"))
    assert code == 2
    assert "bomb.yaml:" in output and "expands to over" in output


def test_json_nested_100000_deep_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    code, output = _run(str(tmp_path / "deep.json"))
    assert code == 2
    assert "deep.json:1:1: JSON nested deeper than" in output


def test_yaml_nested_thousands_deep_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    code, output = _run(str(tmp_path / "deep.yaml"))
    assert code == 2
    assert "deep.yaml:1:" in output and "nesting depth" in output


def test_fifo_in_a_tree_is_named_not_read(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(CONFIG_MAP.format(name="ok"))
    os.mkfifo(tmp_path / "pipe.yaml")
    code, output = _run(str(tmp_path))
    assert code == 2
    assert "pipe.yaml: is a named pipe (FIFO), not a regular file" in output


def test_link_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    outside = tmp_path / "secret.yaml"
    outside.write_text(CONFIG_MAP.format(name="secret"))
    (tree / "link.yaml").symlink_to(outside)
    code, output = _run(str(tree))
    assert code == 2
    assert "link.yaml" in output and "leads outside" in output


def test_self_link_is_named_a_loop(tmp_path: Path) -> None:
    link = tmp_path / "self.yaml"
    link.symlink_to(link)
    code, output = _run(str(tmp_path))
    assert code == 2
    assert "symbolic link loop" in output
    code, output = _run(str(link))
    assert code == 2
    assert "link loop" in output and "no such file" not in output


def test_kind_typo_is_a_finding_not_a_skip(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("apiVersion: v1\nKind: ConfigMap\nmetadata: {name: a}\n")
    code, output = _run(str(tmp_path / "typo.yaml"))
    assert code == 1, output
    assert "typo.yaml:1 (document 0)" in output
    assert "did you mean 'kind' instead of 'Kind'?" in output
    assert "all valid" not in output


def test_document_without_identity_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("metadata: {name: a}\ndata: {a: b}\n")
    code, output = _run(str(tmp_path / "x.yaml"))
    assert code == 1
    assert "apiVersion is missing" in output


@pytest.mark.parametrize(
    ("kind", "name", "ok"),
    [
        ("ConfigMap", "Bad_Name!", False),
        ("ConfigMap", "good.name-1", True),
        ("ConfigMap", "a" * 254, False),
        ("Namespace", "with.dot", False),
        ("Namespace", "plant-a", True),
        ("Service", "1abc", False),
        ("Service", "abc1", True),
    ],
)
def test_object_names_follow_the_api_server_rules(
    tmp_path: Path, kind: str, name: str, ok: bool
) -> None:
    body = {"ConfigMap": "data:\n  a: 'b'\n", "Namespace": "", "Service": "spec: {}\n"}[kind]
    doc = f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: '{name}'\n{body}"
    (tmp_path / "x.yaml").write_text(doc)
    code, output = _run(str(tmp_path / "x.yaml"))
    if ok:
        assert code == 0, output
    else:
        assert code == 1, output
        assert f"is not a valid {kind} name" in output


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: b}\ndata: {c: d}\n"
    )
    code, output = _run(str(tmp_path / "dup.yaml"))
    assert code == 2
    assert "dup.yaml:5:1: duplicate key 'data' (first at line 4)" in output


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_never_give_a_traceback(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(blob)
    code, _ = _run(str(path))
    assert code in (0, 1, 2)

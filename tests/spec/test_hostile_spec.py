"""Hostile fleet files: bombs, deep nesting, special files, links, misplaced plants.

Every case must end, within seconds, in a located ``SpecError`` (or a named warning) —
never a hang, a traceback or a silently different fleet.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantops.errors import SpecError
from plantops.inputs import SPEC_LIMITS
from plantops.spec import load_fleet
from tests.bounded import bounded
from tests.conftest import TODAY

BASE = Path(__file__).parent / "base"


def _fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    return root


_bounded = bounded


def _spec_error(root: Path) -> str:
    result = _bounded(lambda: load_fleet(root, today=TODAY))
    assert isinstance(result, SpecError), f"expected SpecError, got {result!r}"
    return str(result)


def _laughs(levels: int, fanout: int) -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, levels):
        refs = ", ".join([f"*lol{i - 1}"] * fanout)
        lines.append(f"lol{i}: &lol{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("target", ["fleet.yaml", "plants/alpha.yaml"])
def test_billion_laughs_is_refused_at_the_line_of_the_bomb(tmp_path: Path, target: str) -> None:
    root = _fleet(tmp_path)
    (root / target).write_text(_laughs(10, 10))  # 10**9 nodes once expanded
    message = _spec_error(root)
    assert f"{target}:" in message
    assert "expands to over" in message
    assert "YAML bomb" in message


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "plants" / "alpha.yaml").write_text("code: alpha\nloop: &a [1, *a]\n")
    message = _spec_error(root)
    assert "plants/alpha.yaml:2:7" in message
    assert "recursive alias" in message


@pytest.mark.parametrize("depth", [SPEC_LIMITS.max_depth + 1, 999, 5000, 100_000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    root = _fleet(tmp_path)
    (root / "plants" / "alpha.yaml").write_text("code: alpha\nx: " + "[" * depth + "]" * depth)
    message = _spec_error(root)
    assert "plants/alpha.yaml:" in message
    assert "nest" in message  # ours ("nested deeper than") or libyaml's ("nesting depth")


def test_block_nesting_is_refused(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    text = "code: alpha\n" + "".join(" " * i + "k:\n" for i in range(200)) + " " * 200 + "v\n"
    (root / "plants" / "alpha.yaml").write_text(text)
    assert "nested deeper than" in _spec_error(root)


def test_fifo_plant_file_never_blocks(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    os.mkfifo(root / "plants" / "gamma.yaml")
    message = _spec_error(root)
    assert "plants/gamma.yaml:1:1" in message
    assert "named pipe" in message


def test_fifo_fleet_yaml_never_blocks(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "fleet.yaml").unlink()
    os.mkfifo(root / "fleet.yaml")
    message = _spec_error(root)
    assert "fleet.yaml:1:1" in message
    assert "named pipe" in message


def test_link_out_of_the_fleet_is_not_followed(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    secret = tmp_path / "outside.yaml"
    secret.write_text("code: gamma\npassword: hunter2\n")
    (root / "plants" / "gamma.yaml").symlink_to(secret)
    message = _spec_error(root)
    assert "plants/gamma.yaml" in message
    assert "leads outside" in message
    assert "hunter2" not in message


def test_link_inside_the_fleet_is_followed(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "shared").mkdir()
    (root / "plants" / "beta.yaml").rename(root / "shared" / "beta.yaml")
    (root / "plants" / "beta.yaml").symlink_to(Path("..") / "shared" / "beta.yaml")
    loaded = load_fleet(root, today=TODAY)
    assert {p.code for p in loaded.plants} == {"alpha", "beta"}


@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_broken_links_are_named(tmp_path: Path, kind: str) -> None:
    root = _fleet(tmp_path)
    link = root / "plants" / "gamma.yaml"
    if kind == "loop":
        link.symlink_to(link)
        expected = "symbolic link loop"
    else:
        link.symlink_to(root / "plants" / "nowhere.yaml")
        expected = "dangling symbolic link"
    assert expected in _spec_error(root)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    with (root / "plants" / "alpha.yaml").open("a") as f:
        f.write("#" * (SPEC_LIMITS.max_bytes + 1))
    message = _spec_error(root)
    assert "over the limit" in message


def test_binary_file_is_located(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "plants" / "alpha.yaml").write_bytes(b"code: alpha\nname: \xff\xfe\n")
    message = _spec_error(root)
    assert "plants/alpha.yaml:2:7" in message
    assert "not UTF-8" in message


def test_plants_in_sub_folders_are_named(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "plants" / "archive").mkdir()
    (root / "plants" / "archive" / "old.yaml").write_text("code: old\n")
    (root / "plants" / "NOTES.md").write_text("notes\n")
    (root / "plants" / ".gitkeep").write_text("")
    loaded = load_fleet(root, today=TODAY)
    warnings = {w.file: w.message for w in loaded.warnings}
    assert "sub-folders (archive/old.yaml)" in warnings["plants/archive"]
    assert "not a plant file" in warnings["plants/NOTES.md"]
    assert "plants/.gitkeep" not in warnings


def test_fleet_path_that_is_a_file_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert "not a fleet directory" in _spec_error(tmp_path / "notes.txt")
    assert "no such directory" in _spec_error(tmp_path / "missing")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(levels=st.integers(2, 12), fanout=st.integers(2, 12))
def test_alias_expansion_is_bounded_or_loads(tmp_path: Path, levels: int, fanout: int) -> None:
    """Generated alias bombs: refused when the expansion is over the bound, and a small
    alias tree is an ordinary (unknown-key) problem — always in seconds."""
    root = tmp_path / f"f{levels}-{fanout}"
    if not root.exists():
        shutil.copytree(BASE, root)
    (root / "plants" / "alpha.yaml").write_text("code: alpha\n" + _laughs(levels, fanout))
    message = _spec_error(root)
    sizes = [1]  # lol0 is one scalar; lolN is a sequence of `fanout` copies of lol(N-1)
    for _ in range(1, levels):
        sizes.append(1 + fanout * sizes[-1])
    expanded = 1 + 2 + sum(1 + size for size in sizes)  # the mapping, `code: alpha`, keys
    if expanded > SPEC_LIMITS.max_nodes:
        assert "expands to over" in message
    else:
        assert "unknown key 'lol0'" in message

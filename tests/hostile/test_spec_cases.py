"""Hostile fleet specs through ``plantops validate``: generated mutations of every kind of
field, hostile texts, special files and links. Each ends in exit 0 or a located exit 2."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hostile.harness import changed_outside, check, run_cli, snapshot

BASE = Path(__file__).resolve().parent.parent / "spec" / "base"

# One value of every hostile shape; each replaces a field of every kind below.
VALUES: dict[str, Any] = {
    "null": None,
    "bool": True,
    "zero": 0,
    "negative": -1,
    "huge-int": 10**30,
    "float": 1.5,
    "empty": "",
    "long": "x" * 5000,
    "list": [],
    "map": {"a": 1},
    "bad-date": "2027-02-30",
    "traversal": "../../etc/passwd",
    "nul": "a\x00b",
}
PLANT_FIELDS = [
    ("code",),
    ("name",),
    ("region",),
    ("timezone",),
    ("users", "named"),
    ("users", "peak_concurrent"),
    ("profile", "integrations", 0, "criticality"),
    ("profile", "integrations", 0, "endpoint"),
    ("shifts", 0, "start"),
    ("shifts", 0, "days"),
]
FLEET_FIELDS = [
    ("organization", "slug"),
    ("odoo", "series"),
    ("environments", 0, "size_factor"),
    ("clusters", 0, "kubernetes_version"),
    ("clusters", 0, "node_pools", 0, "vcpu"),
    ("tiers", "critical", "rank"),
    ("tiers", "pilot", "backup", "retention", "daily"),
    ("pricing", "vcpu_hour"),
    ("defaults", "secret_store", "name"),
]
# (field, value) pairs that are valid input: the fleet stays valid. Everything else must
# be a located error — a wrong value read as something else is the "silent wrong answer".
ACCEPTED = {
    # (a region is no longer free text: one rule, and a cluster must be in it)
    (("organization", "slug"), "bad-date"),  # quoted by the dump: the text "2027-02-30"
    (("defaults", "secret_store", "name"), "bad-date"),
    (("tiers", "critical", "rank"), "huge-int"),
    (("tiers", "pilot", "backup", "retention", "daily"), "zero"),
    (("name",), "long"),
    (("name",), "traversal"),
    (("name",), "bad-date"),
    (("name",), "nul"),
    (("users", "named"), "huge-int"),
    (("pricing", "vcpu_hour"), "float"),
    (("pricing", "vcpu_hour"), "zero"),
    (("pricing", "vcpu_hour"), "huge-int"),
}


def fleet_copy(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    return root


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _validate(tmp_path: Path, root: Path, located_file: str | None, allowed: set[int]) -> str:
    before = snapshot(tmp_path)
    outcome = run_cli(["validate", str(root)], cwd=tmp_path)
    check(outcome, allowed=allowed, located=located_file is not None and 0 not in allowed)
    if outcome.exit_code == 2 and located_file is not None:
        assert located_file in outcome.output, outcome.output
    assert changed_outside(before, snapshot(tmp_path), []) == [], "validate wrote something"
    return outcome.output


@pytest.mark.parametrize("value", VALUES, ids=list(VALUES))
@pytest.mark.parametrize("field", PLANT_FIELDS, ids=[".".join(map(str, f)) for f in PLANT_FIELDS])
def test_plant_field_mutation(tmp_path: Path, field: tuple[Any, ...], value: str) -> None:
    root = fleet_copy(tmp_path)
    f = root / "plants" / "alpha.yaml"
    data = yaml.safe_load(f.read_text())
    _set(data, field, VALUES[value])
    f.write_text(yaml.safe_dump(data, allow_unicode=False))
    allowed = {0} if (field, value) in ACCEPTED else {2}
    _validate(tmp_path, root, "plants/alpha.yaml:", allowed)


@pytest.mark.parametrize("value", VALUES, ids=list(VALUES))
@pytest.mark.parametrize("field", FLEET_FIELDS, ids=[".".join(map(str, f)) for f in FLEET_FIELDS])
def test_fleet_field_mutation(tmp_path: Path, field: tuple[Any, ...], value: str) -> None:
    root = fleet_copy(tmp_path)
    f = root / "fleet.yaml"
    data = yaml.safe_load(f.read_text())
    _set(data, field, VALUES[value])
    f.write_text(yaml.safe_dump(data, allow_unicode=False))
    allowed = {0} if (field, value) in ACCEPTED else {2}
    _validate(tmp_path, root, "fleet.yaml:", allowed)


def _laughs(levels: int, fanout: int) -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, levels):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


# Whole-file texts: (id, bytes, text expected in the error).
TEXTS: list[tuple[str, bytes, str]] = [
    ("billion-laughs", _laughs(10, 10).encode(), "YAML bomb"),
    ("recursive-alias", b"code: alpha\nloop: &a [1, *a]\n", "recursive alias"),
    ("deep-flow", b"code: alpha\nx: " + b"[" * 5000 + b"]" * 5000, "nest"),
    ("deep-block", b"code: alpha\n" + b"".join(b" " * i + b"k:\n" for i in range(100)), "nest"),
    ("deep-map", b"x: " + b"{a: " * 3000 + b"1" + b"}" * 3000, "nest"),
    ("undefined-alias", b"code: *nope\n", "alias"),
    ("bad-utf8", b"code: alpha\nname: \xff\xfe\n", "UTF-8"),
    ("nul-byte", b"code: alpha\x00\n", ""),
    ("tab-indent", b"code: alpha\nusers:\n\tnamed: 1\n", ""),
    ("duplicate-key", b"code: alpha\ncode: beta\n", "duplicate key"),
    ("two-documents", b"code: alpha\n---\ncode: beta\n", "documents"),
    ("empty", b"", "empty"),
    ("comment-only", b"# nothing\n", "empty"),
    ("scalar", b"just a string\n", "mapping"),
    ("list", b"- a\n- b\n", "mapping"),
    ("python-tag", b"code: !!python/object:os.system ls\n", ""),
    ("binary-tag", b"code: !!binary '%%%'\n", ""),
    (
        "bad-date",
        b"code: alpha\noverrides:\n  - {target: tier, value: pilot, owner: a@b.c,"
        b" reason: x, expires: 2027-02-30}\n",
        "not a valid date",
    ),
    (
        "bad-time",
        b"code: alpha\nmaintenance:\n  - {name: m, kind: shutdown,"
        b" start: 2027-01-01T25:00:00, end: 2027-01-02T00:00:00}\n",
        "not a valid date",
    ),
    ("huge-file", b"code: alpha\n" + b"# " + b"x" * (5 * 1024 * 1024) + b"\n", "over the limit"),
    ("long-key", b"code: alpha\n" + b"k" * 100_000 + b": 1\n", ""),
    ("bool-as-int", b"code: alpha\nusers: {named: true, peak_concurrent: 1}\n", ""),
    ("merge-key", b"base: &b {named: 1}\nusers:\n  <<: *b\n", ""),
    ("unclosed-quote", b'code: "alpha\n', "invalid YAML"),
    ("unclosed-flow", b"code: [alpha\n", "invalid YAML"),
    ("set-tag", b"code: !!set {a, b}\n", ""),
    ("float-inf", b"code: alpha\nusers: {named: .inf, peak_concurrent: .nan}\n", ""),
    ("bom", b"\xef\xbb\xbfcode: [\n", ""),
]


@pytest.mark.parametrize("target", ["plants/alpha.yaml", "fleet.yaml"])
@pytest.mark.parametrize("data,expect", [t[1:] for t in TEXTS], ids=[t[0] for t in TEXTS])
def test_hostile_text(tmp_path: Path, target: str, data: bytes, expect: str) -> None:
    root = fleet_copy(tmp_path)
    (root / target).write_bytes(data)
    output = _validate(tmp_path, root, f"{target}:", {2})
    assert expect in output


def _special(root: Path, kind: str, outside: Path) -> None:
    target = root / "plants" / "gamma.yaml"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
        (target / "x.yaml").write_text("code: x\n")
    elif kind == "link-outside":
        target.symlink_to(outside)
    elif kind == "link-etc":
        target.symlink_to("/etc/passwd")
    elif kind == "link-loop":
        target.symlink_to(target)
    elif kind == "link-dangling":
        target.symlink_to(root / "nope.yaml")
    elif kind == "link-dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "fleet-fifo":
        (root / "fleet.yaml").unlink()
        os.mkfifo(root / "fleet.yaml")
    elif kind == "fleet-link-outside":
        (root / "fleet.yaml").unlink()
        (root / "fleet.yaml").symlink_to(outside)
    elif kind == "plants-is-file":
        shutil.rmtree(root / "plants")
        (root / "plants").write_text("code: x\n")
    elif kind == "subfolder-plant":
        (root / "plants" / "eu").mkdir()
        (root / "plants" / "eu" / "delta.yaml").write_text("code: delta\n")
    elif kind == "socket":
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(str(target))
        s.close()


# ignored, but named in a warning (exit 0): a folder is not read as a plant file
IGNORED_WITH_A_WARNING = {"directory", "subfolder-plant"}
SPECIALS = {
    "fifo": "named pipe",
    "directory": "warning: ignored: plant files are read only from plants/ itself",
    "link-outside": "leads outside",
    "link-etc": "leads outside",
    "link-loop": "loop",
    "link-dangling": "dangling",
    "link-dev-zero": "leads outside",
    "fleet-fifo": "named pipe",
    "fleet-link-outside": "leads outside",
    "plants-is-file": "plants",
    "subfolder-plant": "eu/delta.yaml",
    "socket": "gamma.yaml",
}


@pytest.mark.parametrize("kind", SPECIALS)
def test_special_files_and_links(tmp_path: Path, kind: str) -> None:
    root = fleet_copy(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text("code: gamma\npassword: hunter2\n")
    _special(root, kind, outside)
    before = snapshot(tmp_path)
    outcome = run_cli(["validate", str(root)], cwd=tmp_path)
    allowed = {0} if kind in IGNORED_WITH_A_WARNING else {2}
    check(outcome, allowed=allowed, expect=[SPECIALS[kind]])
    assert "hunter2" not in outcome.output
    assert changed_outside(before, snapshot(tmp_path), []) == []


def test_impossible_date_is_located_at_its_scalar(tmp_path: Path) -> None:
    """Issue #10, class 9: `expires: 2027-02-30` was "invalid YAML" at line 1."""
    root = fleet_copy(tmp_path)
    beta = root / "plants" / "beta.yaml"
    beta.write_text(beta.read_text().replace("expires: 2027-01-31", "expires: 2027-02-30"))
    line = next(i for i, t in enumerate(beta.read_text().splitlines(), 1) if "2027-02-30" in t)
    outcome = run_cli(["validate", str(root)], cwd=tmp_path)
    check(outcome, allowed={2})
    assert f"plants/beta.yaml:{line}:14: error: '2027-02-30' is not a valid date" in outcome.output
    assert "invalid YAML" not in outcome.output

"""Addon integrity: one small synthetic addons tree per check, hostile trees, the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plantops.addons import AddonsInputError, CheckOptions, check_addons_paths
from plantops.addons.checksum import addon_checksum, changed_addons
from plantops.addons.inputs import LicenseMatrix, load_license_matrix, parse_package_list
from plantops.addons.manifest import parse_manifest_text
from plantops.cli.main import app
from plantops.inputs import BadInput

runner = CliRunner()


def manifest_text(**fields: Any) -> str:
    """One key a line, so each finding's line is predictable (key k is on line k+2)."""
    lines = ["# License AGPL-3.0 or later", "{"]
    lines += [f"    {k!r}: {v!r}," for k, v in fields.items()]
    return "\n".join([*lines, "}", ""])


def addon(root: Path, name: str, **fields: Any) -> Path:
    fields.setdefault("name", name.title())
    fields.setdefault("version", "17.0.1.0.0")
    fields.setdefault("license", "AGPL-3")
    fields.setdefault("depends", ["base"])
    d = root / name
    d.mkdir(parents=True)
    (d / "__manifest__.py").write_text(manifest_text(**fields), encoding="utf-8")
    (d / "__init__.py").write_text("", encoding="utf-8")
    return d


def check(paths: list[Path], **kw: Any) -> list[tuple[str, str]]:
    report = check_addons_paths(paths, CheckOptions(series=kw.pop("series", "17.0"), **kw))
    return [(f.code, f.addon) for f in report.findings]


def findings(paths: list[Path], **kw: Any) -> Any:
    return check_addons_paths(paths, CheckOptions(series=kw.pop("series", "17.0"), **kw)).findings


def test_clean_tree_has_no_findings(tmp_path: Path) -> None:
    addon(tmp_path, "a", depends=["mrp", "b"])
    addon(tmp_path, "b", depends=["stock"])
    assert check([tmp_path]) == []


def test_missing_dependency_with_chain_and_line(tmp_path: Path) -> None:
    addon(tmp_path, "top", depends=["mid"])
    (tmp_path / "mid").mkdir()
    (tmp_path / "mid" / "__manifest__.py").write_text(
        "{\n    'name': 'Mid',\n    'version': '17.0.1.0.0',\n    'license': 'AGPL-3',\n"
        "    'depends': [\n        'base',\n        'nowhere',\n    ],\n}\n"
    )
    (f,) = findings([tmp_path])
    assert f.code == "missing-dependency" and f.addon == "mid"
    assert f.chain == ("top", "mid", "nowhere")
    assert f.file.endswith("mid/__manifest__.py") and f.line == 7  # the line naming it


def test_dependency_cycle(tmp_path: Path) -> None:
    addon(tmp_path, "a", depends=["b"])
    addon(tmp_path, "b", depends=["c"])
    addon(tmp_path, "c", depends=["a"])
    addon(tmp_path, "d", depends=["d"])
    got = [f for f in findings([tmp_path]) if f.code == "dependency-cycle"]
    assert [f.chain for f in got] == [("a", "b", "c", "a"), ("d", "d")]


def test_shadowing_first_path_wins(tmp_path: Path) -> None:
    addon(tmp_path / "p1", "dup")
    addon(tmp_path / "p2", "dup", version="17.0.2.0.0")
    (f,) = findings([tmp_path / "p1", tmp_path / "p2"])
    assert f.code == "shadowed" and "p2/dup" in f.file and "p1/dup" in f.message


def test_enterprise_addon_on_ce_but_not_on_ee(tmp_path: Path) -> None:
    addon(tmp_path, "qc", depends=["mrp_workorder"])  # Enterprise in 17.0
    assert check([tmp_path], edition="ce") == [("enterprise-on-ce", "qc")]
    assert check([tmp_path], edition="ee") == []


def test_license_conflict_transitive_and_configurable(tmp_path: Path) -> None:
    addon(tmp_path, "prop", license="OPL-1", depends=["lgpl"])
    addon(tmp_path, "lgpl", license="LGPL-3", depends=["agpl"])
    addon(tmp_path, "agpl", license="AGPL-3")
    (f,) = findings([tmp_path])
    assert f.code == "license-conflict" and f.chain == ("prop", "lgpl", "agpl")
    matrix = tmp_path.parent / "matrix.yaml"
    matrix.write_text("forbid:\n  OPL-1: [GPL-3]\n", encoding="utf-8")
    assert check([tmp_path], licenses=load_license_matrix(matrix)) == []
    assert check([tmp_path], licenses=LicenseMatrix({"LGPL-3": frozenset({"AGPL-3"})})) == [
        ("license-conflict", "lgpl")
    ]


def test_license_conflicts_are_one_finding_per_addon(tmp_path: Path) -> None:
    addon(tmp_path, "prop", license="OPL-1", depends=["a1", "a2", "a3"])
    for n in (1, 2, 3):
        addon(tmp_path, f"a{n}")
    (f,) = findings([tmp_path])
    assert f.chain == ("prop", "a1") and "2 more: a2, a3" in f.message


def test_long_dependency_chain_and_cycle_without_recursion(tmp_path: Path) -> None:
    n = 2000
    for i in range(n):
        d = tmp_path / f"c{i}"
        d.mkdir()
        deps = [f"c{(i + 1) % n}"]
        (d / "__manifest__.py").write_text(repr({"version": "17.0.1.0.0", "depends": deps}))
    start = time.monotonic()
    (f,) = [f for f in findings([tmp_path]) if f.code == "dependency-cycle"]
    assert len(f.chain) == n + 1 and f.chain[0] == f.chain[-1]
    assert time.monotonic() - start < 20


def test_version_against_series(tmp_path: Path) -> None:
    addon(tmp_path, "old", version="16.0.1.0.0")
    addon(tmp_path, "short", version="1.2")
    addon(tmp_path, "bad", version="17.0.x")
    got = {(f.code, f.addon, f.severity) for f in findings([tmp_path])}
    assert got == {
        ("version-series-mismatch", "old", "error"),
        ("version-no-series", "short", "warning"),
        ("version-invalid", "bad", "error"),
    }


def test_depends_on_installable_false(tmp_path: Path) -> None:
    addon(tmp_path, "user", depends=["unported"])
    addon(tmp_path, "unported", installable=False, depends=["gone"])  # its own deps: not checked
    assert check([tmp_path]) == [("depends-on-uninstallable", "user")]


def test_external_dependencies_against_package_list(tmp_path: Path) -> None:
    addon(
        tmp_path,
        "ext",
        external_dependencies={
            "python": ["requests>=2.30", "ldap", "absent", "openpyxl"],
            "bin": ["wkhtmltopdf", "lessc"],
        },
    )
    packages = parse_package_list(
        "requests==2.28.0\npython-ldap==3.4.4\n# comment\nopenpyxl @ file:///x.whl\n", "freeze.txt"
    )
    got = {
        (f.code, f.message.split(",")[0])
        for f in findings([tmp_path], packages=packages, binaries=frozenset({"wkhtmltopdf"}))
    }
    assert got == {
        ("external-python-version", "needs 'requests>=2.30'; the image has requests 2.28.0"),
        ("external-python-missing", "needs the Python package 'absent'"),
        ("external-bin-missing", "needs the program 'lessc'"),
    }
    assert check([tmp_path]) == []  # no --packages: not checked


def test_development_status_threshold(tmp_path: Path) -> None:
    addon(tmp_path, "alpha", development_status="Alpha")
    addon(tmp_path, "stable", development_status="Production/Stable")
    assert check([tmp_path], min_development_status="Beta") == [("development-status", "alpha")]
    assert check([tmp_path]) == []


def test_directory_of_repositories_is_expanded(tmp_path: Path) -> None:
    addon(tmp_path / "repo-b", "b")
    addon(tmp_path / "repo-a", "a", depends=["b"])
    report = check_addons_paths([tmp_path], CheckOptions(series="17.0"))
    assert [Path(p).name for p in report.addons_paths] == ["repo-a", "repo-b"]
    assert report.ok and len(report.addons) == 2


# --- hostile input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'name': open('/etc/passwd').read()}", "function call"),
        ("{'name': __import__('os').system('id')}", "function call"),
        ("{'depends': [x for x in 'ab']}", "not a Python literal"),
        ("{'name': 'a', 'name': 'b'}", "given twice"),
        ("['not', 'a', 'dict']", "not a dictionary"),
        ("{'k': " + "[" * 40 + "]" * 40 + "}", "nested deeper"),
        ("[" * 5000 + "]" * 5000, "not valid Python"),
        ("{'depends': 'base'}", "wrong type"),
    ],
)
def test_hostile_manifest_is_refused_without_evaluation(text: str, expected: str) -> None:
    with pytest.raises(BadInput, match=expected):
        parse_manifest_text(text, "x/__manifest__.py")


def test_manifest_refusals_are_collected_with_lines(tmp_path: Path) -> None:
    addon(tmp_path, "ok")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "__manifest__.py").write_text("{\n 'name': 'e',\n 'x': f()\n}\n")
    with pytest.raises(AddonsInputError) as err:
        check([tmp_path])
    assert "evil/__manifest__.py:3:7" in str(err.value) and "function call" in str(err.value)


def test_fifo_manifest_and_link_out_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "addons"
    addon(root, "ok")
    (root / "piped").mkdir()
    os.mkfifo(root / "piped" / "__manifest__.py")
    outside = addon(tmp_path / "elsewhere", "outside")
    (root / "linked").symlink_to(outside)
    start = time.monotonic()
    with pytest.raises(AddonsInputError) as err:
        check([root])
    assert time.monotonic() - start < 5
    text = str(err.value)
    assert "named pipe (FIFO)" in text and "symbolic link leads outside" in text


def test_manifest_symlink_out_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "addons"
    (root / "leak").mkdir(parents=True)
    secret = tmp_path / "secret.py"
    secret.write_text("{'name': 'secret'}")
    (root / "leak" / "__manifest__.py").symlink_to(secret)
    with pytest.raises(
        AddonsInputError, match="leak/__manifest__.py:1:1: error: symbolic link leads outside"
    ):
        check([root])


def test_huge_manifest_refused_before_parsing(tmp_path: Path) -> None:
    d = tmp_path / "big"
    d.mkdir()
    (d / "__manifest__.py").write_text("{'name': '" + "x" * (2 * 1024 * 1024) + "'}")
    with pytest.raises(AddonsInputError, match="over the limit"):
        check([tmp_path])


def test_addon_given_instead_of_addons_path(tmp_path: Path) -> None:
    a = addon(tmp_path, "a")
    with pytest.raises(AddonsInputError, match="this is an addon, not an addons path"):
        check([a])


# --- checksums -----------------------------------------------------------------------


def test_checksums_ignore_pyc_pot_static_tests_and_detect_changes(tmp_path: Path) -> None:
    a = addon(tmp_path, "a")
    base = addon_checksum(a, "a")
    for rel in ("x.pyc", "i18n/a.pot", "static/src/js/a.js", "tests/test_a.py"):
        (a / rel).parent.mkdir(parents=True, exist_ok=True)
        (a / rel).write_text("noise")
    assert addon_checksum(a, "a") == base
    (a / "models.py").write_text("")  # an empty file counts (its path is hashed)
    changed = addon_checksum(a, "a")
    assert changed != base
    assert changed_addons({"a": base, "b": "sha256:1"}, {"a": changed, "b": "sha256:1"}) == ["a"]
    os.mkfifo(a / "pipe")
    with pytest.raises(BadInput, match="FIFO"):
        addon_checksum(a, "a")


# --- CLI -----------------------------------------------------------------------------


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    addon(tmp_path, "a", depends=["zzz"])
    r = runner.invoke(app, ["addons", "check", str(tmp_path), "--series", "17.0"])
    assert r.exit_code == 1, r.output
    assert "missing-dependency" in r.output and "1 error(s)" in r.output
    r = runner.invoke(
        app,
        ["addons", "check", str(tmp_path), "--series", "17.0", "--format", "json", "--checksums"],
    )
    data = json.loads(r.stdout)
    assert data["errors"] == 1 and data["addons"][0]["checksum"].startswith("sha256:")
    r = runner.invoke(app, ["addons", "check", str(tmp_path), "--series", "7.0"])
    assert r.exit_code == 2 and "not an Odoo series" in r.output
    (tmp_path / "a" / "__manifest__.py").write_text("{'name': eval('1')}")
    r = runner.invoke(app, ["addons", "check", str(tmp_path), "--series", "17.0"])
    assert r.exit_code == 2 and "function call" in r.output

"""The release lock: digest-pinned image, addons with checksum and commit, a content id
that is stable and catches hand edits."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.release import LockError, parse_image_ref, read_lock
from tests.addons.test_addons import addon
from tests.conftest import EXAMPLE, TODAY

runner = CliRunner()
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.acme.example/odoo/odoo:17.0@{DIGEST}"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    root = tmp_path / "repo"
    addon(root, "acme_mrp", depends=["mrp"])
    addon(root, "acme_qc", depends=["acme_mrp"], version="17.0.2.1.0")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "addons")
    return root


def create(repo: Path, out: Path, *extra: str) -> object:
    return runner.invoke(
        app,
        [
            "release", "create", "--fleet", str(EXAMPLE), "--image", IMAGE,
            "--addons", str(repo), "--out", str(out), "--today", TODAY.isoformat(), *extra,
        ],
    )  # fmt: skip


def test_lock_content_and_stable_id(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = create(repo, tmp_path / "a.lock")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    doc = json.loads((tmp_path / "a.lock").read_text())
    lock = doc["lock"]
    assert lock["odoo"] == {"series": "17.0", "edition": "ce"}
    assert lock["image"] == {"repository": "registry.acme.example/odoo/odoo", "digest": DIGEST}
    qc = next(a for a in lock["addons"] if a["name"] == "acme_qc")
    assert qc["version"] == "17.0.2.1.0" and qc["checksum"].startswith("sha256:")
    assert qc["source"] == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    assert lock["config"]["deployments"] == 28 and lock["packages"] is None
    # Same content, same id and bytes — from another directory too.
    monkeypatch.chdir(repo)
    create(repo, tmp_path / "b.lock")
    assert (tmp_path / "a.lock").read_bytes() == (tmp_path / "b.lock").read_bytes()
    assert read_lock(tmp_path / "a.lock").id == doc["id"]


def test_changed_addon_changes_checksum_commit_and_id(repo: Path, tmp_path: Path) -> None:
    create(repo, tmp_path / "a.lock")
    (repo / "acme_qc" / "models.py").write_text("# change\n")
    create(repo, tmp_path / "dirty.lock")
    a = json.loads((tmp_path / "a.lock").read_text())
    b = json.loads((tmp_path / "dirty.lock").read_text())
    assert a["id"] != b["id"]
    sums = [{x["name"]: x["checksum"] for x in d["lock"]["addons"]} for d in (a, b)]
    assert sums[0]["acme_mrp"] == sums[1]["acme_mrp"] and sums[0]["acme_qc"] != sums[1]["acme_qc"]
    assert b["lock"]["addons"][0]["source"]["dirty"] is True
    r = runner.invoke(
        app, ["release", "diff", str(tmp_path / "a.lock"), str(tmp_path / "dirty.lock")]
    )
    assert r.exit_code == 0 and r.output.splitlines()[-1] == "1 addon(s) to update: acme_qc"


def test_package_list_hash_ignores_order(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "p1.txt").write_text("requests==2.31.0\nlxml==5.2.0\n")
    (tmp_path / "p2.txt").write_text("# freeze\nlxml==5.2.0\nRequests==2.31.0\n")
    create(repo, tmp_path / "1.lock", "--packages", str(tmp_path / "p1.txt"))
    create(repo, tmp_path / "2.lock", "--packages", str(tmp_path / "p2.txt"))
    one, two = (json.loads((tmp_path / f"{n}.lock").read_text())["lock"] for n in (1, 2))
    assert one["packages"] == two["packages"] and one["packages"].startswith("sha256:")


def test_edited_lock_is_refused(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    create(repo, path)
    path.write_text(path.read_text().replace(DIGEST, "sha256:" + "cd" * 32))
    with pytest.raises(LockError, match="does not match its id"):
        read_lock(path)
    r = runner.invoke(app, ["release", "verify", str(path)])
    assert r.exit_code == 2 and "edited after it was created" in r.output


@pytest.mark.parametrize(
    "ref",
    [
        "registry.acme.example/odoo/odoo:17.0",
        "registry.acme.example/odoo/odoo@sha256:abc",
        "registry.acme.example/odoo/odoo@md5:" + "a" * 32,
    ],
)
def test_image_without_digest_is_refused(ref: str) -> None:
    with pytest.raises(LockError, match="digest"):
        parse_image_ref(ref)


def test_tag_only_image_exits_2_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["release", "create", "--fleet", str(EXAMPLE), "--image", "odoo:17.0",
         "--addons", str(repo), "--out", str(tmp_path / "x.lock")],
    )  # fmt: skip
    assert r.exit_code == 2 and "not by tag" in r.output
    assert not (tmp_path / "x.lock").exists()


def test_addon_errors_refuse_the_release(tmp_path: Path) -> None:
    addon(tmp_path / "addons", "broken", depends=["nowhere"])
    r = create(tmp_path / "addons", tmp_path / "x.lock")
    assert r.exit_code == 1 and "missing-dependency" in r.output  # type: ignore[attr-defined]
    assert not (tmp_path / "x.lock").exists()

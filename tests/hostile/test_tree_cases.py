"""Hand edits of the rendered tree: whatever was done to a rendered file (edited, removed,
replaced by a link, a folder or a pipe), the next write restores exactly the rendered
text, names exactly the files it restored, and touches nothing else."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantops.gitops import UnitOfWork, write_tree
from plantops.render import RenderedFile
from tests.conftest import read_tree
from tests.hostile.harness import run_bounded, snapshot

FILES = {
    "a": {"c/a/odoo.yaml": "kind: Deployment\nreplicas: 2\n", "c/a/db.yaml": "kind: Cluster\n"},
    "b": {"c/b/odoo.yaml": "kind: Deployment\nreplicas: 1\n"},
}
FLEET = {"argocd/apps.yaml": "apps: [a, b]\n"}


def _units() -> list[UnitOfWork]:
    return [
        UnitOfWork(d, "h", (d,), lambda f=f: [RenderedFile(p, c) for p, c in sorted(f.items())])
        for d, f in FILES.items()
    ]


def _extra() -> list[RenderedFile]:
    return [RenderedFile(p, c) for p, c in FLEET.items()]


def _damage(path: Path, how: str, outside: Path) -> None:
    if how == "edit":
        path.write_text("evil: 1\n" + path.read_text())
    elif how == "append":
        with path.open("a") as fh:
            fh.write("extra: 1\n")
    elif how == "truncate":
        path.write_text("")
    elif how == "delete":
        path.unlink()
    elif how == "link-outside":
        path.unlink()
        path.symlink_to(outside)
    elif how == "hardlink-outside":
        path.unlink()
        os.link(outside, path)
    elif how == "directory":
        path.unlink()
        path.mkdir()
        (path / "inner").write_text("x\n")
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "same-bytes-touched":
        os.utime(path, (0, 0))  # a new mtime, the same text: nothing to restore
    else:
        raise AssertionError(how)


DAMAGES = [
    "edit",
    "append",
    "truncate",
    "delete",
    "link-outside",
    "hardlink-outside",
    "directory",
    "fifo",
    "same-bytes-touched",
]
TARGETS = ["c/a/odoo.yaml", "c/b/odoo.yaml", "argocd/apps.yaml"]


@pytest.mark.parametrize("cache", [True, False], ids=["stat-cache", "no-cache"])
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_file_is_restored(tmp_path: Path, how: str, target: str, cache: bool) -> None:
    os.environ["PLANTOPS_TREE_CACHE"] = str(tmp_path / "cache") if cache else ""
    out = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_text("secret: hunter2\n")

    def first() -> dict[str, bytes]:
        write_tree(out, _units(), extra=_extra)
        return read_tree(out)

    fresh = run_bounded(first)
    _damage(out / target, how, outside)
    before = snapshot(tmp_path)

    def second() -> list[str]:
        return write_tree(out, _units(), extra=_extra).restored

    restored = run_bounded(second)
    assert restored == ([] if how == "same-bytes-touched" else [target])
    assert read_tree(out) == fresh
    assert outside.read_text() == "secret: hunter2\n"  # a link was replaced, not written through
    after = snapshot(tmp_path)
    moved = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert all(k in ("out", "cache") or k.startswith(("out/", "cache/", ".out.")) for k in moved)
    assert run_bounded(second) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.dictionaries(
        st.from_regex(r"[a-c]/[a-c]{1,2}\.yaml", fullmatch=True),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
        min_size=1,
        max_size=8,
    ),
    data=st.data(),
)
def test_any_damage_is_restored_and_named_exactly(
    files: dict[str, str], data: st.DataObject
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLANTOPS_TREE_CACHE"] = ""
        out = Path(tmp) / "out"
        by_dep: dict[str, dict[str, str]] = {}
        for rel, text in files.items():
            by_dep.setdefault(rel.split("/")[0], {})[f"dep-{rel}"] = text
        units = [
            UnitOfWork(d, "h", (d,), lambda f=f: [RenderedFile(p, c) for p, c in sorted(f.items())])
            for d, f in sorted(by_dep.items())
        ]
        write_tree(out, units)
        fresh = read_tree(out)
        paths = sorted(p for p in fresh if not p.startswith(".plantops/"))
        damaged = data.draw(st.sets(st.sampled_from(paths), min_size=1))
        really: list[str] = []
        for rel in sorted(damaged):
            how = data.draw(st.sampled_from(["edit", "delete", "truncate", "directory"]))
            before = (out / rel).read_bytes()
            if how == "edit":
                (out / rel).write_bytes(before + b"#")
            elif how == "truncate":
                (out / rel).write_bytes(b"")
            elif how == "delete":
                (out / rel).unlink()
            else:
                (out / rel).unlink()
                (out / rel).mkdir()
            if how != "truncate" or before:
                really.append(rel)
        res = write_tree(out, units)
        assert res.restored == really
        assert read_tree(out) == fresh
        shutil.rmtree(out)

"""`plan` output: golden example tree, determinism, atomic swap, incremental re-render."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from plantops import services
from plantops.errors import SpecError
from plantops.gitops import UnitOfWork, write_tree
from plantops.gitops.tree import _recover
from plantops.render import RenderedFile
from tests.conftest import EXAMPLE, TODAY, compare_or_update_tree, read_tree

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "acme-manufacturing"


def plan(root: Path, out: Path, **kw: object) -> services.PlanResult:
    return services.plan_fleet(root, out, today=TODAY, **kw)  # type: ignore[arg-type]


def copy_example(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    return root


def test_example_tree_matches_golden(tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / "out"
    plan(EXAMPLE, out)
    compare_or_update_tree(out, GOLDEN, update_golden)


def test_two_runs_give_byte_identical_trees(tmp_path: Path) -> None:
    plan(EXAMPLE, tmp_path / "a")
    plan(EXAMPLE, tmp_path / "b")
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_example_covers_every_pattern_and_tier(tmp_path: Path) -> None:
    res = plan(EXAMPLE, tmp_path / "out", dry_run=True)
    assert {c.pattern for c in res.plan.classifications} == {
        "shared-multitenant",
        "dedicated-namespace",
        "dedicated-cluster",
        "dedicated-environment",
    }
    assert {c.tier for c in res.plan.classifications} == {"critical", "high", "standard", "pilot"}
    assert len({p.spec.timezone for p in res.plan.fleet.plants}) >= 3
    assert not (tmp_path / "out").exists(), "dry run writes nothing"


def test_rerun_reuses_every_deployment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = plan(EXAMPLE, out)
    second = plan(EXAMPLE, out)
    assert first.tree.rendered == len(first.plan.deployments)
    assert second.tree.rendered == 0
    assert second.tree.reused == len(second.plan.deployments)
    assert {c.action for c in second.tree.changes} == {"unchanged"}


def test_one_plant_change_rerenders_only_that_plant(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    out = tmp_path / "out"
    plan(root, out)
    before = read_tree(out)
    f = root / "plants" / "monterrey-assembly.yaml"
    f.write_text(f.read_text().replace("peak_concurrent: 90", "peak_concurrent: 120"))
    res = plan(root, out)
    changed = {c.deployment for c in res.tree.changes if c.action == "changed"}
    assert changed and all("monterrey-assembly" in d for d in changed)
    assert res.tree.rendered == len(changed)
    assert res.tree.by_plant()["monterrey-assembly"]["changed"] == len(changed)
    after = read_tree(out)
    differing = {k for k in before if before[k] != after.get(k)}
    assert differing and all(
        "monterrey-assembly" in k or k.startswith(".plantops") for k in differing
    )


def test_removed_plant_is_reported_and_deleted(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    out = tmp_path / "out"
    plan(root, out)
    (root / "plants" / "porto-plastics.yaml").unlink()
    res = plan(root, out)
    removed = [c for c in res.tree.changes if c.action == "removed"]
    assert removed and all(c.plants == ("porto-plastics",) for c in removed)
    assert not any("porto-plastics" in p for p in read_tree(out))


def test_plant_filter_keeps_other_plants(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan(EXAMPLE, out)
    before = read_tree(out)
    res = plan(EXAMPLE, out, plants=["pune-pilot"])
    assert {t.plant for d in res.plan.deployments for t in d.tenants} == {"pune-pilot"}
    assert read_tree(out) == before


def test_failed_render_leaves_previous_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [UnitOfWork("a", "h1", ("a",), lambda: [RenderedFile("a/x.yaml", "1\n")])])
    before = read_tree(out)

    def boom() -> list[RenderedFile]:
        raise RuntimeError("renderer crashed")

    units = [
        UnitOfWork("a", "h2", ("a",), lambda: [RenderedFile("a/x.yaml", "2\n")]),
        UnitOfWork("b", "h1", ("b",), boom),
    ]
    with pytest.raises(RuntimeError):
        write_tree(out, units)
    assert read_tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary directory left behind"


def test_interrupted_swap_is_repaired(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [UnitOfWork("a", "h1", ("a",), lambda: [RenderedFile("a/x.yaml", "1\n")])])
    before = read_tree(out)
    out.rename(tmp_path / ".out.old-999")  # killed between the two renames
    (tmp_path / ".out.tmp-999").mkdir()
    res = write_tree(
        out, [UnitOfWork("a", "h1", ("a",), lambda: [RenderedFile("a/x.yaml", "1\n")])]
    )
    assert res.reused == 1
    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_foreign_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(Exception, match="not written by plantops"):
        plan(EXAMPLE, out)
    assert (out / "precious.txt").read_text() == "mine"


def test_unknown_plant_filter_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown plant 'nowhere'"):
        plan(EXAMPLE, tmp_path / "out", plants=["nowhere"])


def unit(dep: str, files: dict[str, str], h: str = "h1") -> UnitOfWork:
    return UnitOfWork(
        dep, h, (dep,), lambda: [RenderedFile(p, c) for p, c in sorted(files.items())]
    )


def test_carried_directory_coexists_with_new_neighbours(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"c/a/x.yaml": "a\n", "c/a/sub/y.yaml": "y\n"})])
    # b is new and renders into c/ before a is carried over from the old tree
    res = write_tree(
        out,
        [
            unit("b", {"c/b/z.yaml": "b\n"}),
            unit("a", {"c/a/x.yaml": "a\n", "c/a/sub/y.yaml": "y\n"}),
        ],
    )
    assert (res.rendered, res.reused) == (1, 1)
    tree = read_tree(out)
    assert {k: v.decode() for k, v in tree.items() if not k.startswith(".plantops")} == {
        "c/a/sub/y.yaml": "y\n",
        "c/a/x.yaml": "a\n",
        "c/b/z.yaml": "b\n",
    }


def test_failure_after_moves_restores_the_old_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"a/x.yaml": "1\n"}), unit("b", {"b/y.yaml": "2\n"})])
    before = read_tree(out)

    def boom() -> list[RenderedFile]:
        raise RuntimeError("crash after a was moved")

    with pytest.raises(RuntimeError):
        write_tree(out, [unit("a", {"a/x.yaml": "1\n"}), UnitOfWork("b", "h2", ("b",), boom)])
    assert read_tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _kill_during_update(out: Path, units: list[UnitOfWork], after: int) -> None:
    """Run an update in a forked child that dies (like kill -9) after ``after`` renames."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        count = 0
        real_rename, real_replace = Path.rename, os.replace

        def die_after(*args: object) -> None:
            nonlocal count
            count += 1
            if count > after:
                os._exit(9)

        def rename(self: Path, target: object) -> Path:
            die_after()
            return real_rename(self, target)  # type: ignore[arg-type]

        def replace(src: object, dst: object) -> None:
            die_after()
            real_replace(src, dst)  # type: ignore[arg-type]

        Path.rename = rename  # type: ignore[assignment,method-assign]
        os.replace = replace  # type: ignore[assignment]
        try:
            write_tree(out, units)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_update_killed_at_any_rename_is_repaired(tmp_path: Path) -> None:
    """Killed between any two renames of an update, the next run finds the old tree or
    the new one — never a mix — and no staging directory is left."""
    out = tmp_path / "out"
    old_units = [
        unit("a", {"c/a/x.yaml": "a\n"}),
        unit("b", {"c/b/y.yaml": "b\n", "apps/b.yaml": "b\n"}),
        unit("gone", {"c/gone/z.yaml": "z\n"}),
    ]
    new_units = [
        unit("a", {"c/a/x.yaml": "a2\n", "c/a/w.yaml": "w\n"}, h="h2"),
        unit("b", {"c/b/y.yaml": "b\n", "apps/b.yaml": "b\n"}),
        unit("new", {"c/new/n.yaml": "n\n", "apps/new.yaml": "n\n"}),
    ]
    write_tree(tmp_path / "want", new_units)
    after = read_tree(tmp_path / "want")
    outcomes = []
    for k in range(12):
        shutil.rmtree(out, ignore_errors=True)
        write_tree(out, old_units)
        before = read_tree(out)
        _kill_during_update(out, new_units, k)
        _recover(out)
        got = read_tree(out)
        assert got in (before, after), f"killed after {k} renames: a mixed tree"
        outcomes.append("new" if got == after else "old")
        left = sorted(p.name for p in tmp_path.iterdir() if p.name != ".out.lock")
        assert left == ["out", "want"], k  # (a killed run's lock file is reused next time)
    # killed before the state file was replaced: rolled back; after: the new tree
    first_new = outcomes.index("new")
    assert first_new > 4, outcomes  # several kills landed in the middle of the swaps
    assert outcomes == ["old"] * first_new + ["new"] * (len(outcomes) - first_new)


def test_update_moves_only_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"c/a/x.yaml": "a\n"}), unit("b", {"c/b/y.yaml": "b\n"})])
    untouched = (out / "c" / "b").stat().st_ino
    res = write_tree(
        out, [unit("a", {"c/a/x.yaml": "a2\n"}, h="h2"), unit("b", {"c/b/y.yaml": "b\n"})]
    )
    assert (res.rendered, res.reused) == (1, 1)
    assert (out / "c" / "b").stat().st_ino == untouched
    assert (out / "c" / "a" / "x.yaml").read_text() == "a2\n"


def test_removed_deployment_leaves_no_empty_directories(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"c/a/x.yaml": "a\n"}), unit("b", {"d/b/y.yaml": "b\n"})])
    res = write_tree(out, [unit("a", {"c/a/x.yaml": "a\n"})])
    assert [c.action for c in res.changes] == ["unchanged", "removed"]
    assert not (out / "d").exists()


def test_fleet_files_follow_the_fleet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = [unit("a", {"c/a/x.yaml": "a\n"})]
    write_tree(out, a, extra=lambda: [RenderedFile("p/one.yaml", "1\n")])
    write_tree(out, a, extra=lambda: [RenderedFile("p/two.yaml", "2\n")])
    tree = read_tree(out)
    assert "p/one.yaml" not in tree
    assert tree["p/two.yaml"] == b"2\n"


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    from plantops.errors import UserError
    from plantops.gitops.tree import _Lock

    out = tmp_path / "out"
    with _Lock(out), pytest.raises(UserError, match="another plantops run"):
        write_tree(out, [unit("a", {"a/x.yaml": "1\n"})])
    write_tree(out, [unit("a", {"a/x.yaml": "1\n"})])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tree_with_an_older_state_format_is_rewritten_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".plantops").mkdir(parents=True)
    (out / ".plantops" / "state.json").write_text('{"version": 1, "deployments": {}}')
    (out / "stale.yaml").write_text("old\n")
    res = write_tree(out, [unit("a", {"a/x.yaml": "1\n"})])
    assert res.rendered == 1
    assert sorted(read_tree(out)) == [".plantops/state.json", "a/x.yaml"]


def test_file_deleted_from_the_tree_is_rendered_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"c/a/x.yaml": "a\n", "c/a/y.yaml": "y\n"})])
    (out / "c" / "a" / "y.yaml").unlink()
    res = write_tree(out, [unit("a", {"c/a/x.yaml": "a\n", "c/a/y.yaml": "y\n"})])
    assert (res.rendered, res.reused) == (1, 0)
    assert (out / "c" / "a" / "y.yaml").read_text() == "y\n"


def test_parallel_render_gives_the_same_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked render workers produce exactly what a serial render does."""
    monkeypatch.setattr(services, "PARALLEL_MIN_RENDERS", 1)
    monkeypatch.setattr(services, "available_cpus", lambda: 2)
    plan(EXAMPLE, tmp_path / "parallel")
    monkeypatch.setattr(services, "available_cpus", lambda: 1)
    plan(EXAMPLE, tmp_path / "serial")
    assert read_tree(tmp_path / "parallel") == read_tree(tmp_path / "serial")


def test_parallel_render_findings_abort_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema finding from a worker fails the plan and leaves the previous tree alone."""
    from plantops.check.schema import SchemaValidator
    from plantops.errors import GateFailed

    out = tmp_path / "out"
    plan(EXAMPLE, out)
    before = read_tree(out)
    root = copy_example(tmp_path)
    f = root / "plants" / "brno-components.yaml"
    f.write_text(f.read_text().replace("name: Brno Components s.r.o.", "name: Brno"))
    original = SchemaValidator.validate

    def strict(self: SchemaValidator, obj: object, **kw: object) -> list[object]:
        found = original(self, obj, **kw)  # type: ignore[arg-type]
        if isinstance(obj, dict) and obj.get("kind") == "Namespace":
            from plantops.check.schema import SchemaFinding

            found.append(SchemaFinding("x", 0, "v1", "Namespace", "n", "", "planted finding"))
        return found  # type: ignore[return-value]

    monkeypatch.setattr(SchemaValidator, "validate", strict)
    # a replaced validator is code the kept verdicts' scope cannot see: keep none
    monkeypatch.setenv("PLANTOPS_RENDER_CACHE", "")
    monkeypatch.setattr(services, "PARALLEL_MIN_RENDERS", 1)
    monkeypatch.setattr(services, "available_cpus", lambda: 2)
    with pytest.raises(GateFailed, match="planted finding"):
        plan(root, out)
    assert read_tree(out) == before


def test_findings_name_the_component_file_and_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects share component files, so a finding says which document of the file."""
    from plantops.check.schema import SchemaFinding, SchemaValidator
    from plantops.errors import GateFailed

    original = SchemaValidator.validate

    def flag_limit_ranges(
        self: SchemaValidator, obj: dict[str, object], *, file: str = "", document_index: int = 0
    ) -> list[SchemaFinding]:
        found = original(self, obj, file=file, document_index=document_index)
        if obj.get("kind") == "LimitRange":
            found.append(SchemaFinding(file, document_index, "v1", "LimitRange", "x", "", "flag"))
        return found

    monkeypatch.setattr(SchemaValidator, "validate", flag_limit_ranges)
    # a replaced validator is code the kept verdicts' scope cannot see: keep none
    monkeypatch.setenv("PLANTOPS_RENDER_CACHE", "")
    with pytest.raises(GateFailed) as caught:
        plan(EXAMPLE, tmp_path / "out", plants=["pune-pilot"])
    # namespace.yaml: Namespace (0), ResourceQuota (1), LimitRange (2), ...
    assert "/namespace.yaml:2: LimitRange/x: flag" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_recorded_file_stats_spare_reads_but_not_hand_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plantops.gitops import tree as tree_module

    monkeypatch.setenv("PLANTOPS_TREE_CACHE", str(tmp_path / "cache"))
    # trust every recorded stat, however recent (the test runs within the racy window)
    monkeypatch.setattr(tree_module, "_RACY_SECONDS", -3600.0)
    out = tmp_path / "out"
    units = [
        unit("a", {"c/a/x.yaml": "a\n", "c/a/y.yaml": "y\n"}),
        unit("b", {"c/b/z.yaml": "b\n"}),
    ]
    write_tree(out, units)
    hashed: list[int] = []
    real_digest = tree_module.content_digest

    def counting(data: bytes) -> str:
        hashed.append(len(data))
        return real_digest(data)

    monkeypatch.setattr(tree_module, "content_digest", counting)
    res = write_tree(out, units)
    assert (res.reused, res.written, res.restored, hashed) == (2, 0, [], [])
    # same size, mtime put back: only the ctime (which no user call can set) tells
    y = out / "c" / "a" / "y.yaml"
    st = y.stat()
    y.write_text("Y\n")
    os.utime(y, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = write_tree(out, units)
    assert (res.rendered, res.reused, res.restored) == (1, 1, ["c/a/y.yaml"])
    assert y.read_text() == "y\n"


def test_racily_recorded_stats_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit within the timestamp granularity of the last write keeps size and mtime:
    the stats recorded that close to a change are not trusted, the file is hashed."""
    monkeypatch.setenv("PLANTOPS_TREE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    units = [unit("a", {"c/a/y.yaml": "y\n"})]
    write_tree(out, units)
    y = out / "c" / "a" / "y.yaml"
    st = y.stat()
    y.write_text("Y\n")
    os.utime(y, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert write_tree(out, units).restored == ["c/a/y.yaml"]


@pytest.mark.parametrize("cache", [True, False], ids=["stat-cache", "no-cache"])
@pytest.mark.parametrize("damage", ["edit", "delete", "symlink", "directory", "truncate"])
def test_hand_edited_files_are_restored_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool, damage: str
) -> None:
    monkeypatch.setenv("PLANTOPS_TREE_CACHE", str(tmp_path / "cache") if cache else "")
    out = tmp_path / "out"
    units = [
        unit("a", {"c/a/x.yaml": "a\n", "c/a/y.yaml": "y: 1\n"}),
        unit("b", {"c/b/z.yaml": "b\n"}),
    ]
    write_tree(out, units)
    fresh = read_tree(out)
    y = out / "c" / "a" / "y.yaml"
    if damage == "edit":
        y.write_text("y: 2\n")
    elif damage == "delete":
        y.unlink()
    elif damage == "symlink":
        y.unlink()
        y.symlink_to(out / "c" / "b" / "z.yaml")
    elif damage == "directory":
        y.unlink()
        y.mkdir()
    else:
        y.write_text("")
    res = write_tree(out, units)
    assert res.restored == ["c/a/y.yaml"]
    assert (res.rendered, res.reused, res.written) == (1, 1, 2)
    assert read_tree(out) == fresh
    again = write_tree(out, units)
    assert (again.restored, again.reused, again.written) == ([], 2, 0)


def test_hand_edited_fleet_file_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    units = [unit("a", {"c/a/x.yaml": "a\n"})]

    def extra() -> list[RenderedFile]:
        return [RenderedFile("argocd/apps.yaml", "apps: [a]\n")]

    write_tree(out, units, extra=extra)
    (out / "argocd" / "apps.yaml").write_text("apps: [a, evil]\n")
    res = write_tree(out, units, extra=extra)
    assert res.restored == ["argocd/apps.yaml"]
    assert (out / "argocd" / "apps.yaml").read_text() == "apps: [a]\n"
    assert write_tree(out, units, extra=extra).restored == []


def test_plan_restores_a_hand_edited_odoo_yaml(tmp_path: Path) -> None:
    """The issue's case: a rendered odoo.yaml edited by hand; the next plan puts the
    rendered text back (the tree is byte-identical to a fresh one) and names the file."""
    out = tmp_path / "out"
    plan(EXAMPLE, out)
    fresh = read_tree(out)
    target = sorted(p for p in fresh if p.endswith("/odoo.yaml"))[0]
    (out / target).write_text((out / target).read_text().replace("replicas:", "replicas: 9 #"))
    res = plan(EXAMPLE, out)
    assert res.tree.restored == [target]
    assert res.tree.rendered == 1
    assert read_tree(out) == fresh


def test_hand_edit_in_a_changed_deployment_is_named_too(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, [unit("a", {"c/a/x.yaml": "a\n"}), unit("b", {"c/b/y.yaml": "b\n"})])
    (out / "c" / "a" / "x.yaml").write_text("hand\n")
    res = write_tree(
        out, [unit("a", {"c/a/x.yaml": "a2\n"}, h="h2"), unit("b", {"c/b/y.yaml": "b\n"})]
    )
    assert (res.restored, res.rendered, res.reused) == (["c/a/x.yaml"], 1, 1)
    assert (out / "c" / "a" / "x.yaml").read_text() == "a2\n"


def test_a_process_with_other_threads_renders_serially(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forking beside other threads can copy a held lock into a worker for ever (the
    server's background policy check hung so): such a process never forks workers, and
    its tree is the serial one. A process without other threads may fork."""
    import multiprocessing
    import subprocess
    import sys
    import threading

    monkeypatch.setattr(services, "PARALLEL_MIN_RENDERS", 1)
    monkeypatch.setattr(services, "available_cpus", lambda: 2)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    forked: list[str] = []
    real = multiprocessing.get_context

    def spy(method: str | None = None) -> object:
        forked.append(str(method))
        return real(method)

    monkeypatch.setattr(multiprocessing, "get_context", spy)
    try:
        assert not services.may_fork()
        plan(EXAMPLE, tmp_path / "threaded")
    finally:
        stop.set()
        busy.join()
    assert forked == []
    monkeypatch.setattr(services, "available_cpus", lambda: 1)
    plan(EXAMPLE, tmp_path / "serial")
    assert read_tree(tmp_path / "threaded") == read_tree(tmp_path / "serial")
    probe = (
        "import threading; from plantops import services as s; a = s.may_fork();"
        "t = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True);"
        "t.start(); print(a, s.may_fork())"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["True", "False"]

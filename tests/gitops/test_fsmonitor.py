"""The inotify watch of a rendered tree (``gitops.fsmonitor``), on the real file system
with real inotify: what it trusts, what it forgets, and that a plan with it restores
hand edits exactly as a plan without it does, at a fraction of the stats."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantops import services
from plantops.gitops import fsmonitor
from plantops.gitops import tree as tree_module
from tests.conftest import EXAMPLE, TODAY, read_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    for rel in ["a/x.yaml", "a/y.yaml", "b/c/z.yaml"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"{rel}\n")
    return root


def _trust(m: fsmonitor.TreeMonitor, root: Path, *rels: str) -> None:
    for rel in rels:
        m.verified(rel, f"d-{rel}", (root / rel).lstat())
    m.refresh()
    assert all(m.trusts(rel, f"d-{rel}") for rel in rels)


@pytest.fixture
def monitor(tree: Path) -> Iterator[fsmonitor.TreeMonitor]:
    m = fsmonitor.TreeMonitor(tree)
    _trust(m, tree, "a/x.yaml", "a/y.yaml", "b/c/z.yaml")
    yield m
    m.close()


def _edit_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    text = path.read_text()
    path.write_text(text.swapcase() if text.swapcase() != text else text[::-1])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _truncate(path: Path) -> None:
    os.truncate(path, 0)


def _chmod(path: Path) -> None:
    path.chmod(0o600)


def _delete(path: Path) -> None:
    path.unlink()


def _symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "x.yaml")


def _rename_over(path: Path) -> None:
    other = path.parent / ".new"
    other.write_text(path.read_text())
    other.replace(path)


@pytest.mark.parametrize(
    "damage", [_edit_keeping_size_and_mtime, _truncate, _chmod, _delete, _symlink, _rename_over]
)
def test_a_touched_file_is_no_longer_trusted(
    tree: Path, monitor: fsmonitor.TreeMonitor, damage: object
) -> None:
    assert callable(damage)
    damage(tree / "a" / "y.yaml")
    monitor.refresh()
    assert not monitor.trusts("a/y.yaml", "d-a/y.yaml")
    assert monitor.trusts("a/x.yaml", "d-a/x.yaml")  # its neighbour was not touched
    assert monitor.trusts("b/c/z.yaml", "d-b/c/z.yaml")


def test_a_directory_chmod_forgets_the_files_below_it(
    tree: Path, monitor: fsmonitor.TreeMonitor
) -> None:
    """As without the watch, where the stat of a file below it would then fail."""
    (tree / "b").chmod(0o700)
    monitor.refresh()
    assert monitor.trusted() == {"a/x.yaml": "d-a/x.yaml", "a/y.yaml": "d-a/y.yaml"}


def test_a_file_trusted_under_another_digest_is_not(monitor: fsmonitor.TreeMonitor) -> None:
    assert not monitor.trusts("a/x.yaml", "another digest")


def test_a_directory_renamed_away_and_another_put_in_its_place(
    tree: Path, monitor: fsmonitor.TreeMonitor
) -> None:
    parked = tree.parent / "parked"  # out of the tree, as an update parks originals
    (tree / "b").rename(parked)
    shutil.copytree(parked, tree / "b")  # same paths, same content, new files
    monitor.refresh()
    assert monitor.trusted() == {"a/x.yaml": "d-a/x.yaml", "a/y.yaml": "d-a/y.yaml"}
    # the new directories are watched: a file proved there is trusted until touched
    _trust(monitor, tree, "b/c/z.yaml")
    (tree / "b" / "c" / "z.yaml").write_text("edited\n")
    monitor.refresh()
    assert not monitor.trusts("b/c/z.yaml", "d-b/c/z.yaml")
    # the parked directory is no longer watched: an edit there names no tree file
    assert set(monitor._dirs) == {"", "a", "b", "b/c"}
    (parked / "c" / "z.yaml").write_text("edited\n")
    _trust(monitor, tree, "b/c/z.yaml")
    (parked / "c" / "z.yaml").write_text("again\n")
    monitor.refresh()
    assert monitor.trusts("b/c/z.yaml", "d-b/c/z.yaml")


def test_a_directory_made_after_the_watch_is_watched_whole(
    tree: Path, monitor: fsmonitor.TreeMonitor
) -> None:
    (tree / "n" / "deep" / "er").mkdir(parents=True)
    (tree / "n" / "deep" / "er" / "f.yaml").write_text("f\n")
    st = (tree / "n" / "deep" / "er" / "f.yaml").stat()
    monitor.verified("n/deep/er/f.yaml", "d", st)  # not watched yet (no refresh since)
    assert not monitor.trusts("n/deep/er/f.yaml", "d")
    monitor.refresh()
    assert {"n", "n/deep", "n/deep/er"} <= set(monitor._dirs)
    monitor.verified("n/deep/er/f.yaml", "d", st)
    assert monitor.trusts("n/deep/er/f.yaml", "d")
    (tree / "n" / "deep" / "er" / "g.yaml").write_text("g\n")  # a neighbour: no harm
    (tree / "n" / "deep" / "er" / "f.yaml").write_text("F\n")
    monitor.refresh()
    assert not monitor.trusts("n/deep/er/f.yaml", "d")


def test_a_hard_linked_file_is_never_trusted(tree: Path, tmp_path: Path) -> None:
    m = fsmonitor.TreeMonitor(tree)
    try:
        os.link(tree / "a" / "x.yaml", tmp_path / "elsewhere")
        m.verified("a/x.yaml", "d", (tree / "a" / "x.yaml").stat())
        assert not m.trusts("a/x.yaml", "d")
        # an edit through the other link is not reported to the tree's directory watch
        (tmp_path / "elsewhere").write_text("edited through the other link\n")
        m.refresh()
        assert (tree / "a" / "x.yaml").read_text() == "edited through the other link\n"
        assert not m.trusts("a/x.yaml", "d")
    finally:
        m.close()


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_the_root_replaced_forgets_everything(
    tree: Path, monitor: fsmonitor.TreeMonitor, how: str
) -> None:
    copy = tree.parent / "copy"
    shutil.copytree(tree, copy)
    if how == "renamed":
        tree.rename(tree.parent / "away")
    else:
        shutil.rmtree(tree)
    copy.rename(tree)
    resets = monitor.resets
    monitor.refresh()
    assert monitor.resets == resets + 1
    assert monitor.trusted() == {}
    assert monitor._ino == tree.stat().st_ino  # the new root is watched
    _trust(monitor, tree, "a/x.yaml")


def test_the_root_gone_and_back_is_watched_again(tree: Path) -> None:
    shutil.rmtree(tree)
    m = fsmonitor.TreeMonitor(tree)  # no tree yet: as before a first write
    try:
        assert m.watched == 0
        tree.mkdir()
        (tree / "f").write_text("f\n")
        m.verified("f", "d", (tree / "f").stat())
        assert not m.trusts("f", "d")  # not watched when it was proved
        m.refresh()
        assert m.watched == 1
        _trust(m, tree, "f")
    finally:
        m.close()


def test_a_queue_overflow_forgets_everything(tree: Path, monitor: fsmonitor.TreeMonitor) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    flood = tree / "flood"
    flood.mkdir()
    monitor.refresh()
    for i in range(limit // 2 + 100):  # IN_CREATE and IN_CLOSE_WRITE each: past the limit
        (flood / str(i)).touch()
    resets = monitor.resets
    monitor.refresh()
    assert monitor.resets == resets + 1
    assert monitor.trusted() == {}
    _trust(monitor, tree, "a/x.yaml")  # watched afresh, new files included
    assert "flood" in monitor._dirs


def test_an_overflow_event_resets(monitor: fsmonitor.TreeMonitor) -> None:
    assert not monitor._handle(-1, fsmonitor.IN_Q_OVERFLOW, "")
    assert monitor._handle(monitor._dirs["a"], fsmonitor.IN_MODIFY, "x.yaml")
    assert not monitor.trusts("a/x.yaml", "d-a/x.yaml")


def test_the_registry_is_off_by_default_and_bounded(tmp_path: Path) -> None:
    fsmonitor.disable()
    roots = [tmp_path / f"t{i}" for i in range(3)]
    for r in roots:
        (r / "d").mkdir(parents=True)
    assert fsmonitor.monitor_for(roots[0]) is None  # off: nothing watched, nothing opened

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    fsmonitor.enable(max_trees=2)
    try:
        first, second = fsmonitor.monitor_for(roots[0]), fsmonitor.monitor_for(roots[1])
        assert first is not None and second is not None
        assert fsmonitor.monitor_for(roots[0]) is first  # the same watch, now most recent
        assert fds() == before + 2
        third = fsmonitor.monitor_for(roots[2])  # evicts the least recently used: roots[1]
        assert third is not None
        assert fds() == before + 2
        assert second._fd is None and first._fd is not None
        assert fsmonitor.monitor_for(roots[1]) is not second
    finally:
        fsmonitor.disable()
    assert fds() == before


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /mnt/nfs rw,relatime shared:20 - nfs4 srv:/export rw,vers=4.2
41 40 8:2 / /mnt/nfs/local rw shared:21 - ext4 /dev/sda2 rw
42 22 0:36 / /home/me/my\\040drive rw,nosuid - fuse.sshfs me@host: rw
43 22 0:37 / /mnt/nfsish rw - xfs /dev/sdb1 rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/srv/out", "ext4"),
        ("/mnt/nfs", "nfs4"),
        ("/mnt/nfs/out/x", "nfs4"),
        ("/mnt/nfs/local/out", "ext4"),  # the longest mount point wins
        ("/mnt/nfsish/out", "xfs"),  # a prefix of the name is not a parent
        ("/home/me/my drive/out", "fuse.sshfs"),  # \\040 is a space
    ],
)
def test_the_mount_of_a_path(path: str, fstype: str) -> None:
    assert fsmonitor._mount_of(path, MOUNTINFO)[1] == fstype


def test_network_and_fuse_file_systems_are_refused(tmp_path: Path) -> None:
    point = str(tmp_path)
    for fstype in ["nfs", "nfs4", "cifs", "smb3", "9p", "fuse.sshfs", "fuseblk"]:
        info = f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:35 / {point} rw - {fstype} s rw\n"
        with pytest.raises(fsmonitor.WatchUnavailable, match=fstype):
            fsmonitor.check_watchable(tmp_path / "out", info)
    fsmonitor.check_watchable(tmp_path / "out", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")


# --- planning with the monitor ---------------------------------------------------------


def _plan(out: Path) -> services.PlanResult:
    return services.plan_fleet(EXAMPLE, out, today=TODAY)


@pytest.fixture
def planning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PLANTOPS_TREE_CACHE", str(tmp_path / "cache"))
    # trust every recorded stat, however recent (the test runs within the racy window)
    monkeypatch.setattr(tree_module, "_RACY_SECONDS", -3600.0)
    fsmonitor.disable()
    yield
    fsmonitor.disable()


def _count_stats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = tree_module._stat_of

    def counting(path: str) -> os.stat_result | None:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(tree_module, "_stat_of", counting)
    return seen


def test_an_unchanged_replan_with_the_monitor_stats_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planning: None
) -> None:
    without, watched = tmp_path / "without", tmp_path / "watched"
    _plan(without)
    _plan(without)
    stats = _count_stats(monkeypatch)
    res = _plan(without)
    files = res.tree.files
    assert len(stats) >= files  # every file proved by one stat
    fsmonitor.enable()
    _plan(watched)
    _plan(watched)  # proves each file by stat under the watch
    stats.clear()
    res = _plan(watched)
    assert (res.tree.reused, res.tree.rendered, res.tree.restored) == (
        len(res.plan.deployments),
        0,
        [],
    )
    assert len(stats) <= 5, stats
    assert read_tree(watched) == read_tree(without)


def _keep_size_and_mtime(out: Path, rel: str) -> None:
    _edit_keeping_size_and_mtime(out / rel)


def _delete_file(out: Path, rel: str) -> None:
    (out / rel).unlink()


def _stray(out: Path, rel: str) -> None:
    (out / rel).with_name("stray.yaml").write_text("kind: Stray\n")


def _by_symlink(out: Path, rel: str) -> None:
    (out / rel).unlink()
    (out / rel).symlink_to(out / STATE_TARGET)


STATE_TARGET = ".plantops/state.json"


@pytest.mark.parametrize("edit", [_keep_size_and_mtime, _delete_file, _stray, _by_symlink])
def test_a_hand_edit_is_restored_as_without_the_monitor(
    tmp_path: Path, planning: None, edit: object
) -> None:
    assert callable(edit)
    results = {}
    for watching in [False, True]:
        out = tmp_path / ("watched" if watching else "without")
        if watching:
            fsmonitor.enable()
        _plan(out)
        _plan(out)
        target = sorted(p for p in read_tree(out) if p.endswith("/odoo.yaml"))[0]
        edit(out, target)
        res = _plan(out)
        again = _plan(out)
        results[watching] = (read_tree(out), res.tree.restored, again.tree.restored)
        assert again.tree.restored == []
    assert results[True] == results[False]
    tree_files, restored, _ = results[True]
    assert restored == ([] if edit is _stray else [target])
    assert "stray.yaml" not in str(restored)


def test_an_edit_to_files_the_last_plan_swapped_in_is_restored(
    tmp_path: Path, planning: None
) -> None:
    """The previous run's own renames are taken in: its new files are proved by stat."""
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    out = tmp_path / "out"
    fsmonitor.enable()
    services.plan_fleet(root, out, today=TODAY)
    services.plan_fleet(root, out, today=TODAY)
    f = root / "plants" / "monterrey-assembly.yaml"
    f.write_text(f.read_text().replace("peak_concurrent: 90", "peak_concurrent: 120"))
    changed = services.plan_fleet(root, out, today=TODAY)
    assert changed.tree.rendered >= 1
    fresh = read_tree(out)
    target = sorted(p for p in fresh if "monterrey-assembly" in p and p.endswith(".yaml"))[0]
    _edit_keeping_size_and_mtime(out / target)
    res = services.plan_fleet(root, out, today=TODAY)
    assert res.tree.restored == [target]
    assert read_tree(out) == fresh


def test_the_cli_path_never_imports_inotify(tmp_path: Path) -> None:
    code = (
        "import sys, datetime\n"
        "from pathlib import Path\n"
        "from plantops import services\n"
        f"services.plan_fleet(Path({str(EXAMPLE)!r}), Path({str(tmp_path / 'out')!r}),"
        f" today=datetime.date({TODAY.year}, {TODAY.month}, {TODAY.day}))\n"
        "assert 'inotify_simple' not in sys.modules, 'imported'\n"
    )
    env = {**os.environ, "PLANTOPS_TREE_CACHE": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / STATE_TARGET).is_file()


def test_a_linked_root_is_watched_through_its_link(tmp_path: Path, tree: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tree)
    m = fsmonitor.TreeMonitor(link)
    try:
        _trust(m, link, "a/x.yaml")
        (tree / "a" / "x.yaml").write_text("edited by its real path\n")
        m.refresh()
        assert not m.trusts("a/x.yaml", "d-a/x.yaml")
        _trust(m, link, "a/x.yaml")
        other = tmp_path / "other"
        shutil.copytree(tree, other)
        link.unlink()
        link.symlink_to(other)  # the link retargeted: another tree
        m.refresh()
        assert m.trusted() == {}
    finally:
        m.close()


def test_a_network_mount_inside_the_tree_is_refused(tmp_path: Path) -> None:
    info = (
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        f"40 22 0:35 / {tmp_path}/out/shared rw - nfs4 srv:/x rw\n"
    )
    with pytest.raises(fsmonitor.WatchUnavailable, match="nfs4"):
        fsmonitor.check_watchable(tmp_path / "out", info)


MOUNT_OVER = """
import os, sys
from pathlib import Path
from plantops.gitops import fsmonitor
root = Path(sys.argv[1])
m = fsmonitor.TreeMonitor(root)
f = root / "b" / "c" / "z.yaml"
m.verified("b/c/z.yaml", "d", f.stat())
m.refresh()
assert m.trusts("b/c/z.yaml", "d")
os.system(f"mount -t tmpfs none {root / 'b'}")  # hides the watched directory
(root / "b" / "c").mkdir()
f.write_text("not what was proved\\n")
resets = m.resets
m.refresh()
assert m.resets == resets + 1 and not m.trusts("b/c/z.yaml", "d"), m.trusted()
print("ok")
"""


def test_a_mount_over_a_watched_directory_forgets_everything(tree: Path) -> None:
    """Run in a private mount namespace (``unshare -rm``): a tmpfs mounted over a
    watched directory hides it from its watch, so the changed mount table resets."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux unshare for a private mount namespace")
    proc = subprocess.run(
        [unshare, "-rm", sys.executable, "-c", MOUNT_OVER, str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


OUT_OF_WATCHES = """
import sys
from pathlib import Path
from plantops.gitops import fsmonitor
# a user namespace of our own (unshare -r) has its own inotify watch limit
Path("/proc/sys/user/max_inotify_watches").write_text("4")
big, small = Path(sys.argv[1]) / "big", Path(sys.argv[1]) / "small"
for d in ["a", "b", "c", "d", "e"]:
    (big / d).mkdir(parents=True)
(small / "a").mkdir(parents=True)
try:
    fsmonitor.TreeMonitor(big)
except fsmonitor.WatchUnavailable as exc:
    assert "max_user_watches" in str(exc), exc
else:
    raise AssertionError("6 directories watched with 4 watches")
m = fsmonitor.TreeMonitor(small)  # the failed one's watches were given back
(small / "a" / "f").write_text("f")
m.refresh()
m.verified("a/f", "d", (small / "a" / "f").stat())
assert m.trusts("a/f", "d")
for d in ["b", "c", "d"]:
    (small / d).mkdir()
try:
    m.refresh()
except fsmonitor.WatchUnavailable:
    pass
else:
    raise AssertionError("5 directories watched with 4 watches")
assert m.trusted() == {} and m._fd is None  # closed: trusts nothing
m.verified("a/f", "d", (small / "a" / "f").stat())
assert not m.trusts("a/f", "d")
fsmonitor.enable()
assert fsmonitor.monitor_for(big) is None and big in fsmonitor.refused()
# a plan whose new directories exceed the limit: written all the same, then not watched
from plantops.gitops import UnitOfWork, write_tree
from plantops.render import RenderedFile
def unit(dep, paths):
    return UnitOfWork(dep, "h-" + "-".join(paths), (dep,), lambda: [RenderedFile(p, p) for p in paths])
out = Path(sys.argv[1]) / "out"
write_tree(out, [unit("a", ["x"])])
write_tree(out, [unit("a", ["x"])])
assert fsmonitor.monitor_for(out.absolute()) is not None
res = write_tree(out, [unit("a", ["x"]), unit("b", ["b/c/d/y"])])
assert (out / "b/c/d/y").read_text() == "b/c/d/y" and res.rendered == 1
assert out.absolute() in fsmonitor.refused(), fsmonitor.refused()
(out / "x").write_text("edited")
assert write_tree(out, [unit("a", ["x"]), unit("b", ["b/c/d/y"])]).restored == ["x"]
print("ok")
"""


def test_out_of_watches_is_refused_and_trusts_nothing(tmp_path: Path) -> None:
    """Run in a user namespace of its own (``unshare -r``), whose inotify watch limit
    (``/proc/sys/user/max_inotify_watches``) the test may lower to 4."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux unshare for a user namespace")
    proc = subprocess.run(
        [unshare, "-r", sys.executable, "-c", OUT_OF_WATCHES, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PLANTOPS_TREE_CACHE": str(tmp_path / "cache")},
    )
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]

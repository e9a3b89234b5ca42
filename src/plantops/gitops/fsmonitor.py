"""A watch of a rendered tree, so a resident process need not ``stat`` every file.

Like Git's fsmonitor (``core.fsmonitor``, the builtin ``fsmonitor--daemon``): a
``TreeMonitor`` holds an inotify watch on every directory of a tree and the files
proved intact (by ``stat`` or hash) since the watch was in place and not touched since.
The kernel queues an inotify event synchronously with the system call that changed the
file, so draining the queue without blocking (``refresh``) at the start of a check sees
every change made before it; a file still trusted after that was not touched.

Limits (the caller then proves files by ``stat`` as without a monitor):

* a file with more than one hard link is never trusted — an edit through another link
  is reported to that link's directory, not ours (Git documents the same for its
  fsmonitor); a link made *after* a file was trusted is not seen either;
* writes through a shared ``mmap`` raise no event;
* network and FUSE file systems (a change made on another host raises no event here)
  are refused, as are non-Linux systems and a tree whose watches would exceed
  ``fs.inotify.max_user_watches``;
* an overflowed event queue, or the root replaced, forgets every trusted file (the next
  check is a full one).

Off by default: the plan server calls ``enable()`` once; the CLI never imports
``inotify_simple`` (``monitor_for`` answers None until then).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from plantops.errors import InfrastructureError

if TYPE_CHECKING:
    from inotify_simple import INotify

# File systems where a change can be made without this kernel's VFS seeing it (another
# host, the hypervisor's side, a FUSE daemon's backing store): inotify stays silent.
REMOTE_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "coda",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "ocfs2",
        "gfs2",
        "beegfs",
        "orangefs",
        "virtiofs",
        "vboxsf",
        "fuse",
        "fuseblk",
        "davfs",
    }
)

# inotify(7) bits; inotify_simple.flags has the same values
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000

WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_DONT_FOLLOW
)  # IN_Q_OVERFLOW, IN_IGNORED and IN_UNMOUNT are always reported


class WatchUnavailable(InfrastructureError):
    """This tree cannot be watched exactly; prove its files by ``stat`` instead."""


def _mount_of(path: str, mountinfo: str) -> tuple[str, str]:
    """The (mount point, file system type) of the mount holding ``path``: the longest
    mount point that is a prefix of it, in proc_pid_mountinfo(5) format (the last
    such line wins, as a later mount over the same point hides the earlier)."""
    best, fstype = "", ""
    for point, kind in _mount_points(mountinfo):
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, kind
    return best, fstype


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as ``\\ooo``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mounts() -> str:
    """This process's mount table (proc_pid_mountinfo(5))."""
    try:
        return Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    except OSError as exc:
        raise WatchUnavailable(f"reading the mount table: {exc}") from exc


def _remote(fstype: str) -> bool:
    return fstype in REMOTE_FS or fstype.startswith("fuse.")


def check_watchable(root: Path, mountinfo: str | None = None) -> None:
    """Raise ``WatchUnavailable`` unless inotify sees every change under ``root``: it is
    on Linux, and neither its mount nor one mounted inside it is a network or FUSE one."""
    if not sys.platform.startswith("linux"):
        raise WatchUnavailable(f"watching {root}: inotify needs Linux, not {sys.platform}")
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    real = os.path.realpath(existing)
    if mountinfo is None:
        mountinfo = read_mounts()
    below = real.rstrip("/") + "/"
    mounts = [_mount_of(real, mountinfo)]
    mounts += [(p, t) for p, t in _mount_points(mountinfo) if p.startswith(below)]
    for point, fstype in mounts:
        if _remote(fstype):
            raise WatchUnavailable(
                f"watching {root}: {point} is a {fstype} file system, whose changes made"
                " elsewhere inotify does not report"
            )


def _mount_points(mountinfo: str) -> Iterator[tuple[str, str]]:
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split(" ")
        if sep and len(fields) >= 5 and right:
            yield _unescape(fields[4]), right.split(" ")[0]


_NONE: Mapping[str, str] = MappingProxyType({})


def _under(d: str, prefix: str) -> bool:
    return not prefix or d == prefix or d.startswith(prefix + "/")


class TreeMonitor:
    """Watches every directory under ``root`` and remembers the files proved intact
    since (``trusts``, ``verified``); ``refresh`` forgets those touched since."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resets = 0  # times every trusted file was forgotten (overflow, root replaced)
        self._fd: INotify | None = None
        self._ino: int | None = None  # the watched root's inode
        self._wds: dict[int, str] = {}  # watch -> directory relative to root ("" the root)
        self._dirs: dict[str, int] = {}  # the reverse
        # directory -> file name -> digest proved since the watch was in place
        self._trusted: dict[str, dict[str, str]] = {}
        self._mounts = ""  # the mount table when the watches were added
        self._lock = threading.Lock()  # refresh and close (an eviction by another thread)
        self._reset()

    # --- queries ----------------------------------------------------------------------

    @property
    def watched(self) -> int:
        return len(self._dirs)

    def trusted(self) -> dict[str, str]:
        """Every trusted file's relative path and digest (for tests and reports)."""
        return {
            f"{d}/{name}" if d else name: digest
            for d, names in self._trusted.items()
            for name, digest in names.items()
        }

    def trusts(self, rel: str, digest: str) -> bool:
        """``rel`` was proved to have ``digest`` and no event touched it since."""
        d, _, name = rel.rpartition("/")
        names = self._trusted.get(d)
        return names is not None and names.get(name) == digest

    def trusted_in(self, d: str) -> Mapping[str, str]:
        """The trusted files of directory ``d`` (file name -> digest); read only."""
        return self._trusted.get(d, _NONE)

    def verified(self, rel: str, digest: str, st: os.stat_result) -> None:
        """``rel`` was proved (with ``st`` its stat) to have ``digest``: trust it until an
        event touches it — unless it has other hard links, or its directory is not
        watched (yet: it came in since the last ``refresh``)."""
        d, _, name = rel.rpartition("/")
        if st.st_nlink != 1 or d not in self._dirs:
            names = self._trusted.get(d)
            if names is not None:
                names.pop(name, None)
            return
        self._trusted.setdefault(d, {})[name] = digest

    # --- events -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Take in every change made before this call (a non-blocking drain). Raises
        ``WatchUnavailable`` when a new directory cannot be watched (then closed)."""
        with self._lock:
            if self._fd is None:
                return  # closed (dropped from the registry): trusts nothing any more
            try:
                self._drain()
            except (WatchUnavailable, OSError):
                self._close()
                raise

    def _drain(self) -> None:
        try:
            ino: int | None = self.root.stat().st_ino
        except OSError:
            ino = None
        # a file system mounted over a watched directory would hide its changes from us
        if ino is None or ino != self._ino or read_mounts() != self._mounts:
            self._reset()
            return
        assert self._fd is not None
        while True:
            events = self._fd.read(timeout=0)
            if not events:
                return
            for ev in events:
                if not self._handle(ev.wd, ev.mask, ev.name):
                    self._reset()
                    return

    def _handle(self, wd: int, mask: int, name: str) -> bool:
        """Apply one event; False when only a full reset will do."""
        if mask & (IN_Q_OVERFLOW | IN_UNMOUNT):
            return False
        d = self._wds.get(wd)
        if d is None:
            return True  # a watch already dropped (its IN_IGNORED, late events)
        if not name:  # the watched directory itself
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                if d == "":
                    return False
                self._unwatch(d)
            elif mask & IN_ATTRIB:  # its mode or owner: a stat below may now fail
                self._drop(d, subtree=True)
            return True
        rel = f"{d}/{name}" if d else name
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._unwatch(rel)
                return self._watch_tree(rel)
            if mask & (IN_DELETE | IN_MOVED_FROM):
                self._unwatch(rel)
            elif mask & IN_ATTRIB:
                self._drop(rel, subtree=True)
            return True
        names = self._trusted.get(d)
        if names is not None:
            names.pop(name, None)
        return True

    # --- watches ------------------------------------------------------------------------

    def _reset(self) -> None:
        """Forget everything and watch the tree from scratch (a new inotify instance)."""
        from inotify_simple import INotify

        self._close()
        self.resets += 1
        self._mounts = read_mounts()
        check_watchable(self.root, self._mounts)
        self._fd = INotify(nonblocking=True)
        try:
            self._ino = self.root.stat().st_ino
        except OSError:
            self._ino = None  # no tree yet (a first write): watched once it is swapped in
            return
        try:
            watched = self._watch_tree("")
        except WatchUnavailable:
            self._close()
            raise
        if not watched:
            self._close()
            self._fd = INotify(nonblocking=True)
            self._ino = None  # not this inode: the next refresh tries again

    def _watch_tree(self, top: str) -> bool:
        """Watch ``top`` and every directory under it: each one watched before it is
        listed, so nothing made in it in between goes unseen. False when the root went
        away while being watched (the caller resets)."""
        assert self._fd is not None
        stack = [top]
        while stack:
            d = stack.pop()
            path = f"{self.root}/{d}" if d else str(self.root)
            mask = WATCH_MASK if d else WATCH_MASK & ~IN_DONT_FOLLOW  # a linked root: its target
            try:
                wd = self._fd.add_watch(path, mask)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise WatchUnavailable(
                        f"watching {self.root}: out of inotify watches at {len(self._dirs)}"
                        " directories; raise fs.inotify.max_user_watches"
                    ) from exc
                if d == "":
                    return False
                continue  # gone or not a directory any more: its own event says so
            old = self._wds.get(wd)
            if old is not None and old != d:  # the same directory reached by two names
                self._dirs.pop(old, None)
                self._drop(old, subtree=True)
            self._wds[wd], self._dirs[d] = d, wd
            self._drop(d, subtree=False)
            try:
                with os.scandir(path) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(f"{d}/{entry.name}" if d else entry.name)
            except OSError:
                continue
        return True

    def _unwatch(self, top: str) -> None:
        """Stop watching ``top`` and everything under it; forget its files."""
        assert self._fd is not None
        for d in [d for d in self._dirs if _under(d, top)]:
            wd = self._dirs.pop(d)
            self._wds.pop(wd, None)
            with contextlib.suppress(OSError):  # already gone with its directory
                self._fd.rm_watch(wd)
        self._drop(top, subtree=True)

    def _drop(self, top: str, *, subtree: bool) -> None:
        if not subtree:
            self._trusted.pop(top, None)
            return
        for d in [d for d in self._trusted if _under(d, top)]:
            del self._trusted[d]

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            self._fd.close()
            self._fd = None
        self._wds.clear()
        self._dirs.clear()
        self._trusted.clear()


# --- the process-wide registry -----------------------------------------------------------


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.max_trees = 0  # 0: disabled
        self.monitors: OrderedDict[Path, TreeMonitor] = OrderedDict()
        self.refused: dict[Path, str] = {}  # tree -> why it cannot be watched (not retried)

    def trim(self) -> None:
        while len(self.monitors) > self.max_trees:
            self.monitors.popitem(last=False)[1].close()


_registry = _Registry()


def enable(max_trees: int = 4) -> None:
    """Watch the trees this process writes, at most ``max_trees`` at once (the least
    recently used one is dropped, its inotify instance closed). Called once by a
    resident process."""
    if max_trees < 1:
        raise ValueError(f"max_trees must be at least 1, not {max_trees}")
    with _registry.lock:
        _registry.max_trees = max_trees
        _registry.trim()


def disable() -> None:
    """Stop every watch and forget refusals."""
    with _registry.lock:
        _registry.max_trees = 0
        _registry.trim()
        _registry.refused.clear()


def refused() -> dict[Path, str]:
    """Trees that could not be watched, and why."""
    with _registry.lock:
        return dict(_registry.refused)


def monitor_for(out: Path) -> TreeMonitor | None:
    """The watch of the tree at ``out`` (an absolute path), made on first use; None when
    not enabled or the tree cannot be watched (then not tried again)."""
    if not _registry.max_trees:
        return None
    with _registry.lock:
        monitors = _registry.monitors
        monitor = monitors.get(out)
        if monitor is not None:
            monitors.move_to_end(out)
            return monitor
        if out in _registry.refused:
            return None
        try:
            monitor = TreeMonitor(out)
        except WatchUnavailable as exc:
            _registry.refused[out] = str(exc)
            return None
        monitors[out] = monitor
        _registry.trim()
        return monitor


def forget(out: Path, why: str) -> None:
    """Drop the watch of ``out`` for good (it ran out of watches while refreshing)."""
    with _registry.lock:
        monitor = _registry.monitors.pop(out, None)
        if monitor is not None:
            monitor.close()
        _registry.refused[out] = why

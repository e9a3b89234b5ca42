"""The tree writer: deterministic, incremental, atomic.

Every deployment carries a content hash of its inputs, kept with its file list and each
file's content digest in ``.plantops/state.json``. A run renders only the deployments
whose hash changed, or whose files were deleted or edited by hand (those are restored
and named), so its cost follows what changed, not the fleet. Proving a file untouched
costs one ``stat`` when the user's cache recorded it (like Git's index), else a hash;
in a resident process that enabled ``fsmonitor`` (like Git's fsmonitor), not even that
for a file its inotify watch has seen untouched since it was last proved.

Two ways to write, both all-or-nothing:

* **First write** (no tree yet, or one whose state cannot be read): the whole tree is
  built in a temporary sibling directory and swapped in with two renames.
* **Update** (the usual case): changed files are built in a staging directory, then
  swapped in place — per deployment, the highest directory it owns alone moves in one
  rename, other files one by one, the replaced originals parked in the staging
  directory. A journal lists the swaps before the first one; replacing the state file
  is the commit point. A failed run swaps everything back; a killed run is rolled back
  (or, if it had committed, cleaned up) by the next run (``_recover``).

The state file lists every deployment's hash and files, sorted, with no timestamps —
one line per deployment, so it diffs well — and two runs of the same fleet give
byte-identical trees. A lock file keeps two runs from writing the same tree at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat as stat_module
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plantops.caches import (
    file_signature,
    load_remembered,
    load_sealed,
    remember_written,
    store_sealed,
    user_cache_dir,
    warm_enabled,
    warm_table,
)
from plantops.errors import InfrastructureError, UserError
from plantops.gitops import fsmonitor
from plantops.render import RenderedFile

STATE_FILE = ".plantops/state.json"
STATE_VERSION = 3
COMPLETE = ".plantops-complete"  # in a first-write temp tree that is ready to swap in
JOURNAL = "journal"  # in an update's staging dir: the new state's hash, then the swaps
NEW, OLD = "new", "old"  # an update's staging dir: files to swap in, originals swapped out
FLEET = ""  # owner key of the fleet-wide files (never a deployment id)


@dataclass(frozen=True)
class UnitOfWork:
    """One deployment to write: its id, input hash, plants, and how to render it."""

    id: str
    input_hash: str
    plants: tuple[str, ...]
    render: Callable[[], Sequence[RenderedFile]]


RenderMany = Callable[[Sequence[UnitOfWork]], Iterable[Sequence[RenderedFile]]]


def _render_serially(units: Sequence[UnitOfWork]) -> Iterator[Sequence[RenderedFile]]:
    for unit in units:
        yield unit.render()


@dataclass(frozen=True)
class Change:
    deployment: str
    plants: tuple[str, ...]
    action: Literal["added", "changed", "removed", "unchanged"]


@dataclass
class TreeSummary:
    out: Path
    changes: list[Change] = field(default_factory=list)
    rendered: int = 0
    reused: int = 0
    files: int = 0  # in the tree after the run
    written: int = 0  # (re)written by the run, the state file not counted
    restored: list[str] = field(default_factory=list)  # edited or deleted by hand, put back
    dry_run: bool = False

    def by_plant(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for ch in self.changes:
            for plant in ch.plants:
                row = counts.setdefault(
                    plant, {"added": 0, "changed": 0, "removed": 0, "unchanged": 0}
                )
                row[ch.action] += 1
        return dict(sorted(counts.items()))


# --- state --------------------------------------------------------------------------

Files = dict[str, list[str]]  # directory ("" for the root) -> sorted file names


def _paths(files: Files) -> list[str]:
    """Relative paths of grouped files."""
    return [f"{d}/{n}" if d else n for d, names in files.items() for n in names]


@dataclass(frozen=True)
class _Entry:
    hash: str
    plants: tuple[str, ...]
    files: Files
    sums: tuple[str, ...]  # content digest of each of _paths(files), in that order

    def count(self) -> int:
        return sum(len(names) for names in self.files.values())

    def digests(self) -> dict[str, str]:
        return dict(zip(_paths(self.files), self.sums, strict=True))


def _entry(input_hash: str, plants: tuple[str, ...], rendered: Iterable[tuple[str, str]]) -> _Entry:
    """An entry for rendered ``(path, digest)`` pairs."""
    sums = dict(rendered)
    files = _group(sums)
    return _Entry(input_hash, plants, files, tuple(sums[p] for p in _paths(files)))


@dataclass
class _State:
    deployments: dict[str, _Entry] = field(default_factory=dict)
    fleet: Files = field(default_factory=dict)
    fleet_sums: tuple[str, ...] = ()

    def dump(self) -> str:
        """Deterministic JSON, one deployment per line."""
        # the process memo (plantops.services.warm): an entry's line, while the entry is
        # the very same (frozen, only read) object — a reused deployment's is
        table = warm_table("tree-state-lines")
        lines = []
        for dep_id, e in sorted(self.deployments.items()):
            found = table.get(dep_id) if table is not None else None
            if found is not None and found[0] is e:
                lines.append(found[1])
                continue
            line = (
                json.dumps(dep_id)
                + ":"
                + json.dumps(
                    {"files": e.files, "hash": e.hash, "plants": list(e.plants), "sums": e.sums},
                    sort_keys=True,
                    separators=(",", ":"),
                )
            )
            if table is not None:
                table.put(dep_id, (e, line))
            lines.append(line)
        return (
            f'{{"version":{STATE_VERSION},\n"fleet":'
            + json.dumps(self.fleet, sort_keys=True, separators=(",", ":"))
            + ',\n"fleet_sums":'
            + json.dumps(self.fleet_sums, separators=(",", ":"))
            + ',\n"deployments":{\n'
            + ",\n".join(lines)
            + "\n}}\n"
        )


def _group(paths: Iterable[str]) -> Files:
    grouped: dict[str, list[str]] = {}
    for rel in paths:
        d, _, name = rel.rpartition("/")
        grouped.setdefault(d, []).append(name)
    return {d: sorted(names) for d, names in sorted(grouped.items())}


def _files_of(raw: object) -> Files | None:
    if not isinstance(raw, dict):
        return None
    files: Files = {}
    for d, names in raw.items():
        if not isinstance(d, str) or not isinstance(names, list):
            return None
        files[d] = [str(n) for n in names]
    return files


def _sums_of(raw: object, files: Files) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or len(raw) != sum(len(n) for n in files.values()):
        return None
    return tuple(map(str, raw))


def _read_state(out: Path) -> _State | None:
    """The previous run's state; None when there is none that can be trusted. With the
    process memo on, the state this process read or wrote last, while the file's
    signature is the same (it is replaced by a rename)."""
    state = load_remembered(out / STATE_FILE, _decode_state)
    if state is None:
        return None
    # a copy of the mapping in the file's order (sorted): the entries are frozen and their
    # file lists are only read
    return _State(dict(sorted(state.deployments.items())), state.fleet, state.fleet_sums)


def _decode_state(path: Path) -> _State | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    fleet = _files_of(data.get("fleet")) or {}
    fleet_sums = _sums_of(data.get("fleet_sums"), fleet)
    deps = data.get("deployments")
    if not isinstance(deps, dict) or fleet_sums is None:
        return None
    state = _State(fleet=fleet, fleet_sums=fleet_sums)
    for dep_id, raw in deps.items():
        if not isinstance(raw, dict):
            return None
        files = _files_of(raw.get("files"))
        plants = raw.get("plants")
        if files is None or not isinstance(plants, list):
            return None
        sums = _sums_of(raw.get("sums"), files)
        if sums is None:
            return None
        state.deployments[dep_id] = _Entry(
            str(raw.get("hash")), tuple(map(str, plants)), files, sums
        )
    return state


# --- helpers --------------------------------------------------------------------------


def _ancestors(d: str) -> list[str]:
    """``a``, ``a/b``, ``a/b/c`` for ``a/b/c``: shallowest first."""
    parts = d.split("/") if d else []
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _owners(state: _State) -> dict[str, set[str]]:
    """For every directory of a tree, the owners (deployments, FLEET) of files below it."""
    owners: dict[str, set[str]] = {}
    items: list[tuple[str, Files]] = [(FLEET, state.fleet)]
    items += [(dep_id, e.files) for dep_id, e in state.deployments.items()]
    for owner, files in items:
        for d in files:
            for a in _ancestors(d):
                owners.setdefault(a, set()).add(owner)
    return owners


def _swap_paths(
    owner: str, paths: Iterable[str], old: dict[str, set[str]], new: dict[str, set[str]]
) -> set[str]:
    """What to swap for ``owner``'s files: for each, the highest directory that only
    ``owner`` has files under, in the old tree and the new, else the file itself."""
    mine = {owner}
    picked: set[str] = set()
    for rel in paths:
        d = rel.rpartition("/")[0]
        own = next(
            (a for a in _ancestors(d) if old.get(a, mine) <= mine and new.get(a, mine) <= mine),
            None,
        )
        picked.add(own if own is not None else rel)
    return picked


def _check_target(out: Path) -> None:
    from plantops.outputs import fleet_source_of

    fleet = fleet_source_of(out / "_")
    if fleet is not None:
        raise UserError(
            f"--out {out} is inside the source folders of the fleet at {fleet}"
            " (plants/, policies/); the rendered tree would be read back as its input:"
            " choose a path outside them"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(
                    f"--out {out}: {parent} is a file, not a folder; choose another path"
                )
            break
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_FILE).is_file():
        raise UserError(
            f"--out {out} is a non-empty directory not written by plantops; "
            "choose an empty or new directory"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _prune_empty(out: Path, rel: str) -> None:
    """Remove directories left empty above ``rel``, up to (not including) ``out``."""
    for a in reversed(_ancestors(rel.rpartition("/")[0])):
        try:
            (out / a).rmdir()
        except OSError:
            return


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_digest(data: bytes) -> str:
    """A rendered file's digest in the state: SHA-256, its first 128 bits in hex (ample to
    tell a hand edit from the rendered text, at half the state file's size)."""
    return hashlib.sha256(data).hexdigest()[:32]


# --- recovery -------------------------------------------------------------------------


def _roll_back(out: Path, staging: Path) -> None:
    """Undo the journaled swaps of an update that did not commit."""
    lines = (staging / JOURNAL).read_text(encoding="utf-8").splitlines()
    for line in reversed(lines[1:]):
        existed, _, rel = line.partition(" ")
        parked = staging / OLD / rel
        if existed == "1":
            if os.path.lexists(parked):
                _remove(out / rel)  # the new version, if it was swapped in
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                parked.rename(out / rel)
        elif existed == "0":
            _remove(out / rel)
            _prune_empty(out, rel)


def _recover_update(out: Path, staging: Path) -> None:
    journal = staging / JOURNAL
    if journal.is_file() and out.is_dir():
        target = journal.read_text(encoding="utf-8").partition("\n")[0]
        try:
            current = _digest((out / STATE_FILE).read_text(encoding="utf-8"))
        except OSError:
            current = ""
        if current != target:
            _roll_back(out, staging)
    shutil.rmtree(staging, ignore_errors=True)


def _recover(out: Path) -> None:
    """Repair what an interrupted run left: finish or undo a swap, roll back an update."""
    parent = out.parent
    if not parent.is_dir():
        return
    for staging in sorted(parent.glob(f".{out.name}.update-*")):
        _recover_update(out, staging)
    olds = sorted(parent.glob(f".{out.name}.old-*"))
    tmps = sorted(parent.glob(f".{out.name}.tmp-*"))
    if not out.exists() and olds:
        done = [t for t in tmps if (t / COMPLETE).is_file()]
        if done:  # killed between the two renames of the swap: finish it
            (done[-1] / COMPLETE).unlink()
            done[-1].rename(out)
            tmps.remove(done[-1])
        else:
            olds[-1].rename(out)
            olds = olds[:-1]
    for path in [*tmps, *olds]:
        shutil.rmtree(path, ignore_errors=True)


class _Lock:
    """An exclusive lock beside the tree, so two runs never write it at once."""

    def __init__(self, out: Path) -> None:
        self.path = out.parent / f".{out.name}.lock"
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(
                    f"another plantops run is writing {self.path.parent / self.path.name[1:-5]};"
                    " wait for it to finish"
                ) from None
            try:
                same = self.path.stat().st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its previous holder has just removed
                self.fd = fd
                return self
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink()  # while still holding it: see the check in __enter__
        os.close(self.fd)


# --- writing ----------------------------------------------------------------------------


class _Staging:
    """Where new files are written before they are swapped in."""

    def __init__(self, root: Path, dry_run: bool) -> None:
        self.root, self.dry_run = root, dry_run
        self.made: set[Path] = set()

    def write(self, rel: str, content: str) -> None:
        if self.dry_run:
            return
        target = self.root / rel
        parent = target.parent
        if parent not in self.made:
            parent.mkdir(parents=True, exist_ok=True)
            self.made.add(parent)
        with target.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(content)


def tree_cache_dir() -> Path | None:
    """``$PLANTOPS_TREE_CACHE`` (empty to disable), else ``$XDG_CACHE_HOME/plantops/trees``."""
    return user_cache_dir("trees", "PLANTOPS_TREE_CACHE")


# A file changed this close to when its stat was recorded may have been changed again
# within the file system's timestamp granularity (Git's "racily clean" entries): its
# recorded stat is not trusted, and the file is hashed instead.
_RACY_SECONDS = 2.0


def _stat_of(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path, follow_symlinks=False)  # noqa: PTH116 (a str: once per file)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return None  # a link, directory or FIFO put where a rendered file was: not ours
    return st


def _record_of(st: os.stat_result, digest: str) -> str:
    """One file's record: one string, which JSON reads back faster than a list."""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{digest}"


class _FileStats:
    """Each rendered file's stat and digest when a run last left the tree complete, kept
    outside the tree (in the user's cache), like Git's index: a file whose inode, size,
    mtime and ctime still match was not touched, so proving it intact costs one ``stat``;
    any other file is read and hashed. A file changed within ``_RACY_SECONDS`` of the
    recording is not recorded (Git's "racily clean" entries), so it is hashed next time.
    Only a hint — a missing or stale cache costs hashing, never correctness.

    With a ``monitor`` (a resident process's watch of the tree, ``fsmonitor``), a file
    it trusts whose record names the same digest is intact without a ``stat``."""

    def __init__(
        self, out: Path, use_cache: bool, monitor: fsmonitor.TreeMonitor | None = None
    ) -> None:
        base = tree_cache_dir() if use_cache else None
        key = hashlib.sha256(str(out).encode()).hexdigest()[:24]
        self.path = base / f"{key}.files.json" if base is not None else None
        self.out = out
        self.base = f"{out}/"
        self.monitor = monitor
        self.known: dict[str, str] = {}
        self.fresh: dict[str, str] = {}  # proved intact (or written) by this run
        self._token = ""  # the base file's, when it was read intact
        self._base_files: dict[str, str] = {}
        if self.path is None:
            return
        base_doc = self._read(self.path)
        if base_doc is None or not isinstance(base_doc.get("token"), str):
            return
        self.known = self._base_files = base_doc["files"]
        self._token = base_doc["token"]
        delta = self._read(self._delta_path)
        gone = delta.get("gone") if delta is not None else None
        if delta is not None and delta.get("token") == self._token and isinstance(gone, list):
            self.known = {**self.known, **delta["files"]}
            for rel in gone:
                self.known.pop(rel, None)

    @property
    def _delta_path(self) -> Path:
        assert self.path is not None
        return self.path.with_suffix(".delta")

    def _read(self, path: Path) -> dict[str, Any] | None:
        data = load_sealed(path)
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if not isinstance(doc, dict) or doc.get("out") != str(self.out):
            return None
        files = doc.get("files")
        return doc if isinstance(files, dict) else None

    def intact(self, rel: str, digest: str) -> bool:
        """``rel`` is a regular file whose content has ``digest``."""
        seen = self.known.get(rel)
        monitor = self.monitor
        if (
            monitor is not None
            and seen is not None
            and seen.endswith(f":{digest}")
            and monitor.trusts(rel, digest)
        ):
            self.fresh[rel] = seen  # proved earlier, and no event has touched it since
            return True
        st = _stat_of(self.base + rel)  # a str, not a Path: this runs once per file
        if st is None:
            return False
        if seen is not None and seen == _record_of(st, digest):
            self.fresh[rel] = seen
            if monitor is not None:
                monitor.verified(rel, digest, st)
            return True
        try:
            with open(self.base + rel, "rb") as fh:  # noqa: PTH123 (see above)
                same = content_digest(fh.read()) == digest
        except OSError:
            return False
        if same:
            self.fresh[rel] = _record_of(st, digest)
            if monitor is not None:
                monitor.verified(rel, digest, st)
        return same

    def keep(self, digests: dict[str, str]) -> None:
        """Carry trusted records of files this run did not look at (other plants')."""
        for rel, digest in digests.items():
            seen = self.known.get(rel)
            if isinstance(seen, str) and seen.endswith(f":{digest}"):
                self.fresh.setdefault(rel, seen)

    def record(self, digests: dict[str, str], rewritten: set[str]) -> None:
        """Save the stats of the complete tree: files this run proved or wrote."""
        if self.path is None:
            return
        known = self.known
        if (
            not rewritten
            and len(self.fresh) == len(known) == len(digests)
            and all(known.get(rel) is seen for rel, seen in self.fresh.items())
        ):
            return  # every file proved by the stat on record: the record stands as it is
        racy = int((time.time() - _RACY_SECONDS) * 1e9)
        files: dict[str, str] = {}
        for rel, digest in digests.items():
            seen = None if rel in rewritten else self.fresh.get(rel)
            if seen is None or not seen.endswith(f":{digest}"):
                st = _stat_of(self.base + rel)
                if st is None or max(st.st_mtime_ns, st.st_ctime_ns) >= racy:
                    continue
                seen = _record_of(st, digest)
            elif self.fresh.get(rel) is not known.get(rel):  # proved by hash this run
                _ino, _size, mtime, ctime, _d = seen.split(":")
                if max(int(mtime), int(ctime)) >= racy:
                    continue
            files[rel] = seen
        self._store(files)

    def _store(self, files: dict[str, str]) -> None:
        """The records as a delta against the base file while they differ from it in
        few files, else as a new base (each one sealed, atomic write)."""
        assert self.path is not None
        base = self._base_files
        if self._token:
            changed = {rel: seen for rel, seen in files.items() if base.get(rel) != seen}
            gone = [rel for rel in base if rel not in files]
            if len(changed) + len(gone) <= _DELTA_SHARE * len(base):
                delta = {"out": str(self.out), "token": self._token, "files": changed}
                store_sealed(self._delta_path, _json_bytes({**delta, "gone": gone}))
                return
        token = hashlib.sha256(f"{time.time_ns()}:{os.getpid()}".encode()).hexdigest()[:16]
        store_sealed(self.path, _json_bytes({"out": str(self.out), "token": token, "files": files}))
        with contextlib.suppress(OSError):
            self._delta_path.unlink()


# The file records go to a delta file beside the base while they differ from it in at
# most this share of its files (a one-plant re-plan rewrites a few dozen of ~29,000).
_DELTA_SHARE = 0.2


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _edited(entry: _Entry, stats: _FileStats) -> list[str]:
    """The files of ``entry`` that are no longer as rendered (edited, deleted, replaced)."""
    if stats.monitor is not None:
        return _edited_watched(entry, stats, stats.monitor)
    return [
        rel
        for rel, d in zip(_paths(entry.files), entry.sums, strict=True)
        if not stats.intact(rel, d)
    ]


def _edited_watched(entry: _Entry, stats: _FileStats, monitor: fsmonitor.TreeMonitor) -> list[str]:
    """``_edited`` under a watch, a directory at a time: ``_FileStats.intact``'s first
    test (trusted by the watch, with a record naming the same digest) inlined, as it
    answers for nearly every file."""
    known, fresh = stats.known, stats.fresh
    edited: list[str] = []
    sums = iter(entry.sums)
    for d, names in entry.files.items():
        trusted = monitor.trusted_in(d)
        prefix = f"{d}/" if d else ""
        for name, digest in zip(names, sums, strict=False):  # names first: sums runs on
            rel = prefix + name
            seen = known.get(rel)
            if (
                seen is not None
                and trusted.get(name) == digest
                and seen.endswith(digest)
                and seen[-len(digest) - 1 : -len(digest)] == ":"  # as intact(), no new string
            ):
                fresh[rel] = seen
            elif not stats.intact(rel, digest):
                edited.append(rel)
    return edited


def _refresh(out: Path, monitor: fsmonitor.TreeMonitor | None) -> fsmonitor.TreeMonitor | None:
    """Take in the watch's events; None (and the tree no longer watched) when it cannot
    keep up (out of inotify watches, a file system mounted inside it): files are then
    proved by ``stat``."""
    if monitor is None:
        return None
    try:
        monitor.refresh()
    except (fsmonitor.WatchUnavailable, OSError) as exc:
        fsmonitor.forget(out, str(exc))
        return None
    return monitor


def write_tree(
    out: Path,
    units: Iterable[UnitOfWork],
    *,
    selected_plants: Sequence[str] = (),
    extra: Callable[[], Sequence[RenderedFile]] | None = None,
    dry_run: bool = False,
    render_many: RenderMany | None = None,
) -> TreeSummary:
    """Write ``units`` to ``out`` atomically; with ``selected_plants``, keep the others.

    ``render_many`` renders the units that changed (in order, lazily — it may spread the
    work over processes); it may raise once its iterator is exhausted, e.g. when the
    rendered objects failed validation, and nothing is written then.
    """
    out = out.absolute()
    _check_target(out)  # before the lock file is created beside it
    if dry_run:
        return _write(out, units, selected_plants, extra, True, render_many)
    try:
        with _Lock(out):
            return _write(out, units, selected_plants, extra, False, render_many)
    except OSError as exc:
        raise InfrastructureError(
            f"writing {out} failed: {exc}; the previous tree is unchanged"
        ) from exc


def _write(
    out: Path,
    units: Iterable[UnitOfWork],
    selected_plants: Sequence[str],
    extra: Callable[[], Sequence[RenderedFile]] | None,
    dry_run: bool,
    render_many: RenderMany | None,
) -> TreeSummary:
    if not dry_run:
        _recover(out)
    _check_target(out)
    old = _read_state(out) if out.is_dir() else None
    update = old is not None
    prev = old or _State()
    summary = TreeSummary(out=out, dry_run=dry_run)
    pid = os.getpid()
    staging_dir = out.parent / (f".{out.name}.update-{pid}" if update else f".{out.name}.tmp-{pid}")
    new_root = staging_dir / NEW if update else staging_dir
    staging = _Staging(new_root, dry_run)
    state = _State()
    rendered_ids: list[str] = []
    rewritten: set[str] = set()
    try:
        units = list(units)
        seen = {unit.id for unit in units}
        # the resident plan server's watch of the tree (never in a dry run, never by the CLI)
        monitor = None if dry_run else _refresh(out, fsmonitor.monitor_for(out))
        stats = _FileStats(out, use_cache=not dry_run, monitor=monitor)
        reuse: set[str] = set()
        for u in units:
            e = prev.deployments.get(u.id)
            if not update or e is None or not e.files:
                continue
            edited = _edited(e, stats)
            # named either way: restored to the same text, or replaced by the new rendering
            summary.restored += edited
            if not edited and e.hash == u.input_hash:
                reuse.add(u.id)
        renders = iter((render_many or _render_serially)([u for u in units if u.id not in reuse]))
        for unit in units:
            if unit.id in reuse:
                entry = prev.deployments[unit.id]
                summary.reused += 1
                action: Literal["added", "changed", "unchanged"] = "unchanged"
            else:
                rendered = next(renders)
                sums: list[tuple[str, str]] = []
                for f in rendered:
                    staging.write(f.path, f.content)
                    sums.append((f.path, content_digest(f.content.encode("utf-8"))))
                entry = _entry(unit.input_hash, unit.plants, sums)
                rendered_ids.append(unit.id)
                rewritten.update(_paths(entry.files))
                summary.rendered += 1
                summary.written += entry.count()
                action = "added" if unit.id not in prev.deployments else "changed"
            state.deployments[unit.id] = entry
            summary.files += entry.count()
            summary.changes.append(Change(unit.id, unit.plants, action))
        for _surplus in renders:  # exhausting it lets the renderer raise its verdict
            raise RuntimeError("render_many yielded more results than units")

        selected = set(selected_plants)
        removed: list[str] = []
        for dep_id, entry in sorted(prev.deployments.items()):
            if dep_id in seen:
                continue
            if selected and not selected.intersection(entry.plants):
                state.deployments[dep_id] = entry  # not part of this run: left untouched
                stats.keep(entry.digests())
                summary.files += entry.count()
                continue
            removed.append(dep_id)
            summary.changes.append(Change(dep_id, entry.plants, "removed"))

        fleet_files = list(extra()) if extra is not None else []
        fleet_sums = [(f.path, content_digest(f.content.encode("utf-8"))) for f in fleet_files]
        fleet_entry = _entry("", (), fleet_sums)
        state.fleet, state.fleet_sums = fleet_entry.files, fleet_entry.sums
        summary.files += len(fleet_files)
        fleet_changed = (
            not update or state.fleet != prev.fleet or state.fleet_sums != prev.fleet_sums
        )
        if update:
            # a fleet file whose recorded digest is the new one but whose text is not
            edited = _edited(_Entry("", (), prev.fleet, prev.fleet_sums), stats)
            new_sums = dict(fleet_sums)
            prev_fleet = dict(zip(_paths(prev.fleet), prev.fleet_sums, strict=True))
            hand = [rel for rel in edited if new_sums.get(rel) == prev_fleet[rel]]
            summary.restored += hand
            fleet_changed = fleet_changed or bool(hand)
        if fleet_changed:
            # staged (and swapped in) only when they changed: an unchanged fleet costs no
            # writes (on a first write every file is new, so fleet_changed holds)
            for f in fleet_files:
                staging.write(f.path, f.content)
            summary.written += len(fleet_files)
            rewritten.update(f.path for f in fleet_files)
        summary.restored.sort()
        state_text = state.dump()
        staging.write(STATE_FILE, state_text)
        summary.changes.sort(key=lambda c: c.deployment)
        if dry_run:
            return summary
        before = file_signature(out / STATE_FILE) if warm_enabled() else None
        if update:
            assert old is not None
            swaps = _plan_swaps(old, state, rendered_ids, removed, fleet_changed)
            _commit_update(out, staging_dir, swaps, state_text)
        else:
            _commit_first(out, staging_dir)
        _refresh(out, monitor)  # this run's own swaps: their files are proved by stat next time
        remember_written(out / STATE_FILE, before, True, state)
        everything = dict(fleet_sums)
        for e in state.deployments.values():
            everything.update(e.digests())
        stats.record(everything, rewritten)
    except BaseException:
        if not dry_run:
            _recover_update(out, staging_dir)  # rolls back unless the state was replaced
        raise
    return summary


def _plan_swaps(
    old: _State, new: _State, rendered: list[str], removed: list[str], fleet_changed: bool
) -> list[str]:
    """Every path an update swaps, sorted (the state file is not among them)."""
    old_owners, new_owners = _owners(old), _owners(new)
    paths: set[str] = set()
    for dep_id in [*rendered, *removed]:
        mine: list[str] = []
        if dep_id in old.deployments:
            mine += _paths(old.deployments[dep_id].files)
        if dep_id in new.deployments:
            mine += _paths(new.deployments[dep_id].files)
        paths |= _swap_paths(dep_id, mine, old_owners, new_owners)
    if fleet_changed:
        fleet_paths = [*_paths(old.fleet), *_paths(new.fleet)]
        paths |= _swap_paths(FLEET, fleet_paths, old_owners, new_owners)
    return sorted(paths)


def _commit_update(out: Path, staging: Path, paths: list[str], state_text: str) -> None:
    """Swap the staged paths in; replacing the state file commits."""
    swaps = [(rel, os.path.lexists(out / rel)) for rel in paths]
    journal = staging / JOURNAL
    with journal.open("w", encoding="utf-8") as fh:
        fh.write(_digest(state_text) + "\n")
        fh.writelines(f"{int(existed)} {rel}\n" for rel, existed in swaps)
        fh.flush()
        os.fsync(fh.fileno())
    parked_dirs: set[Path] = set()
    for rel, existed in swaps:
        current, new = out / rel, staging / NEW / rel
        if existed:
            parked = staging / OLD / rel
            if parked.parent not in parked_dirs:
                parked.parent.mkdir(parents=True, exist_ok=True)
                parked_dirs.add(parked.parent)
            current.rename(parked)
        if new.exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            new.rename(current)
        else:
            _prune_empty(out, rel)
    (out / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (staging / NEW / STATE_FILE).replace(out / STATE_FILE)  # the commit point
    shutil.rmtree(staging, ignore_errors=True)


def _commit_first(out: Path, tmp: Path) -> None:
    """Swap a freshly built tree in with two renames."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)  # an empty fleet writes nothing else
    (tmp / COMPLETE).touch()
    backup = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(backup)
    (tmp / COMPLETE).unlink()
    tmp.rename(out)
    shutil.rmtree(backup, ignore_errors=True)

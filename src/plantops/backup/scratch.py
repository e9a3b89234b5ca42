"""Scratch resources of backup, verify and restore: recorded before they exist, reclaimed
after a crash.

A run that is killed (``kill -9``, OOM, a reboot) leaves whatever it had made: a spool
directory, a scratch database, the role it restored as, a half-built database or
filestore. Every such resource gets a recognisable name (``plantops-dump-*``,
``plantops-restore-*``, ``plantops-verify-fs-*``, ``plantops_verify_*``,
``plantops_restore_*``, ``<db>_restoring_*``, ``.<filestore>.restoring-*``) and an entry in
a ledger *before* it is created. The entry is a small JSON file held under an exclusive
``flock`` for the life of the run: when the next run (or ``plantops backup cleanup``) can
take the lock, the owner is dead, whatever its pid has become since, and the resource
is reclaimed.

``restore --force`` replaces a user's database and filestore, which are not scratch: the
swap into place is one recorded unit. A ``swap`` entry (the target names and the
identities of the new copies: database oid, directory inode) is written first, then an
*aside* entry (``database-aside``, ``dir-aside``, same ``group``) before each old copy is
moved aside; the swap entry is dropped once both new copies hold their names, and only
then are the old copies removed. Reclaiming a swap entry whose run died rolls the whole
swap back (``roll_back``): new copies that took a name are removed, old ones put back,
so database and filestore are both old or both new, and nothing is lost. An aside entry
without its swap entry is a swap that finished: the old copy is removed.

The ledger holds names and connection parameters, never a password; reclaiming a
database or role connects with the credentials the current run was given (or libpq's
password file / service file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Connection parameters kept in the ledger: enough to find the server again, no secret.
_KEPT_PARAMS = ("host", "hostaddr", "port", "user", "service", "sslmode", "sslrootcert")


def ledger_dir() -> Path:
    """``$PLANTOPS_SCRATCH_LEDGER`` or ``$XDG_STATE_HOME/plantops/scratch``."""
    explicit = os.environ.get("PLANTOPS_SCRATCH_LEDGER")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "plantops" / "scratch"


@dataclass
class Entry:
    """One recorded resource: ``kind`` is ``dir``, ``database`` or ``role``; ``swap``
    for a restore's swap into place (``name`` the database, ``restore_to`` the
    filestore), ``dir-aside`` / ``database-aside`` for a user's resource moved away from
    ``restore_to`` by that swap (``extra["group"]`` ties them together)."""

    kind: str
    name: str
    server: dict[str, str] = field(default_factory=dict)
    restore_to: str = ""
    path: Path | None = None  # the ledger file
    extra: dict[str, str] = field(default_factory=dict)
    _fh: IO[str] | None = None

    @property
    def group(self) -> str:
        return self.extra.get("group", "")

    def as_json(self) -> str:
        body: dict[str, Any] = {"kind": self.kind, "name": self.name, "server": self.server}
        if self.restore_to:
            body["restore_to"] = self.restore_to
        if self.extra:
            body["extra"] = self.extra
        return json.dumps(body)


def server_params(params: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {k: v for k, v in params if k in _KEPT_PARAMS}


def record(
    kind: str,
    name: str,
    server: dict[str, str] | None = None,
    *,
    restore_to: str = "",
    extra: dict[str, str] | None = None,
) -> Entry:
    """Write and lock the ledger entry for a resource about to be created (or, for an
    ``*-aside`` kind, about to be moved from ``restore_to`` to ``name``)."""
    directory = ledger_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = Entry(kind, name, dict(server or {}), restore_to=restore_to, extra=dict(extra or {}))
    path = directory / f"{kind}-{uuid.uuid4().hex}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fh = os.fdopen(fd, "w")
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    fh.write(entry.as_json())
    fh.flush()
    os.fsync(fh.fileno())
    entry.path, entry._fh = path, fh
    return entry


def forget(entry: Entry) -> None:
    """The resource is gone (or handed over): drop its ledger entry."""
    if entry.path is not None:
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
    if entry._fh is not None:
        entry._fh.close()
        entry._fh = None


def make_dir(prefix: str, parent: Path | None = None) -> tuple[Path, Entry]:
    """A new private (0700) scratch directory ``<parent>/<prefix><random>``, recorded first."""
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    path = root / f"{prefix}{uuid.uuid4().hex[:12]}"
    entry = record("dir", str(path))
    path.mkdir(mode=0o700)
    return path, entry


def remove_dir(path: Path, entry: Entry) -> None:
    shutil.rmtree(path, ignore_errors=True)
    forget(entry)


@contextlib.contextmanager
def scratch_dir(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    path, entry = make_dir(prefix, parent)
    try:
        yield path
    finally:
        remove_dir(path, entry)


def _abandoned() -> Iterator[tuple[Entry, IO[str]]]:
    """Entries whose owner is dead: their lock can be taken. The caller holds it."""
    directory = ledger_dir()
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.json")):
        try:
            fh = path.open("r+")
        except OSError:
            continue
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()  # a live run holds it
            continue
        try:
            raw = json.loads(fh.read() or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, dict) or "kind" not in raw:
            # Killed between create and write: nothing was made after an empty entry.
            path.unlink(missing_ok=True)
            fh.close()
            continue
        yield (
            Entry(
                str(raw["kind"]),
                str(raw["name"]),
                dict(raw.get("server") or {}),
                str(raw.get("restore_to") or ""),
                path,
                {str(k): str(v) for k, v in dict(raw.get("extra") or {}).items()},
            ),
            fh,
        )


@dataclass(frozen=True)
class Reclaimed:
    kind: str
    name: str
    done: bool
    detail: str = ""


DropFn = Callable[[Entry], str]
RollBackFn = Callable[[Entry, list[Entry]], str]
ASIDE_KINDS = ("dir-aside", "database-aside")
_ORDER = {"dir": 0, "database": 1, "swap": 2, "dir-aside": 3, "database-aside": 3, "role": 4}


def reclaim(drop: DropFn | None, roll_back: RollBackFn | None = None) -> list[Reclaimed]:
    """Remove every resource of a dead run. ``drop(entry)`` drops a database or role, or
    the old database a finished swap left aside; ``roll_back(swap, asides)`` undoes a
    swap whose run died (both return what they did). With ``drop=None`` (no server at
    hand) only directories are reclaimed; the rest is reported and left recorded.

    Order: scratch directories and databases first, then swaps (rolled back as a unit
    with their aside entries), then what finished swaps left aside, then roles (a role
    owning a database cannot be dropped)."""
    out: list[Reclaimed] = []
    pending: list[tuple[Entry, IO[str]]] = sorted(
        _abandoned(), key=lambda item: _ORDER.get(item[0].kind, 5)
    )
    swaps = {e.group for e, _ in pending if e.kind == "swap" and e.group}
    asides_of: dict[str, list[tuple[Entry, IO[str]]]] = {}
    for item in pending:
        if item[0].kind in ASIDE_KINDS and item[0].group in swaps:
            asides_of.setdefault(item[0].group, []).append(item)
    pending = [p for p in pending if not (p[0].kind in ASIDE_KINDS and p[0].group in swaps)]
    for entry, fh in pending:
        unit = [(entry, fh), *asides_of.get(entry.group, [])] if entry.kind == "swap" else []
        try:
            if entry.kind == "dir":
                _remove_tree(Path(entry.name))
                out.append(Reclaimed("dir", entry.name, True))
            elif entry.kind == "dir-aside":  # its swap finished: the old copy goes
                _remove_tree(Path(entry.name))
                out.append(Reclaimed("dir", entry.name, True, f"replaced {entry.restore_to}"))
            elif drop is None or (entry.kind == "swap" and roll_back is None):
                out.append(Reclaimed(entry.kind, entry.name, False, "no server to drop it on"))
                continue
            elif entry.kind == "swap":
                assert roll_back is not None
                detail = roll_back(entry, [a for a, _ in unit[1:]])
                out.append(Reclaimed("restore", entry.name, True, detail))
                for aside, _ in unit[1:]:
                    assert aside.path is not None
                    aside.path.unlink(missing_ok=True)
            else:
                detail = drop(entry)
                out.append(Reclaimed(entry.kind.removesuffix("-aside"), entry.name, True, detail))
        except Exception as exc:  # reported, kept for the next attempt
            out.append(Reclaimed(entry.kind, entry.name, False, str(exc).splitlines()[0]))
            continue
        finally:
            for _, handle in unit or [(entry, fh)]:
                handle.close()
        assert entry.path is not None
        entry.path.unlink(missing_ok=True)
    return out


def _free(path: Path) -> bool:
    return not path.exists() and not path.is_symlink()


def dir_identity(path: Path) -> str:
    """``st_dev:st_ino`` of a directory: the same after a rename, another for any other
    directory put at its name."""
    st = path.lstat()
    return f"{st.st_dev}:{st.st_ino}"


def put_back_tree(aside: Path | None, restore_to: Path, new_identity: str) -> list[str]:
    """Undo a filestore swap: the new copy at ``restore_to`` (recognised by its
    identity, so nobody else's directory) is removed, the old one at ``aside`` moved
    back. Returns what was done."""
    if aside is not None and (not _recognised(aside.name) or aside.parent != restore_to.parent):
        raise ValueError(f"{aside} is not a plantops aside name next to {restore_to}: left alone")
    done: list[str] = []
    if (
        new_identity
        and restore_to.is_dir()
        and not restore_to.is_symlink()
        and dir_identity(restore_to) == new_identity
    ):
        # Renamed to a recorded scratch name first: a kill during the removal leaves a
        # directory the next reclaim knows.
        trash = restore_to.with_name(f".{restore_to.name}.restoring-{uuid.uuid4().hex[:8]}")
        entry = record("dir", str(trash))
        restore_to.rename(trash)
        shutil.rmtree(trash)
        forget(entry)
        done.append(f"removed the unfinished {restore_to}")
    if aside is not None and not _free(aside) and _free(restore_to):
        aside.rename(restore_to)
        done.append(f"put back {restore_to}")
    return done


def _remove_tree(path: Path) -> None:
    # Only names this module gives out are removed: a hand-edited ledger cannot aim it
    # at anything else.
    if not _recognised(path.name):
        raise ValueError(f"{path} is not a plantops scratch name: left alone")
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


DIR_PREFIXES = ("plantops-dump-", "plantops-restore-", "plantops-verify-fs-")


def _recognised(name: str) -> bool:
    return name.startswith(DIR_PREFIXES) or ".restoring-" in name or ".old-" in name


def describe(items: list[Reclaimed]) -> list[dict[str, Any]]:
    return [
        {"kind": r.kind, "name": r.name, "reclaimed": r.done, "detail": r.detail} for r in items
    ]

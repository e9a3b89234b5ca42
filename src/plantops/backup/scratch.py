"""Scratch resources of backup, verify and restore: recorded before they exist, reclaimed
after a crash.

A run that is killed (``kill -9``, OOM, a reboot) leaves whatever it had made: a spool
directory, a scratch database, the role it restored as, a half-built database or
filestore. Every such resource gets a recognisable name (``plantops-dump-*``,
``plantops-restore-*``, ``plantops-verify-fs-*``, ``plantops_verify_*``,
``plantops_restore_*``, ``<db>_restoring_*``, ``.<filestore>.restoring-*``) and an entry in
a ledger *before* it is created. What a run moves aside to replace it (``restore --force``:
the database and filestore being replaced) is recorded as an *aside* entry with the
name it came from: reclaiming puts it back when nothing took its place, and removes it
otherwise, so a kill between the two renames never loses the user's data. The entry is a small JSON file held under an exclusive
``flock`` for the life of the run: when the next run (or ``plantops backup cleanup``) can
take the lock, the owner is dead, whatever its pid has become since, and the resource
is reclaimed.

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
    """One recorded resource: ``kind`` is ``dir``, ``database`` or ``role``, or
    ``dir-aside`` / ``database-aside`` for a user's resource moved away from
    ``restore_to``."""

    kind: str
    name: str
    server: dict[str, str] = field(default_factory=dict)
    restore_to: str = ""
    path: Path | None = None  # the ledger file
    _fh: IO[str] | None = None

    def as_json(self) -> str:
        body: dict[str, Any] = {"kind": self.kind, "name": self.name, "server": self.server}
        if self.restore_to:
            body["restore_to"] = self.restore_to
        return json.dumps(body)


def server_params(params: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {k: v for k, v in params if k in _KEPT_PARAMS}


def record(
    kind: str, name: str, server: dict[str, str] | None = None, *, restore_to: str = ""
) -> Entry:
    """Write and lock the ledger entry for a resource about to be created (or, for an
    ``*-aside`` kind, about to be moved from ``restore_to`` to ``name``)."""
    directory = ledger_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = Entry(kind, name, dict(server or {}), restore_to=restore_to)
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
            ),
            fh,
        )


@dataclass(frozen=True)
class Reclaimed:
    kind: str
    name: str
    done: bool
    detail: str = ""


DropFn = Callable[[str, str, dict[str, str], str], str]
_ORDER = {"dir": 0, "dir-aside": 1, "database": 2, "database-aside": 3, "role": 4}


def reclaim(drop: DropFn | None) -> list[Reclaimed]:
    """Remove every resource of a dead run; ``drop(kind, name, server, restore_to)``
    drops databases and roles and puts back or drops a database moved aside, returning
    what it did (``None``: they are reported and left recorded). Databases go before
    roles (a role owning a database cannot be dropped); what a run made goes before what
    it moved aside, so the name to put it back under is free."""
    out: list[Reclaimed] = []
    pending: list[tuple[Entry, IO[str]]] = sorted(
        _abandoned(), key=lambda item: _ORDER.get(item[0].kind, 5)
    )
    for entry, fh in pending:
        try:
            if entry.kind == "dir":
                _remove_tree(Path(entry.name))
                out.append(Reclaimed("dir", entry.name, True))
            elif entry.kind == "dir-aside":
                detail = _put_back_tree(Path(entry.name), Path(entry.restore_to))
                out.append(Reclaimed("dir", entry.name, True, detail))
            elif drop is None:
                out.append(Reclaimed(entry.kind, entry.name, False, "no server to drop it on"))
                continue
            else:
                detail = drop(entry.kind, entry.name, entry.server, entry.restore_to)
                out.append(Reclaimed(entry.kind.removesuffix("-aside"), entry.name, True, detail))
        except Exception as exc:  # reported, kept for the next attempt
            out.append(Reclaimed(entry.kind, entry.name, False, str(exc).splitlines()[0]))
            continue
        finally:
            fh.close()
        assert entry.path is not None
        entry.path.unlink(missing_ok=True)
    return out


def _put_back_tree(aside: Path, restore_to: Path) -> str:
    """A filestore moved aside by a restore that died: back in place if nothing took its
    place (the restore did not finish), removed if the restored one did."""
    if not _recognised(aside.name) or aside.parent != restore_to.parent:
        raise ValueError(f"{aside} is not a plantops aside name next to {restore_to}: left alone")
    if not aside.exists() and not aside.is_symlink():
        return ""
    if not restore_to.exists() and not restore_to.is_symlink():
        aside.rename(restore_to)
        return f"put back as {restore_to}"
    _remove_tree(aside)
    return ""


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

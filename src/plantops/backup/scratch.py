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
    """One recorded resource: ``kind`` is ``dir``, ``database`` or ``role``."""

    kind: str
    name: str
    server: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # the ledger file
    _fh: IO[str] | None = None

    def as_json(self) -> str:
        return json.dumps({"kind": self.kind, "name": self.name, "server": self.server})


def server_params(params: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {k: v for k, v in params if k in _KEPT_PARAMS}


def record(kind: str, name: str, server: dict[str, str] | None = None) -> Entry:
    """Write and lock the ledger entry for a resource about to be created."""
    directory = ledger_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = Entry(kind, name, dict(server or {}))
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
        yield Entry(str(raw["kind"]), str(raw["name"]), dict(raw.get("server") or {}), path), fh


@dataclass(frozen=True)
class Reclaimed:
    kind: str
    name: str
    done: bool
    detail: str = ""


DropFn = Callable[[str, str, dict[str, str]], None]


def reclaim(drop: DropFn | None) -> list[Reclaimed]:
    """Remove every resource of a dead run; ``drop(kind, name, server)`` drops databases
    and roles (``None``: they are reported and left recorded). Databases go before roles
    (a role owning a database cannot be dropped)."""
    out: list[Reclaimed] = []
    pending: list[tuple[Entry, IO[str]]] = sorted(
        _abandoned(), key=lambda item: {"dir": 0, "database": 1, "role": 2}.get(item[0].kind, 3)
    )
    for entry, fh in pending:
        try:
            if entry.kind == "dir":
                _remove_tree(Path(entry.name))
                out.append(Reclaimed("dir", entry.name, True))
            elif drop is None:
                out.append(Reclaimed(entry.kind, entry.name, False, "no server to drop it on"))
                continue
            else:
                drop(entry.kind, entry.name, entry.server)
                out.append(Reclaimed(entry.kind, entry.name, True))
        except Exception as exc:  # reported, kept for the next attempt
            out.append(Reclaimed(entry.kind, entry.name, False, str(exc).splitlines()[0]))
            continue
        finally:
            fh.close()
        assert entry.path is not None
        entry.path.unlink(missing_ok=True)
    return out


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

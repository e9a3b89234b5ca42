"""Making a backup: PostgreSQL + filestore → archive objects → (encrypt) → store → catalog.

Formats:

* ``odoo-zip`` — exactly Odoo's database-manager zip: ``dump.sql`` (plain SQL from
  ``pg_dump --no-owner``), ``manifest.json``, ``filestore/…``.
* ``native`` — ``pg_dump -Fd -j N -Z0`` spooled locally, each file stored zstd
  compressed under ``db/``, plus ``filestore.tar.zst`` and ``manifest.json``.
* ``dump`` — ``pg_dump -Fc --no-owner`` (Odoo's "dump" option) as ``db.dump``, plus
  ``filestore.tar.zst`` and ``manifest.json``.

Every object name gets ``.age`` when encrypted. ``COMPLETE.json`` (never encrypted;
it lists every object with size and sha256) is written last; the catalog row is
marked ``complete`` only after it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import subprocess
import tarfile
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import zstandard

from plantops.backup import scratch
from plantops.backup.crypto import AgeProcessWriter, KeyProvider, encrypting_writer
from plantops.backup.errors import DatabaseError, StoreError
from plantops.backup.pg import PgTarget, exported_snapshot, find_pg_tool, tool_error
from plantops.backup.policy import BackupPolicy
from plantops.backup.stores import ObjectStore, ObjectWriter
from plantops.backup.streams import CHUNK, PipedWriter, copy_stream
from plantops.errors import PlantopsError, UserError, resolve_path
from plantops.inputs import file_kind
from plantops.names import check_backup_id, check_database, check_label
from plantops.store import BackupRecord, Catalog, ObjectRecord

FORMATS = ("odoo-zip", "native", "dump")
MARKER = "COMPLETE.json"
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class FilestoreMissing(UserError):
    """The filestore directory named for the backup does not exist (bad input, exit 2)."""


class NotOdoo(UserError):
    """The database is not an Odoo database; refused unless asked for (exit 2)."""


class EncryptionRequired(UserError):
    """The tier's policy requires encryption and no key was given (exit 2)."""


@dataclass(frozen=True)
class BackupRequest:
    db: PgTarget
    filestore: Path | None
    plant: str
    env: str
    policy: BackupPolicy
    fmt: str = "odoo-zip"
    jobs: int = 2
    spool_dir: Path | None = None
    zstd_level: int = 3
    allow_non_odoo: bool = False


def backup_location(plant: str, env: str, started: datetime, backup_id: str) -> str:
    """The store prefix of one backup; every part is checked against its name rule here,
    the one place that builds it (runs and imports alike)."""
    check_label(plant, "--plant")
    check_label(env, "--env")
    check_backup_id(backup_id, "backup id")
    return f"{plant}/{env}/{started.strftime('%Y%m%dT%H%M%SZ')}-{backup_id}"


def check_encryption(policy: BackupPolicy, keys: KeyProvider | None) -> None:
    """Refuse a clear backup of a tier whose policy requires encryption."""
    if policy.encryption == "required" and keys is None:
        raise EncryptionRequired(
            f"tier {policy.tier} requires encrypted backups and no key was given: pass"
            " --key FILE (an age recipient line age1… is enough to back up) or set"
            " $PLANTOPS_BACKUP_KEY; nothing was written. To allow clear backups of this"
            f" tier, set tiers.{policy.tier}.backup.encryption: optional in fleet.yaml"
        )


def check_odoo(manifest: dict[str, Any], target: str) -> None:
    """Refuse a database without Odoo's module registry and its installed ``base``.

    odoo/modules/db.py ``is_initialized`` decides a database is Odoo's by the presence of
    ``ir_module_module``, and odoo/modules/loading.py ``load_modules`` starts by loading
    ``base``: a database without an installed base cannot be served by Odoo, so a backup
    of it would only fail at verify (and restore) time.
    """
    modules = manifest.get("modules") or {}
    if "base" not in modules:
        why = (
            "it has no Odoo module registry (table ir_module_module)"
            if not modules
            else "its module registry has no installed 'base' module"
        )
        raise NotOdoo(
            f"{target} is not an Odoo database: {why}. Nothing was written; pass"
            " --allow-non-odoo to back it up anyway (verify will then fail its Odoo checks)"
        )


class _Sink:
    """Plaintext end of one object: optional age encryption in front of the store writer."""

    def __init__(self, writer: ObjectWriter, keys: KeyProvider | None) -> None:
        self.writer = writer
        self.enc: PipedWriter | AgeProcessWriter | None = (
            encrypting_writer(writer, keys) if keys else None
        )

    def write(self, data: bytes, /) -> int:
        if self.enc is not None:
            return self.enc.write(data)
        return self.writer.write(data)

    def flush(self) -> None:
        pass

    def finish(self) -> ObjectRecord:
        if self.enc is not None:
            self.enc.close()
        stored = self.writer.commit()
        return ObjectRecord(stored.key, stored.size_bytes, stored.sha256, self.enc is not None)

    def abort(self) -> None:
        if isinstance(self.enc, AgeProcessWriter):
            self.enc.abort()
        elif self.enc is not None:
            with contextlib.suppress(Exception):  # the object is thrown away anyway
                self.enc.close()
        self.writer.abort()


class _Writer:
    """Writes the objects of one backup under its location."""

    def __init__(self, store: ObjectStore, location: str, keys: KeyProvider | None) -> None:
        self.store = store
        self.location = location
        self.keys = keys
        self.objects: list[ObjectRecord] = []

    def put(self, name: str, produce: Callable[[IO[bytes]], None]) -> ObjectRecord:
        stored_name = name + (".age" if self.keys else "")
        sink = _Sink(self.store.writer(f"{self.location}/{stored_name}"), self.keys)
        try:
            produce(sink)  # type: ignore[arg-type]
            rec = sink.finish()
        except BaseException:
            sink.abort()
            raise
        rec = ObjectRecord(stored_name, rec.size_bytes, rec.sha256, rec.encrypted)
        self.objects.append(rec)
        return rec

    def put_marker(self, body: dict[str, Any]) -> None:
        """Write the completion marker: ``body`` plus every object written so far (name,
        size, sha256) — the last object of a backup, so its presence means complete."""
        body = {
            **body,
            "objects": [
                {"name": o.name, "size": o.size_bytes, "sha256": o.sha256} for o in self.objects
            ],
        }
        w = self.store.writer(f"{self.location}/{MARKER}")
        try:
            w.write(json.dumps(body, indent=2, sort_keys=True).encode())
            w.commit()
        except BaseException:
            w.abort()
            raise


def _stderr_file() -> IO[bytes]:
    return tempfile.TemporaryFile()


def _pg_dump_to(out: IO[bytes], args: list[str], target: PgTarget, major: int) -> None:
    """Stream ``pg_dump args`` stdout into ``out`` in chunks."""
    cmd = [find_pg_tool("pg_dump", major), *args]
    with _stderr_file() as errf:
        try:
            proc = subprocess.Popen(
                cmd, env=target.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf
            )
        except OSError as exc:
            raise DatabaseError(f"cannot run pg_dump: {exc}") from exc
        assert proc.stdout is not None
        try:
            copy_stream(proc.stdout, out)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        rc = proc.wait()
        if rc != 0:
            errf.seek(0)
            raise DatabaseError(f"pg_dump of {target.display()} failed: {tool_error(errf.read())}")


def _zstd_writer(out: IO[bytes], level: int) -> Any:
    cctx = zstandard.ZstdCompressor(level=level, threads=-1)
    return cctx.stream_writer(out, closefd=False, write_size=CHUNK)


@dataclass(frozen=True)
class Skipped:
    """A filestore entry that was not archived, and why (reported, never silent)."""

    path: str  # relative to the filestore, POSIX
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class FilestoreEntry:
    arcname: str  # relative to the filestore, POSIX
    path: Path  # what to open: the entry itself, or the in-tree target of its link


class FilestoreScan:
    """The regular files of a filestore, read as :mod:`plantops.inputs` reads a spec tree.

    A filestore is Odoo's ``<data_dir>/filestore/<db>``: two-level hashed names, regular
    files only (odoo/addons/base/models/ir_attachment.py ``_file_write`` writes each
    attachment as a regular file under ``_full_path``). Anything else is not Odoo data
    and may be hostile: a link to ``/etc/shadow`` must not be archived with the target's
    contents, a FIFO must not block the backup. So:

    - a symbolic link is followed only when its target stays inside the filestore and is
      a regular file (its content is stored under the link's name); links out of the
      tree, dangling links, loops and links to directories are skipped;
    - FIFOs, sockets and devices are skipped;
    - every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the
      open descriptor, so an entry swapped for a link or a FIFO after the scan is
      skipped too (and a FIFO can never block the open).

    Every skipped entry is listed in :attr:`skipped` (recorded with the backup).
    """

    def __init__(self, root: Path) -> None:
        self.root = resolve_path(root)
        self.skipped: list[Skipped] = []

    def _skip(self, rel: str, reason: str) -> None:
        self.skipped.append(Skipped(rel, reason))

    def _link_target(self, path: Path, rel: str) -> Path | None:
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            self._skip(rel, f"dangling symbolic link to {str(path.readlink())!r}")
            return None
        except (RuntimeError, OSError):  # ELOOP: RuntimeError before 3.13, OSError after
            self._skip(rel, "symbolic link loop")
            return None
        if not target.is_relative_to(self.root):
            self._skip(rel, f"symbolic link leads outside the filestore (to {str(target)!r})")
            return None
        try:
            info = target.stat()
        except OSError as exc:
            self._skip(rel, f"cannot read the link's target: {exc.strerror or exc}")
            return None
        if not stat.S_ISREG(info.st_mode):
            self._skip(rel, f"symbolic link to {file_kind(info.st_mode)} (not followed)")
            return None
        return target

    def entries(self) -> Iterator[FilestoreEntry]:
        """Regular files in sorted order (links to directories are never descended)."""

        def on_error(exc: OSError) -> None:
            where = Path(exc.filename or self.root)
            rel = where.relative_to(self.root).as_posix() if where != self.root else "."
            self._skip(rel, f"cannot read: {exc.strerror or exc}")

        for root, dirs, files in os.walk(self.root, onerror=on_error, followlinks=False):
            base = Path(root)
            rel_root = base.relative_to(self.root)
            # os.walk lists links to directories among ``dirs`` without descending.
            for name in sorted(dirs):
                if (base / name).is_symlink():
                    rel = (rel_root / name).as_posix()
                    if self._link_target(base / name, rel) is not None:
                        self._skip(rel, "symbolic link (not followed)")
            dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
            for name in sorted(files):
                path = base / name
                rel = (rel_root / name).as_posix()
                try:
                    info = path.lstat()
                except OSError as exc:
                    self._skip(rel, f"cannot read: {exc.strerror or exc}")
                    continue
                if stat.S_ISLNK(info.st_mode):
                    target = self._link_target(path, rel)
                    if target is not None:
                        yield FilestoreEntry(rel, target)
                elif stat.S_ISREG(info.st_mode):
                    yield FilestoreEntry(rel, path)
                else:
                    self._skip(rel, f"{file_kind(info.st_mode)}, not a regular file")

    @contextlib.contextmanager
    def open(self, entry: FilestoreEntry) -> Iterator[tuple[IO[bytes], os.stat_result] | None]:
        """The entry opened for reading, or None (and skipped) if it is no longer a
        regular file."""
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._skip(entry.arcname, "became a symbolic link while being read")
            else:
                self._skip(entry.arcname, f"cannot read: {exc.strerror or exc}")
            yield None
            return
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            self._skip(entry.arcname, f"became {file_kind(info.st_mode)} while being read")
            yield None
            return
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            yield fh, info


def write_filestore_tar(
    out: IO[bytes], filestore: Path | None, level: int, scan: FilestoreScan | None = None
) -> None:
    """The filestore's regular files as a zstd-compressed tar stream (empty if none)."""
    zw = _zstd_writer(out, level)
    with tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if filestore is not None:
            scan = scan or FilestoreScan(filestore)
            for entry in scan.entries():
                with scan.open(entry) as opened:
                    if opened is None:
                        continue
                    fh, _ = opened
                    # From the open descriptor: a regular file, whatever the path is now.
                    info = tar.gettarinfo(arcname=entry.arcname, fileobj=fh)
                    # Whole-second mtimes and no hard links: plain ustar headers, no pax
                    # record per file, which halves the headers a restore must parse.
                    info.mtime = int(info.mtime)
                    tar.addfile(info, fh)
    zw.flush(zstandard.FLUSH_FRAME)
    zw.close()


def _zip_info(arcname: str, info: os.stat_result) -> zipfile.ZipInfo:
    # As zipfile.ZipInfo.from_file does for ZipFile.write, but from the open descriptor's
    # stat; zip cannot hold dates before 1980.
    date = time.localtime(info.st_mtime)[:6]
    if date[0] < 1980:
        date = (1980, 1, 1, 0, 0, 0)
    zinfo = zipfile.ZipInfo(arcname, date)
    zinfo.external_attr = (info.st_mode & 0xFFFF) << 16
    zinfo.file_size = info.st_size
    zinfo.compress_type = zipfile.ZIP_DEFLATED
    return zinfo


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    # Odoo writes json.dump(manifest, fh, indent=4).
    return json.dumps(manifest, indent=4).encode()


def _write_odoo_zip(
    out: IO[bytes],
    req: BackupRequest,
    snapshot_id: str,
    manifest: dict[str, Any],
    major: int,
    scan: FilestoreScan | None,
) -> None:
    # Odoo's zip_dir puts dump.sql first, then the rest; deflated, zip64 allowed.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        with zf.open("dump.sql", "w", force_zip64=True) as member:
            _pg_dump_to(
                member,
                ["--no-owner", f"--snapshot={snapshot_id}", req.db.dbname],
                req.db,
                major,
            )
        zf.writestr("manifest.json", _manifest_bytes(manifest))
        if scan is not None:
            for entry in scan.entries():
                with scan.open(entry) as opened:
                    if opened is None:
                        continue
                    fh, info = opened
                    zinfo = _zip_info(f"filestore/{entry.arcname}", info)
                    with zf.open(zinfo, "w", force_zip64=info.st_size > zipfile.ZIP64_LIMIT) as m:
                        copy_stream(fh, m)


def _write_native_db(w: _Writer, req: BackupRequest, snapshot_id: str, major: int) -> None:
    spool, spool_entry = scratch.make_dir("plantops-dump-", req.spool_dir)
    try:
        target_dir = spool / "db"
        cmd = [
            find_pg_tool("pg_dump", major),
            "-Fd",
            f"-j{max(1, req.jobs)}",
            "-Z0",
            "--no-owner",
            f"--snapshot={snapshot_id}",
            "-f",
            str(target_dir),
            req.db.dbname,
        ]
        proc = subprocess.run(cmd, env=req.db.env(), capture_output=True, check=False)
        if proc.returncode != 0:
            raise DatabaseError(f"pg_dump of {req.db.display()} failed: {tool_error(proc.stderr)}")
        for path in sorted(target_dir.iterdir()):

            def produce(out: IO[bytes], path: Path = path) -> None:
                zw = _zstd_writer(out, req.zstd_level)
                with path.open("rb") as fh:
                    copy_stream(fh, zw)
                zw.flush(zstandard.FLUSH_FRAME)
                zw.close()

            w.put(f"db/{path.name}.zst", produce)
            path.unlink()  # free spool space as we go
    except OSError as exc:
        raise StoreError(f"spool {spool}: {exc.strerror or exc}") from exc
    finally:
        scratch.remove_dir(spool, spool_entry)


def run_backup(
    req: BackupRequest,
    catalog: Catalog,
    store: ObjectStore,
    keys: KeyProvider | None = None,
    clock: Clock = utcnow,
) -> BackupRecord:
    """Take one backup; only a fully written backup is ever marked complete."""
    if req.fmt not in FORMATS:
        raise UserError(f"unknown backup format {req.fmt!r}; use one of {', '.join(FORMATS)}")
    check_label(req.plant, "--plant")
    check_label(req.env, "--env")
    check_database(req.db.dbname, "database")
    check_encryption(req.policy, keys)
    if req.filestore is not None and not req.filestore.is_dir():
        raise FilestoreMissing(
            f"--filestore {req.filestore} does not exist or is not a directory"
            " (expected <data_dir>/filestore/<db>)"
        )
    scan = FilestoreScan(req.filestore) if req.filestore is not None else None
    backup_id = uuid.uuid4().hex[:12]
    with exported_snapshot(req.db) as snap:
        if not req.allow_non_odoo:
            check_odoo(snap.manifest, req.db.display())
        started = clock()
        location = backup_location(req.plant, req.env, started, backup_id)
        catalog.create_backup(
            backup_id=backup_id,
            plant=req.plant,
            env=req.env,
            tier=req.policy.tier,
            fmt=req.fmt,
            store_url=store.url,
            location=location,
            started_at=started,
            host=socket.gethostname(),
            pid=os.getpid(),
            key_id=keys.key_id if keys else None,
            db_name=req.db.dbname,
            policy=req.policy.as_dict(),
        )
        w = _Writer(store, location, keys)
        major = snap.server_major
        try:
            if req.fmt == "odoo-zip":
                w.put(
                    "backup.zip",
                    lambda out: _write_odoo_zip(
                        out, req, snap.snapshot_id, snap.manifest, major, scan
                    ),
                )
            elif req.fmt == "dump":
                args = ["-Fc", "--no-owner", f"--snapshot={snap.snapshot_id}", req.db.dbname]
                w.put("db.dump", lambda out: _pg_dump_to(out, args, req.db, major))
            else:
                _write_native_db(w, req, snap.snapshot_id, major)
            if req.fmt != "odoo-zip":
                w.put(
                    "filestore.tar.zst",
                    lambda out: write_filestore_tar(out, req.filestore, req.zstd_level, scan),
                )
                manifest_bytes = _manifest_bytes(snap.manifest)

                def put_manifest(out: IO[bytes]) -> None:
                    out.write(manifest_bytes)

                w.put("manifest.json", put_manifest)
            finished = clock()
            skipped = [e.as_dict() for e in scan.skipped] if scan is not None else []
            w.put_marker(
                {
                    "backup_id": backup_id,
                    "format": req.fmt,
                    "plant": req.plant,
                    "env": req.env,
                    "started_at": started.isoformat(),
                    "finished_at": finished.isoformat(),
                    "key_id": keys.key_id if keys else None,
                    "row_counts": snap.row_counts,
                    "filestore_skipped": skipped,
                }
            )
            catalog.complete_backup(
                backup_id,
                objects=w.objects,
                manifest=snap.manifest,
                row_counts=snap.row_counts,
                pg_version=str(snap.manifest.get("pg_version", "")),
                odoo_version=str(snap.manifest.get("version", "")),
                finished_at=finished,
                origin={"filestore_skipped": skipped} if skipped else None,
            )
        except BaseException as exc:
            _fail(catalog, store, backup_id, location, exc, clock)
            if isinstance(exc, OSError) and not isinstance(exc, PlantopsError):
                raise StoreError(f"backup {backup_id} failed: {exc}") from exc
            raise
    return catalog.get(backup_id)


def _fail(
    catalog: Catalog,
    store: ObjectStore,
    backup_id: str,
    location: str,
    exc: BaseException,
    clock: Clock,
) -> None:
    # Leftovers that cannot be deleted now are flagged (status=failed) and cleaned later.
    with contextlib.suppress(PlantopsError):
        store.delete_prefix(location)
    with contextlib.suppress(PlantopsError):
        catalog.set_status(
            backup_id, "failed", error=str(exc) or type(exc).__name__, finished_at=clock()
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> datetime | None:
    """When process ``pid`` started (Linux ``/proc``; None where that is unknown).

    Field 22 of ``/proc/<pid>/stat`` is the start in clock ticks after boot, ``btime``
    in ``/proc/stat`` the boot time (proc(5)). The command name (field 2) may hold
    spaces and parentheses: the fields are counted after its closing ``)``."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat_line.rsplit(")", 1)[1].split()[19])
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / hz, UTC)


def run_alive(pid: int, started_at: datetime) -> bool:
    """The process that began a run at ``started_at`` is still running: ``pid`` is alive
    and is not a later process that got the same pid once the run's died (the start is
    compared with 2 s of slack for ``btime``'s whole seconds)."""
    if not pid_alive(pid):
        return False
    began = process_started(pid)
    when = started_at if started_at.tzinfo is not None else started_at.replace(tzinfo=UTC)
    return began is None or (began - when).total_seconds() <= 2.0


def reap_abandoned(
    catalog: Catalog,
    open_store: Callable[[str], ObjectStore],
    *,
    clock: Clock = utcnow,
    stale_after_hours: float = 24.0,
) -> list[str]:
    """Flag ``running`` backups whose process died as ``abandoned`` and delete their objects.

    A dead import's row is deleted instead: a failed import leaves nothing behind.
    Also removes leftover objects of ``failed`` backups. Returns the ids handled.
    """
    host = socket.gethostname()
    handled: list[str] = []
    now = clock()
    for b in catalog.list_backups(statuses=["running", "failed"]):
        if b.status == "running":
            if b.host == host:
                dead = not run_alive(b.pid, b.started_at)
            else:
                dead = (now - b.started_at).total_seconds() > stale_after_hours * 3600
            if not dead:
                continue
        try:
            store = open_store(b.store_url)
            leftovers = store.list(b.location + "/")
            if leftovers:
                store.delete_prefix(b.location)
        except PlantopsError:
            continue
        if b.status == "running" and b.source == "imported":
            # An import that died leaves no trace (the file it read is still there).
            catalog.discard_backup(b.id)
            handled.append(b.id)
        elif b.status == "running":
            catalog.set_status(
                b.id, "abandoned", error="backup process died before completing", finished_at=now
            )
            handled.append(b.id)
        elif leftovers:
            handled.append(b.id)
    return handled

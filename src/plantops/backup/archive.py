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
import json
import os
import socket
import subprocess
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import zstandard

from plantops.backup import scratch
from plantops.backup.crypto import KeyProvider, encrypting_writer
from plantops.backup.errors import DatabaseError, StoreError
from plantops.backup.pg import PgTarget, exported_snapshot, find_pg_tool, tool_error
from plantops.backup.policy import BackupPolicy
from plantops.backup.stores import ObjectStore, ObjectWriter
from plantops.backup.streams import CHUNK, PipedWriter, copy_stream
from plantops.errors import InfrastructureError, PlantopsError, UserError
from plantops.store import BackupRecord, Catalog, ObjectRecord

FORMATS = ("odoo-zip", "native", "dump")
MARKER = "COMPLETE.json"
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class FilestoreMissing(InfrastructureError):
    """The filestore directory named for the backup does not exist."""


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


def backup_location(plant: str, env: str, started: datetime, backup_id: str) -> str:
    return f"{plant}/{env}/{started.strftime('%Y%m%dT%H%M%SZ')}-{backup_id}"


class _Sink:
    """Plaintext end of one object: optional age encryption in front of the store writer."""

    def __init__(self, writer: ObjectWriter, keys: KeyProvider | None) -> None:
        self.writer = writer
        self.enc: PipedWriter | None = encrypting_writer(writer, keys) if keys else None

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
        if self.enc is not None:
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


def write_filestore_tar(out: IO[bytes], filestore: Path | None, level: int) -> None:
    """The filestore's contents as a zstd-compressed tar stream (empty if none)."""
    zw = _zstd_writer(out, level)
    with tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if filestore is not None:
            for root, dirs, files in os.walk(filestore):
                dirs.sort()
                rel_root = Path(root).relative_to(filestore)
                for name in sorted(files):
                    path = Path(root) / name
                    info = tar.gettarinfo(path, arcname=(rel_root / name).as_posix())
                    if info.islnk():  # a hard link: store the content again
                        info.type, info.linkname = tarfile.REGTYPE, ""
                        info.size = path.stat().st_size
                    if not info.isreg():
                        continue  # sockets, fifos: not Odoo data
                    # Whole-second mtimes and no hard links: plain ustar headers, no pax
                    # record per file, which halves the headers a restore must parse.
                    info.mtime = int(info.mtime)
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
    zw.flush(zstandard.FLUSH_FRAME)
    zw.close()


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    # Odoo writes json.dump(manifest, fh, indent=4).
    return json.dumps(manifest, indent=4).encode()


def _write_odoo_zip(
    out: IO[bytes], req: BackupRequest, snapshot_id: str, manifest: dict[str, Any], major: int
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
        if req.filestore is not None:
            for root, dirs, files in os.walk(req.filestore):
                dirs.sort()
                rel_root = Path(root).relative_to(req.filestore)
                for name in sorted(files):
                    arc = ("filestore" / rel_root / name).as_posix()
                    zf.write(Path(root) / name, arcname=arc)


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
    if req.filestore is not None and not req.filestore.is_dir():
        raise FilestoreMissing(
            f"filestore {req.filestore} does not exist or is not a directory"
            " (expected <data_dir>/filestore/<db>)"
        )
    backup_id = uuid.uuid4().hex[:12]
    with exported_snapshot(req.db) as snap:
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
                    lambda out: _write_odoo_zip(out, req, snap.snapshot_id, snap.manifest, major),
                )
            elif req.fmt == "dump":
                args = ["-Fc", "--no-owner", f"--snapshot={snap.snapshot_id}", req.db.dbname]
                w.put("db.dump", lambda out: _pg_dump_to(out, args, req.db, major))
            else:
                _write_native_db(w, req, snap.snapshot_id, major)
            if req.fmt != "odoo-zip":
                w.put(
                    "filestore.tar.zst",
                    lambda out: write_filestore_tar(out, req.filestore, req.zstd_level),
                )
                manifest_bytes = _manifest_bytes(snap.manifest)

                def put_manifest(out: IO[bytes]) -> None:
                    out.write(manifest_bytes)

                w.put("manifest.json", put_manifest)
            finished = clock()
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
                    "objects": [
                        {"name": o.name, "size": o.size_bytes, "sha256": o.sha256}
                        for o in w.objects
                    ],
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
                dead = not pid_alive(b.pid)
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

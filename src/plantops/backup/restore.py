"""Reading a backup back: checksum-checked, decrypted streams → a database + a filestore.

Restores land in a temporary database and directory first and are renamed into
place only when complete, so a failed restore never leaves a half-restored target
and never touches an existing one unless ``force`` was given.

Code in a dump (functions behind indexes, materialized views, defaults) runs with the
privileges of whoever restores it. ``ScratchDatabase`` therefore builds every database
as a throwaway role with no privilege beyond owning that one database; pg_restore and
psql connect as it, the admin connection only creates, hands over and drops. A plain
dump is scanned for psql meta-commands (``backup.dumpscan``) before psql sees it.
Every scratch resource is recorded in the ``backup.scratch`` ledger before it exists.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import zstandard

from plantops.backup import scratch
from plantops.backup.crypto import KeyProvider, decrypting_reader
from plantops.backup.dumpscan import UnsafeDump, scan_dump
from plantops.backup.errors import CorruptArchive, DatabaseError, TargetExists, WrongKey
from plantops.backup.pg import (
    PgTarget,
    admin_target,
    create_database,
    create_restore_role,
    current_user,
    database_exists,
    database_oid,
    drop_database,
    drop_role,
    find_pg_tool,
    hand_over,
    move_database,
    rename_database,
    tool_error,
)
from plantops.backup.stores import ObjectStore
from plantops.backup.streams import CHUNK, HashingReader, Readable, copy_stream
from plantops.backup.tarstream import DIRECTORY, HARDLINK, TarReader
from plantops.errors import UserError, resolve_path
from plantops.store import BackupRecord, ObjectRecord


def check_key(record: BackupRecord, keys: KeyProvider | None) -> None:
    """Fail early, with a clear message, when the key cannot be the right one."""
    if record.key_id is None:
        return
    if keys is None:
        raise WrongKey(
            f"backup {record.id} is encrypted with key {record.key_id}:"
            " pass --key FILE or set $PLANTOPS_BACKUP_KEY"
        )
    if keys.key_id != record.key_id:
        raise WrongKey(
            f"backup {record.id} was encrypted with key {record.key_id},"
            f" the key given is {keys.key_id}"
        )


class BackupReader:
    """Opens the objects of one complete backup."""

    def __init__(self, record: BackupRecord, store: ObjectStore, keys: KeyProvider | None) -> None:
        if record.status != "complete":
            raise UserError(f"backup {record.id} is {record.status}, not complete: cannot restore")
        check_key(record, keys)
        self.record = record
        self.store = store
        self.keys = keys
        self.objects = {o.name: o for o in record.objects}

    def names(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self.objects if n.startswith(prefix))

    def _obj(self, name: str) -> ObjectRecord:
        for candidate in (name, name + ".age"):
            if candidate in self.objects:
                return self.objects[candidate]
        raise CorruptArchive(f"backup {self.record.id} has no object {name}")

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[Readable]:
        """The plaintext of object ``name``; a checksum mismatch raises at EOF."""
        obj = self._obj(name)
        raw = self.store.open_read(f"{self.record.location}/{obj.name}")
        hashed = HashingReader(
            raw, f"{self.record.location}/{obj.name}", obj.sha256, obj.size_bytes
        )
        try:
            if obj.encrypted:
                plain = decrypting_reader(hashed, self.keys, obj.name)
                try:
                    yield plain
                finally:
                    plain.close()
            else:
                yield hashed
        finally:
            hashed.close()

    def read_fully(self, name: str, out: IO[bytes]) -> None:
        with self.open(name) as src:
            copy_stream(src, out)

    def spool(self, name: str, directory: Path) -> Path:
        """Copy an object's plaintext to a local file (for formats that need seeking)."""
        path = directory / Path(name).name
        with path.open("wb") as fh:
            self.read_fully(name, fh)
        return path


def _safe_member(dest: Path, name: str) -> Path:
    target = resolve_path(dest / name)
    if not target.is_relative_to(resolve_path(dest)):
        raise CorruptArchive(f"archive member {name!r} escapes the target directory")
    return target


class Cancelled(Exception):
    """The other half of a restore failed: stop early (never shown to a user)."""


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled


def _member_path(dest: str, name: str) -> str:
    """``dest/name`` for an archive member, refusing names that leave ``dest``.

    Lexical on purpose (no ``resolve()`` per file): extraction only ever creates
    regular files and directories in a new, empty ``dest``, so no symlink can
    redirect a path that stays inside it lexically.
    """
    norm = posixpath.normpath(name)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise CorruptArchive(f"archive member {name!r} escapes the target directory")
    return posixpath.join(dest, norm)


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _ParallelWriter:
    """Writes small files from a pool of threads: creating a file costs far more in the
    kernel than parsing its tar header, and the syscalls run without the GIL. At most
    ``inflight`` files (each ≤ ``CHUNK``) wait in memory at any time.
    """

    def __init__(self, workers: int = 2, inflight: int = 64) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fs-write")
        self.inflight = inflight
        self.slots = threading.BoundedSemaphore(inflight)
        self.error: BaseException | None = None

    def _run(self, path: str, data: bytes) -> None:
        try:
            _write_file(path, data)
        except BaseException as exc:
            self.error = self.error or exc
        finally:
            self.slots.release()

    def submit(self, path: str, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.slots.acquire()
        self.pool.submit(self._run, path, data)

    def drain(self) -> None:
        """Wait until every submitted file is written."""
        for _ in range(self.inflight):
            self.slots.acquire()
        for _ in range(self.inflight):
            self.slots.release()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.error is not None:
            raise self.error


def extract_filestore_tar(
    reader: BackupReader, dest: Path, cancel: threading.Event | None = None
) -> int:
    """Stream ``filestore.tar.zst`` into ``dest`` (new or empty); returns the file count."""
    count = 0
    dest.mkdir(parents=True, exist_ok=True)
    root = str(dest)
    made: set[str] = {root}
    writer = _ParallelWriter()
    try:
        with reader.open("filestore.tar.zst") as src:
            dctx = zstandard.ZstdDecompressor()
            zr = dctx.stream_reader(src, read_size=CHUNK, closefd=False)  # type: ignore[arg-type]
            buffered = io.BufferedReader(zr, buffer_size=CHUNK)  # type: ignore[arg-type]
            try:
                tar = TarReader(buffered)
                for member in tar:
                    if member.kind == DIRECTORY or not (member.is_file or member.kind == HARDLINK):
                        continue
                    if count % 256 == 0:
                        _check(cancel)
                    path = _member_path(root, member.name)
                    parent = posixpath.dirname(path)
                    if parent not in made:
                        Path(parent).mkdir(parents=True, exist_ok=True)
                        made.add(parent)
                    if member.kind == HARDLINK:
                        writer.drain()  # the link's target may still be in the pool
                        os.link(_member_path(root, member.linkname), path)
                    elif member.size <= CHUNK:
                        writer.submit(path, tar.read())
                    else:
                        with Path(path).open("wb") as out:
                            copy_stream(tar, out)
                    count += 1
            except zstandard.ZstdError as exc:
                raise CorruptArchive(
                    f"backup {reader.record.id}: filestore archive unreadable: {exc}"
                ) from exc
            except CorruptArchive as exc:
                # A damaged stream shows as a bad header first; the checksum, read to
                # the end, names the real cause.
                while src.read(CHUNK):
                    pass
                raise CorruptArchive(
                    f"backup {reader.record.id}: filestore archive unreadable: {exc}"
                ) from exc
            # Drain to EOF so the checksum is checked even past the tar end marker.
            while src.read(CHUNK):
                pass
    finally:
        writer.close()
    return count


def _feed_process(cmd: list[str], target: PgTarget, src: Readable, what: str) -> None:
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(
            cmd, env=target.env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf
        )
        assert proc.stdin is not None
        broken = False
        try:
            copy_stream(src, proc.stdin)
        except BrokenPipeError:
            broken = True
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        rc = proc.wait()
        if rc != 0 or broken:
            errf.seek(0)
            raise DatabaseError(f"{what} failed: {tool_error(errf.read())}")


def _pg_major(reader: BackupReader) -> int | None:
    return int(str(reader.record.manifest.get("pg_version", "0")).split(".")[0] or 0) or None


# A table data file (``<dumpId>.dat``) stored at least this big is streamed to pg_restore
# through a FIFO instead of being decompressed to the spool first.
STREAM_MIN_BYTES = 4 * CHUNK
_DATA_FILE = re.compile(r"\d+\.dat")


def _decompress(reader: BackupReader, name: str, out: IO[bytes]) -> None:
    with reader.open(name) as src:
        dctx = zstandard.ZstdDecompressor()
        try:
            dctx.copy_stream(src, out, read_size=CHUNK, write_size=CHUNK)  # type: ignore[arg-type]
        except zstandard.ZstdError as exc:
            raise CorruptArchive(f"{name}: not a valid zstd stream: {exc}") from exc
        while src.read(CHUNK):
            pass


class _FifoFeeder:
    """Feeds one ``pg_restore -Fd`` data file through a FIFO, decompressing on the fly.

    The thread blocks in ``open`` until pg_restore opens the file, so the object is
    fetched only when pg_restore wants it and at most ``-j`` objects stream at once.
    """

    def __init__(self, reader: BackupReader, name: str, path: Path, on_error: Callable[[], None]):
        self.reader = reader
        self.name = name
        self.path = path
        self.on_error = on_error
        self.opened = False
        self.abandoned = False
        self.error: BaseException | None = None
        os.mkfifo(path, 0o600)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY)
        except OSError as exc:
            self.error = exc
            return
        with os.fdopen(fd, "wb", buffering=0) as out:
            if self.abandoned:
                return
            self.opened = True
            try:
                _decompress(self.reader, self.name, out)
            except BrokenPipeError as exc:
                self.error = exc
            except BaseException as exc:
                self.error = exc
                self.on_error()

    def release(self) -> None:
        """Unblock a feeder pg_restore never opened (it failed or was stopped)."""
        self.abandoned = True
        while self.thread.is_alive() and not self.opened:
            # Opening the read end lets the writer's blocking open return; it then sees
            # ``abandoned``. Repeat: the thread may not have reached its open yet.
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self.thread.join(timeout=0.05)
        self.thread.join()


def _restore_native(
    reader: BackupReader,
    target: PgTarget,
    jobs: int,
    spool: Path,
    what: str,
    cancel: threading.Event | None,
) -> None:
    """``pg_restore -Fd -jN`` with big data files streamed through FIFOs and the small
    ones (and ``toc.dat``) decompressed first, in parallel."""
    dump_dir = spool / "db"
    dump_dir.mkdir()
    small: list[tuple[str, Path]] = []
    big: list[tuple[str, Path]] = []
    for name in reader.names("db/"):
        stored = name.removesuffix(".age")
        plain = stored.removesuffix(".zst").removeprefix("db/")
        obj = reader.objects[name]
        streamed = _DATA_FILE.fullmatch(plain) and obj.size_bytes >= STREAM_MIN_BYTES
        (big if streamed else small).append((stored, dump_dir / plain))

    def unpack(item: tuple[str, Path]) -> None:
        _check(cancel)
        with item[1].open("wb") as out:
            _decompress(reader, item[0], out)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(unpack, small))
    _check(cancel)
    cmd = [
        find_pg_tool("pg_restore", _pg_major(reader)),
        "-Fd",
        f"-j{max(1, jobs)}",
        "--no-owner",
        "--exit-on-error",
        "-d",
        target.dbname,
        str(dump_dir),
    ]
    stop = threading.Event()  # set by a feeder whose object is damaged
    with tempfile.TemporaryFile() as errf:
        # Every FIFO exists before pg_restore starts: it must never find a file missing.
        feeders: list[_FifoFeeder] = []
        try:
            feeders = [_FifoFeeder(reader, n, p, stop.set) for n, p in big]
            proc = subprocess.Popen(
                cmd,
                env=target.env(),
                stdout=subprocess.DEVNULL,
                stderr=errf,
                stdin=subprocess.DEVNULL,
            )
            try:
                while True:
                    try:
                        rc = proc.wait(timeout=0.1)
                        break
                    except subprocess.TimeoutExpired:
                        if stop.is_set() or (cancel is not None and cancel.is_set()):
                            proc.terminate()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        finally:
            for f in feeders:
                f.release()
        # A damaged object is the cause; pg_restore's complaint is only the symptom.
        for f in feeders:
            if f.error is not None and not isinstance(f.error, BrokenPipeError):
                raise f.error
        _check(cancel)
        if rc != 0:
            errf.seek(0)
            raise DatabaseError(f"{what} failed: {tool_error(errf.read())}")
        unread = [f.name for f in feeders if not f.opened or f.error is not None]
        if unread:
            raise DatabaseError(f"{what}: pg_restore did not read {', '.join(unread[:5])}")


def _restore_db(
    reader: BackupReader,
    target: PgTarget,
    jobs: int,
    spool: Path,
    zip_path: Path | None,
    cancel: threading.Event | None = None,
) -> None:
    fmt = reader.record.format
    major = _pg_major(reader)
    what = f"restore of backup {reader.record.id} into {target.dbname}"
    if fmt == "dump":
        cmd = [
            find_pg_tool("pg_restore", major),
            "--no-owner",
            "--exit-on-error",
            "-d",
            target.dbname,
        ]
        with reader.open("db.dump") as src:
            _feed_process(cmd, target, src, what)
        return
    if fmt == "native":
        _restore_native(reader, target, jobs, spool, what, cancel)
        return
    # odoo-zip: stream dump.sql out of the (spooled, checksum-checked) zip into psql.
    assert zip_path is not None
    try:
        # psql runs meta-commands (\! runs a shell, \o writes files) wherever its
        # lexer meets them; prove there is none before psql reads a byte.
        with zipfile.ZipFile(zip_path) as zf, zf.open("dump.sql") as member:
            try:
                scan_dump(member)
            except UnsafeDump as exc:
                raise CorruptArchive(f"backup {reader.record.id}: dump.sql refused, {exc}") from exc
        with zipfile.ZipFile(zip_path) as zf, zf.open("dump.sql") as member:
            cmd = [
                find_pg_tool("psql", major),
                "-q",
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                target.dbname,
                "-f",
                "-",
            ]
            _feed_process(cmd, target, member, what)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise CorruptArchive(f"backup {reader.record.id}: backup.zip unreadable: {exc}") from exc


def _restore_fs(
    reader: BackupReader, dest: Path, zip_path: Path | None, cancel: threading.Event | None = None
) -> int:
    if reader.record.format != "odoo-zip":
        return extract_filestore_tar(reader, dest, cancel)
    assert zip_path is not None
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                if not info.filename.startswith("filestore/") or info.is_dir():
                    continue
                if count % 256 == 0:
                    _check(cancel)
                target = _safe_member(dest, info.filename.removeprefix("filestore/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    copy_stream(src, out)
                count += 1
    except zipfile.BadZipFile as exc:
        raise CorruptArchive(f"backup {reader.record.id}: backup.zip unreadable: {exc}") from exc
    return count


@contextlib.contextmanager
def _spool(reader: BackupReader, spool_dir: Path | None) -> Iterator[tuple[Path, Path | None]]:
    """A scratch directory; for odoo-zip the zip is fetched into it once (zip needs seeking)."""
    with scratch.scratch_dir("plantops-restore-", spool_dir) as spool:
        zip_path = reader.spool("backup.zip", spool) if reader.record.format == "odoo-zip" else None
        yield spool, zip_path


def restore_database(
    reader: BackupReader, target: PgTarget, jobs: int, spool_dir: Path | None
) -> None:
    """Load the backup's database into the existing empty database ``target``."""
    with _spool(reader, spool_dir) as (spool, zip_path):
        _restore_db(reader, target, jobs, spool, zip_path)


def restore_filestore(reader: BackupReader, dest: Path, spool_dir: Path | None) -> int:
    """Put the backup's filestore contents into ``dest`` (created); returns file count."""
    with _spool(reader, spool_dir) as (_spool_path, zip_path):
        return _restore_fs(reader, dest, zip_path)


@dataclass(frozen=True)
class RestoreTimings:
    """What a restore of database + filestore took; the two run side by side."""

    files: int
    seconds: float  # wall time of the whole restore (the RTO part of a verification)
    fetch_seconds: float  # spooling an odoo-zip before either half can start
    db_seconds: float  # the database half alone (like for like with pg_restore)
    filestore_seconds: float


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.monotonic()
    return fn(), time.monotonic() - t0


def restore_all(
    reader: BackupReader,
    target: PgTarget,
    filestore: Path | None,
    *,
    jobs: int = 2,
    spool_dir: Path | None = None,
) -> RestoreTimings:
    """Restore the database into ``target`` and, at the same time, the filestore into
    ``filestore`` (they are independent). When one half fails the other is stopped and
    the first failure is raised (the database's when both fail).
    """
    t0 = time.monotonic()
    cancel = threading.Event()
    with _spool(reader, spool_dir) as (spool, zip_path):
        fetched = time.monotonic() - t0

        def fs_half() -> int:
            if filestore is None:
                return 0
            try:
                return _restore_fs(reader, filestore, zip_path, cancel)
            except BaseException:
                cancel.set()
                raise

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="filestore") as pool:
            fs_future = pool.submit(_timed, fs_half)
            db_error: BaseException | None = None
            db_seconds = 0.0
            try:
                _, db_seconds = _timed(
                    lambda: _restore_db(reader, target, jobs, spool, zip_path, cancel)
                )
            except BaseException as exc:
                db_error = exc
                cancel.set()
            try:
                files, fs_seconds = fs_future.result()
            except Cancelled:
                files, fs_seconds = 0, 0.0
            except BaseException:
                if db_error is None or isinstance(db_error, Cancelled):
                    raise
                files, fs_seconds = 0, 0.0
            if db_error is not None:
                raise db_error
    return RestoreTimings(
        files=files,
        seconds=time.monotonic() - t0,
        fetch_seconds=fetched,
        db_seconds=db_seconds + fetched,
        filestore_seconds=fs_seconds + (fetched if filestore is not None else 0.0),
    )


def neutralize(target: PgTarget) -> list[str]:
    """Make a restored production copy safe, as Odoo's neutralization does.

    Mirrors ``odoo/addons/base/data/neutralize.sql`` (+ the common addons): crons
    off (except the autovacuum job), outgoing/incoming mail servers off, the
    ``database.is_neutralized`` flag, and a fresh ``database.uuid`` (a copy is a new
    database). Returns what was done.
    """
    done: list[str] = []
    with target.connect(autocommit=False) as conn:

        def has(table: str) -> bool:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            return bool(row and row[0])

        if has("ir_mail_server"):
            conn.execute("UPDATE ir_mail_server SET active = false")
            done.append("outgoing mail servers deactivated")
        if has("fetchmail_server"):
            conn.execute("UPDATE fetchmail_server SET active = false")
            done.append("incoming mail servers deactivated")
        if has("ir_cron"):
            if has("ir_model_data"):
                conn.execute(
                    "UPDATE ir_cron SET active = false WHERE id NOT IN ("
                    " SELECT res_id FROM ir_model_data"
                    " WHERE model = 'ir.cron' AND name = 'autovacuum_job')"
                )
            else:
                conn.execute("UPDATE ir_cron SET active = false")
            done.append("scheduled actions deactivated")
        if has("ir_config_parameter"):
            for key, value in (
                ("database.is_neutralized", "true"),
                ("database.uuid", str(uuid.uuid1())),
            ):
                conn.execute(
                    "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, value),
                )
            done.append("database.is_neutralized set; new database.uuid")
        conn.commit()
    return done


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    database: str
    filestore: str | None
    files: int
    neutralized: tuple[str, ...]
    seconds: float


def _short(name: str, suffix: str) -> str:
    # PostgreSQL truncates identifiers at 63 bytes: keep the random suffix intact.
    return f"{name[: 63 - len(suffix)]}{suffix}"


class ScratchDatabase:
    """A database built by a throwaway role that owns it and nothing else.

    The role is ``NOSUPERUSER NOCREATEDB NOCREATEROLE`` and a member of no
    role, so ``SET ROLE``/``RESET ROLE`` in a dump lead nowhere, ``COPY … TO PROGRAM``
    and ``ALTER ROLE … SUPERUSER`` are refused by the server, and a function the dump
    defines runs as that role however it is triggered. Its password is random, lives
    in a 0600 password file for the run, and the role expires within a day.
    The admin connection (``server``) only creates the role and the database, hands
    the result over (``release``) or drops both (``drop``).
    """

    def __init__(self, server: PgTarget, name: str) -> None:
        self.server = server
        self.admin = admin_target(server)
        self.name = name
        self.role = f"plantops_restore_{secrets.token_hex(6)}"
        self._renamed = False
        where = scratch.server_params(server.params)
        # Recorded before they exist: a crash at any point leaves an entry to reclaim.
        self._role_entry = scratch.record("role", self.role, where)
        self._db_entry = scratch.record("database", name, where)
        self._dir, self._dir_entry = scratch.make_dir("plantops-restore-")
        passfile = self._dir / "pgpass"
        password = secrets.token_urlsafe(24)
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"*:*:*:{self.role}:{password}\n")
        try:
            create_restore_role(self.admin, self.role, password)
            create_database(self.admin, name, owner=self.role)
        except BaseException:
            self.drop()
            raise
        #: Connection to the new database as the restore role: give this to pg_restore.
        self.target = server.with_db(name).as_user(self.role, passfile)

    def release(self, owner: str | None, new_name: str | None = None) -> None:
        """Hand the database to ``owner`` (default: the admin's own role), drop the role,
        and optionally rename the database; the ledger forgets it."""
        self.hand_over_to(owner)
        if new_name is not None:
            self.rename_into(new_name)
        else:
            scratch.forget(self._db_entry)

    def hand_over_to(self, owner: str | None) -> None:
        """Give the database to ``owner`` (default: the admin's own role) and drop the
        role; the database keeps its scratch name and its ledger entry."""
        admin_user, admin_super = current_user(self.admin)
        to = owner or admin_user
        db = self.server.with_db(self.name)
        if admin_super and owner is None:
            _refuse_definer_functions(db, self.role, to)
        hand_over(db, self.role, to)
        drop_role(self.admin, self.role)
        scratch.forget(self._role_entry)
        scratch.remove_dir(self._dir, self._dir_entry)

    def rename_into(self, new_name: str) -> None:
        """Give the handed-over database its final name; the ledger forgets it (the
        caller's swap entry covers it from here)."""
        rename_database(self.admin, self.name, new_name)
        self._renamed = True  # `drop` must never reach the name it now holds
        scratch.forget(self._db_entry)

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            if not self._renamed:
                drop_database(self.admin, self.name)
            scratch.forget(self._db_entry)
        with contextlib.suppress(Exception):
            drop_role(self.admin, self.role)
            scratch.forget(self._role_entry)
        scratch.remove_dir(self._dir, self._dir_entry)


def _refuse_definer_functions(db: PgTarget, role: str, to: str) -> None:
    """Handing ``SECURITY DEFINER`` code to a superuser would let anyone who may call it
    run it as the superuser: refuse, and say how to restore it safely."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.prosecdef AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = %s)"
            " ORDER BY 1 LIMIT 5",
            (role,),
        ).fetchall()
    if rows:
        raise UserError(
            f"the backup defines SECURITY DEFINER functions ({', '.join(str(r[0]) for r in rows)})"
            f" that would run as the superuser {to}: restore with --owner ROLE (the"
            " application's own, unprivileged role)"
        )


def reclaim_leftovers(server: PgTarget | None) -> list[scratch.Reclaimed]:
    """Reclaim what dead runs left (``backup.scratch``). Databases and roles are dropped
    only on the server they were made on, when ``server`` is that server; a restore's
    swap into place that a kill interrupted is rolled back there."""

    def admin_for(where: dict[str, str]) -> PgTarget:
        assert server is not None
        mine = scratch.server_params(server.params)
        same = all(where.get(k) == mine.get(k) for k in ("host", "hostaddr", "port", "service"))
        if not same:
            raise DatabaseError(f"made on another server ({where.get('host')}:{where.get('port')})")
        return admin_target(server)

    def drop(entry: scratch.Entry) -> str:
        admin = admin_for(entry.server)
        if entry.kind == "database":
            drop_database(admin, entry.name)
        elif entry.kind == "role":
            drop_role(admin, entry.name)
        elif entry.kind == "database-aside" and "_old_" in entry.name:
            # The database a finished `restore --force` replaced.
            drop_database(admin, entry.name)
            return f"replaced {entry.restore_to}"
        else:
            raise DatabaseError(f"unknown ledger entry kind {entry.kind!r}")
        return ""

    def roll_back(swap: scratch.Entry, asides: list[scratch.Entry]) -> str:
        return _roll_back_swap(admin_for(swap.server), swap, asides)

    return scratch.reclaim(drop if server is not None else None, roll_back)


def _roll_back_swap(admin: PgTarget, swap: scratch.Entry, asides: list[scratch.Entry]) -> str:
    """Undo a restore's swap into place (``backup.scratch``): the new database and
    filestore, recognised by the oid and inode recorded before the swap, are removed
    where they took a name; the old ones are moved back. Both end old, or (when the swap
    had finished) the caller never gets here."""
    to_db = swap.name
    db_aside = next((a.name for a in asides if a.kind == "database-aside"), None)
    fs_aside = next((Path(a.name) for a in asides if a.kind == "dir-aside"), None)
    done: list[str] = []
    new_oid = swap.extra.get("new_oid", "")
    if new_oid and database_oid(admin, to_db) == int(new_oid):
        drop_database(admin, to_db)
        done.append(f"dropped the unfinished {to_db}")
    if db_aside and database_exists(admin, db_aside) and not database_exists(admin, to_db):
        rename_database(admin, db_aside, to_db)
        done.append(f"put back {to_db}")
    if swap.restore_to:
        done += scratch.put_back_tree(fs_aside, Path(swap.restore_to), swap.extra.get("new_fs", ""))
    return "rolled back: " + "; ".join(done) if done else "rolled back: nothing had moved"


def restore_backup(
    reader: BackupReader,
    server: PgTarget,
    to_db: str,
    filestore: Path | None,
    *,
    neutralize_copy: bool = False,
    force: bool = False,
    jobs: int = 2,
    spool_dir: Path | None = None,
    owner: str | None = None,
) -> RestoreResult:
    """Restore into ``to_db`` (and ``filestore``) on ``server``; atomic swap at the end.

    The database is built by an unprivileged throwaway role (``ScratchDatabase``) and
    then owned by ``owner`` (default: the role of ``server``'s connection).
    """
    t0 = time.monotonic()
    admin = admin_target(server)
    reclaim_leftovers(server)
    if not to_db or len(to_db.encode()) > 63:
        raise UserError(f"database name {to_db!r} must be 1-63 bytes")
    exists = database_exists(admin, to_db)
    if exists and not force:
        raise TargetExists(f"database {to_db!r} already exists: pass --force to replace it")
    if filestore is not None and filestore.exists() and any(filestore.iterdir()) and not force:
        raise TargetExists(
            f"filestore {filestore} exists and is not empty: pass --force to replace it"
        )
    tmp_db = _short(to_db, f"_restoring_{uuid.uuid4().hex[:8]}")
    tmp_fs: Path | None = None
    fs_entry: scratch.Entry | None = None
    done: list[str] = []
    files = 0
    swap: scratch.Entry | None = None
    asides: list[scratch.Entry] = []
    db = ScratchDatabase(server, tmp_db)
    try:
        if filestore is not None:
            filestore.parent.mkdir(parents=True, exist_ok=True)
            tmp_fs = filestore.with_name(f".{filestore.name}.restoring-{uuid.uuid4().hex[:8]}")
            fs_entry = scratch.record("dir", str(tmp_fs))
        files = restore_all(reader, db.target, tmp_fs, jobs=jobs, spool_dir=spool_dir).files
        if neutralize_copy:
            done = neutralize(db.target)
        db.hand_over_to(owner)  # may refuse: nothing of the user's has moved yet
        # Everything is in: swap into place as one unit (``backup.scratch``). The swap is
        # recorded with the new copies' identities, each old copy is recorded before it
        # moves aside, and the old copies go only once both new ones hold their names:
        # a kill anywhere in between is rolled back by the next run or `backup cleanup`.
        where = scratch.server_params(server.params)
        group = uuid.uuid4().hex
        swap = scratch.record(
            "swap",
            to_db,
            where,
            restore_to=str(filestore) if filestore is not None else "",
            extra={
                "group": group,
                "new_oid": str(database_oid(admin, tmp_db) or ""),
                "new_fs": scratch.dir_identity(tmp_fs) if tmp_fs is not None else "",
            },
        )
        if exists:
            aside = _short(to_db, f"_old_{uuid.uuid4().hex[:8]}")
            asides.append(
                scratch.record(
                    "database-aside", aside, where, restore_to=to_db, extra={"group": group}
                )
            )
            move_database(admin, to_db, aside)
        if filestore is not None and (filestore.exists() or filestore.is_symlink()):
            old = filestore.with_name(f".{filestore.name}.old-{uuid.uuid4().hex[:8]}")
            asides.append(
                scratch.record(
                    "dir-aside", str(old), restore_to=str(filestore), extra={"group": group}
                )
            )
            filestore.rename(old)
        db.rename_into(to_db)
        if filestore is not None and tmp_fs is not None:
            tmp_fs.rename(filestore)
            assert fs_entry is not None
            scratch.forget(fs_entry)
            tmp_fs = fs_entry = None
        scratch.forget(swap)  # the commit point: from here the new copies stay
        swap = None
    except BaseException:
        if swap is not None:
            with contextlib.suppress(Exception):  # else the ledger rolls it back later
                _roll_back_swap(admin, swap, asides)
                for entry in (*asides, swap):
                    scratch.forget(entry)
        db.drop()
        if tmp_fs is not None:
            shutil.rmtree(tmp_fs, ignore_errors=True)
        if fs_entry is not None:
            scratch.forget(fs_entry)
        raise
    for entry in asides:  # the replaced copies; what fails here the ledger reclaims later
        with contextlib.suppress(Exception):
            if entry.kind == "database-aside":
                drop_database(admin, entry.name)
            else:
                shutil.rmtree(entry.name)
            scratch.forget(entry)
    return RestoreResult(
        reader.record.id,
        to_db,
        str(filestore) if filestore else None,
        files,
        tuple(done),
        time.monotonic() - t0,
    )

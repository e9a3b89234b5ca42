"""Reading a backup back: checksum-checked, decrypted streams → a database + a filestore.

Restores land in a temporary database and directory first and are renamed into
place only when complete, so a failed restore never leaves a half-restored target
and never touches an existing one unless ``force`` was given.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from plantops.backup.crypto import KeyProvider, decrypting_reader
from plantops.backup.errors import CorruptArchive, DatabaseError, TargetExists, WrongKey
from plantops.backup.pg import (
    PgTarget,
    admin_target,
    create_database,
    database_exists,
    drop_database,
    find_pg_tool,
    rename_database,
    tool_error,
)
from plantops.backup.stores import ObjectStore
from plantops.backup.streams import CHUNK, HashingReader, Readable, copy_stream
from plantops.errors import UserError
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
    target = (dest / name).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise CorruptArchive(f"archive member {name!r} escapes the target directory")
    return target


def extract_filestore_tar(reader: BackupReader, dest: Path) -> int:
    """Stream ``filestore.tar.zst`` into ``dest``; returns the number of files."""
    count = 0
    dest.mkdir(parents=True, exist_ok=True)
    with reader.open("filestore.tar.zst") as src:
        dctx = zstandard.ZstdDecompressor()
        zr = dctx.stream_reader(src, read_size=CHUNK, closefd=False)  # type: ignore[arg-type]
        try:
            with tarfile.open(fileobj=zr, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    target = _safe_member(dest, member.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fh = tar.extractfile(member)
                    assert fh is not None
                    with target.open("wb") as out:
                        copy_stream(fh, out)
                    count += 1
        except (tarfile.TarError, zstandard.ZstdError) as exc:
            raise CorruptArchive(
                f"backup {reader.record.id}: filestore archive unreadable: {exc}"
            ) from exc
        # Drain to EOF so the checksum is checked even past the tar end marker.
        while src.read(CHUNK):
            pass
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


def restore_database(
    reader: BackupReader, target: PgTarget, jobs: int, spool_dir: Path | None
) -> None:
    """Load the backup's database into the existing empty database ``target``."""
    fmt = reader.record.format
    major = int(str(reader.record.manifest.get("pg_version", "0")).split(".")[0] or 0) or None
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
        spool = Path(tempfile.mkdtemp(prefix="plantops-restore-", dir=spool_dir))
        try:
            dump_dir = spool / "db"
            dump_dir.mkdir()
            for name in reader.names("db/"):
                plain_name = name.removesuffix(".age").removesuffix(".zst").removeprefix("db/")
                with (
                    reader.open(name.removesuffix(".age")) as src,
                    (dump_dir / plain_name).open("wb") as out,
                ):
                    dctx = zstandard.ZstdDecompressor()
                    try:
                        dctx.copy_stream(src, out, read_size=CHUNK, write_size=CHUNK)  # type: ignore[arg-type]
                    except zstandard.ZstdError as exc:
                        raise CorruptArchive(f"{name}: not a valid zstd stream: {exc}") from exc
                    while src.read(CHUNK):
                        pass
            cmd = [
                find_pg_tool("pg_restore", major),
                "-Fd",
                f"-j{max(1, jobs)}",
                "--no-owner",
                "--exit-on-error",
                "-d",
                target.dbname,
                str(dump_dir),
            ]
            proc = subprocess.run(cmd, env=target.env(), capture_output=True, check=False)
            if proc.returncode != 0:
                raise DatabaseError(f"{what} failed: {tool_error(proc.stderr)}")
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        return
    # odoo-zip: zip needs seeking, so spool it (checksum-checked) then stream dump.sql to psql.
    spool = Path(tempfile.mkdtemp(prefix="plantops-restore-", dir=spool_dir))
    try:
        zpath = reader.spool("backup.zip", spool)
        try:
            with zipfile.ZipFile(zpath) as zf, zf.open("dump.sql") as member:
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
            raise CorruptArchive(
                f"backup {reader.record.id}: backup.zip unreadable: {exc}"
            ) from exc
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def restore_filestore(reader: BackupReader, dest: Path, spool_dir: Path | None) -> int:
    """Put the backup's filestore contents into ``dest`` (created); returns file count."""
    if reader.record.format != "odoo-zip":
        return extract_filestore_tar(reader, dest)
    dest.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix="plantops-restore-", dir=spool_dir))
    count = 0
    try:
        zpath = reader.spool("backup.zip", spool)
        try:
            with zipfile.ZipFile(zpath) as zf:
                for info in zf.infolist():
                    if not info.filename.startswith("filestore/") or info.is_dir():
                        continue
                    target = _safe_member(dest, info.filename.removeprefix("filestore/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as out:
                        copy_stream(src, out)
                    count += 1
        except zipfile.BadZipFile as exc:
            raise CorruptArchive(
                f"backup {reader.record.id}: backup.zip unreadable: {exc}"
            ) from exc
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return count


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
) -> RestoreResult:
    """Restore into ``to_db`` (and ``filestore``) on ``server``; atomic swap at the end."""
    import time

    t0 = time.monotonic()
    admin = admin_target(server)
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
    done: list[str] = []
    files = 0
    create_database(admin, tmp_db)
    try:
        restore_database(reader, server.with_db(tmp_db), jobs, spool_dir)
        if neutralize_copy:
            done = neutralize(server.with_db(tmp_db))
        if filestore is not None:
            filestore.parent.mkdir(parents=True, exist_ok=True)
            tmp_fs = filestore.with_name(f".{filestore.name}.restoring-{uuid.uuid4().hex[:8]}")
            files = restore_filestore(reader, tmp_fs, spool_dir)
        # Everything is in: swap into place.
        if exists:
            drop_database(admin, to_db)
        rename_database(admin, tmp_db, to_db)
        if filestore is not None and tmp_fs is not None:
            old: Path | None = None
            if filestore.exists():
                old = filestore.with_name(f".{filestore.name}.old-{uuid.uuid4().hex[:8]}")
                filestore.rename(old)
            tmp_fs.rename(filestore)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            tmp_fs = None
    except BaseException:
        with contextlib.suppress(Exception):
            drop_database(admin, tmp_db)
        if tmp_fs is not None:
            shutil.rmtree(tmp_fs, ignore_errors=True)
        raise
    return RestoreResult(
        reader.record.id,
        to_db,
        str(filestore) if filestore else None,
        files,
        tuple(done),
        time.monotonic() - t0,
    )

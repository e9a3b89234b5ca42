"""Taking in a backup made by Odoo's database manager as a normal catalogued backup.

Odoo's ``dump_db`` (odoo/service/db.py) writes, with ``odoo.tools.osutil.zip_dir``
(ZIP_DEFLATED, zip64 allowed, files only, ``dump.sql`` sorted first): ``dump.sql`` from
``pg_dump --no-owner``, ``manifest.json`` from ``dump_db_manifest`` (``json.dump(...,
indent=4)``) and the database's filestore copied to ``filestore/``. ``restore_db``
extracts only ``dump.sql`` and ``filestore/…`` (it never reads the manifest) and runs
``psql -f dump.sql``. That is exactly plantops' ``odoo-zip`` format, so an imported
zip is stored byte for byte as ``backup.zip`` (encrypted with age when a key is given,
like any backup) and restores and verifies like one.

Everything is checked before anything is catalogued or stored: the zip itself (central
directory, every member's CRC, names, types, sizes), the manifest, and ``dump.sql``
(``backup.dumpscan``: no psql meta-commands; its COPY blocks give the row counts that
verification compares). Then the copy runs under the same crash-safe pattern as
``backup run``: a ``running`` row, objects written ``.partial`` and renamed, the
``COMPLETE.json`` marker last. A failed import leaves no row and no object; a killed
one is removed by the next ``backup run|import|prune``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import socket
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from plantops.backup.archive import Clock, _Writer, backup_location, utcnow
from plantops.backup.crypto import KeyProvider
from plantops.backup.dumpscan import DumpScan, UnsafeDump, scan_dump
from plantops.backup.policy import BackupPolicy
from plantops.backup.stores import ObjectStore
from plantops.backup.streams import CHUNK
from plantops.errors import PlantopsError, UserError
from plantops.store import BackupRecord, Catalog

GiB = 1024**3


class ImportRefused(UserError):
    """The file is not an Odoo backup plantops can take in (exit 2); says what and how."""


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what a zip may expand to (zip bombs), checked before and while reading."""

    max_members: int = 2_000_000
    max_uncompressed_bytes: int = 1024 * GiB
    # Deflate reaches ~1000:1 on runs of one byte; real dumps and filestores stay far below.
    max_ratio: int = 200
    ratio_min_bytes: int = 16 * 1024 * 1024  # small members may compress better than that
    max_name_bytes: int = 1024
    max_manifest_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    plant: str | None
    env: str | None
    policy: BackupPolicy
    series: str | None = None  # the target deployment's Odoo series (from the fleet)
    target: str = ""  # "plant/env", for messages
    limits: ImportLimits = field(default_factory=ImportLimits)


@dataclass(frozen=True)
class CheckedZip:
    manifest: dict[str, Any]
    scan: DumpScan
    sha256: str
    size_bytes: int
    members: int
    filestore_files: int
    uncompressed_bytes: int
    dump_time: str  # dump.sql's timestamp in the zip (local time of the machine that made it)

    def origin(self, path: Path) -> dict[str, Any]:
        return {
            "file": path.name,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "members": self.members,
            "filestore_files": self.filestore_files,
            "uncompressed_bytes": self.uncompressed_bytes,
            "dump_time": self.dump_time,
            "pg_dump_version": self.scan.pg_dump_version,
            "dumped_from_server": self.scan.server_version,
        }


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MANIFEST_KEYS = (
    "odoo_dump",
    "db_name",
    "version",
    "version_info",
    "major_version",
    "pg_version",
    "modules",
)


def _refuse(path: Path, what: str, fix: str) -> ImportRefused:
    return ImportRefused(f"{path}: {what}; {fix}")


def _check_name(path: Path, info: zipfile.ZipInfo, limits: ImportLimits) -> None:
    name = info.filename
    shown = repr(name)
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:
        raise _refuse(
            path,
            f"member {shown[:80]}… has a name longer than {limits.max_name_bytes} bytes",
            "rebuild the zip with Odoo's database manager",
        )
    if _CONTROL.search(name) or "\\" in name:
        raise _refuse(
            path,
            f"member {shown} has a control character or backslash in its name",
            "Odoo's filestore names are <2 hex>/<sha1>; rebuild the zip with Odoo's database manager",
        )
    parts = name.rstrip("/").split("/")
    if (
        name.startswith("/")
        or re.match(r"^[A-Za-z]:", name)
        or any(p in ("", ".", "..") for p in parts)
        or posixpath.normpath(name).startswith("..")
    ):
        raise _refuse(
            path,
            f"member {shown} would be written outside the restore directory"
            " (absolute path, drive letter, '.' or '..')",
            "never import a zip that was not made by Odoo's database manager or plantops",
        )
    if info.flag_bits & 0x1:
        raise _refuse(path, f"member {shown} is encrypted", "Odoo never encrypts its zips")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _refuse(
            path,
            f"member {shown} uses compression method {info.compress_type}",
            "Odoo writes deflate (ZIP_DEFLATED); rebuild the zip with Odoo or `zip -r`",
        )
    if info.create_system == 3:  # Unix: the high 16 bits of external_attr are st_mode
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise _refuse(
                path,
                f"member {shown} is a symbolic link",
                "Odoo's zip_dir stores only regular files; a link could point a restore"
                " outside its filestore",
            )
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise _refuse(
                path, f"member {shown} is not a regular file (mode {mode:o})", "rebuild the zip"
            )


def _known(name: str) -> bool:
    return name in ("dump.sql", "manifest.json") or name.startswith("filestore/")


class _Counting:
    """Reads a zip member, bounding what it expands to while it is read."""

    def __init__(self, src: IO[bytes], budget: int, path: Path, name: str) -> None:
        self.src = src
        self.budget = budget
        self.path = path
        self.name = name
        self.read_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        block = self.src.read(CHUNK if size is None or size < 0 else size)
        self.read_bytes += len(block)
        if self.read_bytes > self.budget:
            raise _refuse(
                self.path,
                f"member {self.name!r} expands beyond the import's size limit",
                "a zip bomb or a damaged zip; raise --max-uncompressed-gib only for a real backup",
            )
        return block


def _check_manifest(path: Path, raw: bytes, series: str | None, target: str) -> dict[str, Any]:
    def bad(what: str) -> ImportRefused:
        return _refuse(
            path,
            f"manifest.json {what}",
            "it must be the manifest Odoo's dump_db_manifest writes (odoo_dump, db_name,"
            " version, version_info, major_version, pg_version, modules)",
        )

    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise bad("is not a JSON object")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise bad(f"lacks {', '.join(missing)}")
    if manifest["odoo_dump"] != "1":
        raise bad(f"has odoo_dump {manifest['odoo_dump']!r}, expected '1'")
    for key in ("db_name", "version", "major_version", "pg_version"):
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise bad(f"has a {key} that is not a non-empty string")
    info = manifest["version_info"]
    if not isinstance(info, list) or len(info) < 2:
        raise bad("has a version_info that is not a list like [17, 0, 0, 'final', 0, '']")
    major = manifest["major_version"]
    # odoo/release.py: major_version = '.'.join(str(v) for v in version_info[:2]).
    if f"{info[0]}.{info[1]}" != major:
        raise bad(f"is inconsistent: major_version {major!r} but version_info {info[:2]}")
    if not manifest["version"].startswith(major):
        raise bad(f"is inconsistent: version {manifest['version']!r} is not of {major!r}")
    if not re.fullmatch(r"\d+\.\d+", manifest["pg_version"]):
        raise bad(f"has pg_version {manifest['pg_version']!r}, expected like '15.0'")
    modules = manifest["modules"]
    if not isinstance(modules, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in modules.items()
    ):
        raise bad("has modules that are not a {name: version} object")
    base = modules.get("base")
    if not base:
        raise bad("lists no installed base module")
    # Module versions are "<major_version>.<module version>" (odoo/modules adapt_version).
    if not str(base).startswith(major + "."):
        raise bad(f"is inconsistent: base module {base!r} is not of {major!r}")
    if series is not None and major != series:
        raise _refuse(
            path,
            f"the backup is of Odoo {major} but {target} runs Odoo {series}",
            f"upgrade the database to {series} first, or import it into a deployment of {major}",
        )
    return manifest


def _read_all(member: _Counting) -> bytes:
    parts = []
    while block := member.read(CHUNK):
        parts.append(block)
    return b"".join(parts)


def _sha256(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    while block := fh.read(CHUNK):
        digest.update(block)
    fh.seek(0)
    return digest.hexdigest()


def check_odoo_zip(
    path: Path,
    fh: IO[bytes],
    limits: ImportLimits | None = None,
    series: str | None = None,
    target: str = "",
) -> CheckedZip:
    """Every check of an Odoo database-manager zip, reading every member once."""
    limits = limits or ImportLimits()
    size = os.fstat(fh.fileno()).st_size
    sha = _sha256(fh)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise _refuse(
            path,
            f"not a zip file, or a truncated one (no central directory at its end): {exc}",
            "copy the file again completely, or download it again from Odoo's database manager",
        ) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise _refuse(
                path,
                f"{len(infos)} members, more than the limit of {limits.max_members}",
                "a zip bomb, or pass a higher --max-members for a filestore this big",
            )
        seen: set[str] = set()
        declared = 0
        for info in infos:
            _check_name(path, info, limits)
            if info.filename in seen:
                raise _refuse(
                    path,
                    f"member {info.filename!r} appears twice",
                    "a zip whose members shadow each other is not what Odoo writes",
                )
            seen.add(info.filename)
            if not _known(info.filename):
                hint = "zip only dump.sql, manifest.json and filestore/"
                if info.filename.endswith("/dump.sql"):
                    hint = "zip the folder's contents (dump.sql at the top), not the folder"
                raise _refuse(
                    path,
                    f"member {info.filename!r} is not part of an Odoo backup"
                    " (dump.sql, manifest.json, filestore/…)",
                    hint,
                )
            declared += info.file_size
            if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise _refuse(
                    path,
                    f"member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}"
                    f" times (limit {limits.max_ratio})",
                    "a zip bomb; a real dump compresses far less",
                )
        if declared > limits.max_uncompressed_bytes:
            raise _refuse(
                path,
                f"members expand to {declared} bytes, more than the limit of"
                f" {limits.max_uncompressed_bytes}",
                "a zip bomb, or pass a higher --max-uncompressed-gib for a backup this big",
            )
        if declared > limits.ratio_min_bytes and declared > limits.max_ratio * max(size, 1):
            raise _refuse(
                path,
                f"the zip expands {declared // max(size, 1)} times (limit {limits.max_ratio})",
                "a zip bomb; a real backup compresses far less",
            )
        if "dump.sql" not in seen:
            nested = sorted(n for n in seen if n.endswith("/dump.sql"))
            hint = (
                f"found {nested[0]!r}: zip the folder's contents, not the folder"
                if nested
                else "an Odoo backup zip has dump.sql at its top (Odoo's 'zip' backup format,"
                " not 'pg_dump custom format')"
            )
            raise _refuse(path, "no dump.sql in the zip", hint)
        if "manifest.json" not in seen:
            raise _refuse(
                path,
                "no manifest.json in the zip",
                "Odoo's dump_db always writes one (Odoo restores without it, but then the"
                " modules a verification must find are unknown): back up again from Odoo 8 or later",
            )
        budget = limits.max_uncompressed_bytes
        total = 0
        files = 0
        manifest: dict[str, Any] = {}
        scan: DumpScan | None = None
        dump_time = ""
        for info in infos:
            if info.is_dir():
                continue
            try:
                with zf.open(info) as raw:
                    member = _Counting(raw, budget - total, path, info.filename)
                    if info.filename == "manifest.json":
                        if info.file_size > limits.max_manifest_bytes:
                            raise _refuse(
                                path,
                                "manifest.json is larger than 16 MiB",
                                "it is not Odoo's manifest",
                            )
                        data = _read_all(member)
                    elif info.filename == "dump.sql":
                        try:
                            scan = scan_dump(member)
                        except UnsafeDump as exc:
                            raise _refuse(
                                path,
                                f"dump.sql {exc}",
                                "refused before anything ran; take the backup again with"
                                " Odoo's database manager (plain pg_dump --no-owner output)",
                            ) from exc
                        y, mo, d, h, mi, sec = info.date_time
                        dump_time = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}"
                    else:
                        while member.read(CHUNK):
                            pass
                        files += 1
                    total += member.read_bytes
            except (zipfile.BadZipFile, zlib.error) as exc:
                raise _refuse(
                    path,
                    f"member {info.filename!r} is damaged: {exc}",
                    "copy the file again completely; the zip's checksums do not match its data",
                ) from exc
            except (EOFError, OSError, zipfile.LargeZipFile) as exc:
                if isinstance(exc, PlantopsError):
                    raise
                raise _refuse(
                    path,
                    f"member {info.filename!r} cannot be read (truncated zip?): {exc}",
                    "copy the file again completely",
                ) from exc
            if info.filename == "manifest.json":
                manifest = _check_manifest(path, data, series, target)
        assert scan is not None
    dumped_major = scan.server_version.split(".")[0]
    if dumped_major and dumped_major != manifest["pg_version"].split(".")[0]:
        raise _refuse(
            path,
            f"manifest.json says PostgreSQL {manifest['pg_version']} but dump.sql was dumped"
            f" from {scan.server_version}",
            "the manifest and the dump are not from the same backup",
        )
    return CheckedZip(
        manifest=manifest,
        scan=scan,
        sha256=sha,
        size_bytes=size,
        members=len(infos),
        filestore_files=files,
        uncompressed_bytes=total,
        dump_time=dump_time,
    )


@dataclass
class ImportResult:
    record: BackupRecord
    checked: CheckedZip
    notes: list[str] = field(default_factory=list)


def import_backup(
    req: ImportRequest,
    catalog: Catalog,
    store: ObjectStore,
    keys: KeyProvider | None = None,
    clock: Clock = utcnow,
) -> ImportResult:
    """Check ``req.path`` completely, then store and catalogue it as an odoo-zip backup."""
    try:
        fh = req.path.open("rb")
    except OSError as exc:
        raise UserError(f"cannot read {req.path}: {exc.strerror or exc}") from exc
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UserError(f"{req.path} is not a regular file")
        checked = check_odoo_zip(req.path, fh, req.limits, req.series, req.target)
        manifest = checked.manifest
        plant = req.plant or str(manifest["db_name"])
        env = req.env or "adhoc"
        backup_id = uuid.uuid4().hex[:12]
        started = clock()
        location = backup_location(plant, env, started, backup_id)
        origin = checked.origin(req.path)
        catalog.create_backup(
            backup_id=backup_id,
            plant=plant,
            env=env,
            tier=req.policy.tier,
            fmt="odoo-zip",
            store_url=store.url,
            location=location,
            started_at=started,
            host=socket.gethostname(),
            pid=os.getpid(),
            key_id=keys.key_id if keys else None,
            db_name=str(manifest["db_name"]),
            policy=req.policy.as_dict(),
            source="imported",
            origin=origin,
        )
        w = _Writer(store, location, keys)
        try:
            copied = hashlib.sha256()

            def produce(out: IO[bytes]) -> None:
                fh.seek(0)
                while block := fh.read(CHUNK):
                    copied.update(block)
                    out.write(block)

            w.put("backup.zip", produce)
            if copied.hexdigest() != checked.sha256:
                raise UserError(
                    f"{req.path} changed while it was imported (sha256 {copied.hexdigest()}"
                    f" after the checks, {checked.sha256} before): import it again once it is"
                    " completely written"
                )
            finished = clock()
            w.put_marker(
                {
                    "backup_id": backup_id,
                    "format": "odoo-zip",
                    "source": "imported",
                    "origin": origin,
                    "plant": plant,
                    "env": env,
                    "started_at": started.isoformat(),
                    "finished_at": finished.isoformat(),
                    "key_id": keys.key_id if keys else None,
                    "row_counts": checked.scan.row_counts,
                }
            )
            catalog.complete_backup(
                backup_id,
                objects=w.objects,
                manifest=manifest,
                row_counts=checked.scan.row_counts,
                pg_version=str(manifest["pg_version"]),
                odoo_version=str(manifest["version"]),
                finished_at=finished,
            )
        except BaseException:
            discard_import(catalog, store, backup_id, location)
            raise
    notes = []
    if not checked.scan.restricted:
        notes.append(
            "dump.sql has no \\restrict line (pg_dump before 17.6/16.10/15.14); it was scanned"
            " for psql meta-commands instead"
        )
    return ImportResult(catalog.get(backup_id), checked, notes)


def discard_import(catalog: Catalog, store: ObjectStore, backup_id: str, location: str) -> None:
    """Remove every trace of an import that did not complete (objects, then the row)."""
    with contextlib.suppress(PlantopsError):
        store.delete_prefix(location)
    with contextlib.suppress(PlantopsError):
        catalog.discard_backup(backup_id)


__all__ = [
    "CheckedZip",
    "ImportLimits",
    "ImportRefused",
    "ImportRequest",
    "ImportResult",
    "check_odoo_zip",
    "discard_import",
    "import_backup",
]

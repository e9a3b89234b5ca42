"""Object stores: a local directory (default) and S3-compatible object storage.

Nothing looks complete until it is: a local object is written to ``<key>.partial``
and renamed after fsync; an S3 object is a multipart upload that only becomes
visible when completed. A backup's ``COMPLETE`` marker is written last of all.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlparse

from plantops.backup.errors import StoreError
from plantops.backup.streams import Readable
from plantops.errors import UserError, resolve_path
from plantops.names import check_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PARTIAL = ".partial"
PART_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


class ObjectWriter(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...

    def commit(self) -> StoredObject: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """What backups need from storage; keys are ``/``-separated relative paths."""

    url: str

    def writer(self, key: str) -> ObjectWriter: ...

    def open_read(self, key: str) -> Readable: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int: ...


def _oserror(action: str, where: str, exc: OSError) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return StoreError(f"{action} {where}: no space left on device")
    return StoreError(f"{action} {where}: {exc.strerror or exc}")


def _private_dirs(path: Path) -> None:
    """``mkdir -p`` with mode 0700 for every directory it creates."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)


class _LocalWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + PARTIAL)
        try:
            # Backups hold a plant's whole database: only their owner may read them.
            _private_dirs(final.parent)
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            os.fchmod(fd, 0o600)  # an older partial file keeps its mode otherwise
            self.fh = os.fdopen(fd, "wb")
        except OSError as exc:
            raise _oserror("cannot create", str(self.tmp), exc) from exc
        self.digest = hashlib.sha256()
        self.size = 0
        self.key = ""

    def write(self, data: bytes, /) -> int:
        try:
            self.fh.write(data)
        except OSError as exc:
            raise _oserror("cannot write", str(self.tmp), exc) from exc
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def commit(self) -> StoredObject:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.tmp.replace(self.final)
        except OSError as exc:
            raise _oserror("cannot finish", str(self.final), exc) from exc
        return StoredObject(self.key, self.size, self.digest.hexdigest())

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        self.tmp.unlink(missing_ok=True)


class LocalStore:
    """Objects as files under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = resolve_path(root)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        if "\0" in key:
            raise UserError(f"object key {key!r} holds a NUL byte")
        path = resolve_path(self.root / key)
        if not path.is_relative_to(self.root):
            raise UserError(f"object key {key!r} escapes the store root")
        return path

    def writer(self, key: str) -> ObjectWriter:
        w = _LocalWriter(self._path(key))
        w.key = key
        return w

    def open_read(self, key: str) -> Readable:
        try:
            return self._path(key).open("rb")
        except OSError as exc:
            raise _oserror("cannot read object", f"{self.url}/{key}", exc) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise UserError("refusing to delete the whole store")
        base = self._path(prefix)
        if not base.exists():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        try:
            shutil.rmtree(base)
        except OSError as exc:
            raise _oserror("cannot delete", str(base), exc) from exc
        # Leave no empty <plant>/<env> directories behind.
        for parent in base.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return count


def _boto_error(action: str, where: str, exc: Exception) -> StoreError:
    return StoreError(f"S3 {action} {where}: {exc}")


class _S3Writer:
    def __init__(self, store: S3Store, key: str) -> None:
        self.store = store
        self.key = key
        self.full = store.full_key(key)
        self.buf = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.upload_id: str | None = None
        self.digest = hashlib.sha256()
        self.size = 0

    def _call(self, action: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            raise _boto_error(action, f"s3://{self.store.bucket}/{self.full}", exc) from exc

    def _flush_part(self) -> None:
        if self.upload_id is None:
            resp = self._call(
                "create upload",
                self.store.client.create_multipart_upload,
                Bucket=self.store.bucket,
                Key=self.full,
            )
            self.upload_id = str(resp["UploadId"])
        number = len(self.parts) + 1
        resp = self._call(
            "upload part",
            self.store.client.upload_part,
            Bucket=self.store.bucket,
            Key=self.full,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=bytes(self.buf),
        )
        self.parts.append({"ETag": resp["ETag"], "PartNumber": number})
        self.buf.clear()

    def write(self, data: bytes, /) -> int:
        self.buf += data
        self.digest.update(data)
        self.size += len(data)
        if len(self.buf) >= PART_SIZE:
            self._flush_part()
        return len(data)

    def flush(self) -> None:
        pass

    def commit(self) -> StoredObject:
        if self.upload_id is None:
            self._call(
                "put",
                self.store.client.put_object,
                Bucket=self.store.bucket,
                Key=self.full,
                Body=bytes(self.buf),
            )
        else:
            if self.buf:
                self._flush_part()
            self._call(
                "complete upload",
                self.store.client.complete_multipart_upload,
                Bucket=self.store.bucket,
                Key=self.full,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self.buf = bytearray()
        return StoredObject(self.key, self.size, self.digest.hexdigest())

    def abort(self) -> None:
        if self.upload_id is not None:
            with contextlib.suppress(Exception):
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.full, UploadId=self.upload_id
                )
        self.buf = bytearray()


class _S3Body:
    def __init__(self, body: Any, where: str) -> None:
        self.body = body
        self.where = where

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self.body.read(size if size and size > 0 else None))
        except Exception as exc:
            raise _boto_error("read", self.where, exc) from exc

    def close(self) -> None:
        self.body.close()


class S3Store:
    """S3-compatible storage; multipart streaming upload, flat memory (one part buffered)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        query = f"?endpoint={endpoint_url}" if endpoint_url else ""
        self.url = f"s3://{bucket}/{self.prefix}{query}".replace(f"{bucket}/?", f"{bucket}?")
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
            )
            client = boto3.client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        self.client = client

    def full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def writer(self, key: str) -> ObjectWriter:
        return _S3Writer(self, key)

    def open_read(self, key: str) -> Readable:
        where = f"s3://{self.bucket}/{self.full_key(key)}"
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
        except Exception as exc:
            raise _boto_error("get", where, exc) from exc
        return _S3Body(resp["Body"], where)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except Exception:
            return False
        return True

    def _keys(self, prefix: str) -> list[str]:
        full = self.full_key(prefix)
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(str(o["Key"]) for o in page.get("Contents", []))
        except Exception as exc:
            raise _boto_error("list", f"s3://{self.bucket}/{full}", exc) from exc
        return keys

    def list(self, prefix: str) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in self._keys(prefix))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise UserError("refusing to delete the whole store")
        full = self.full_key(prefix.rstrip("/") + "/")
        keys = self._keys(prefix.rstrip("/") + "/")
        try:
            for i in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[i : i + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})  # type: ignore[typeddict-item]
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
            for up in uploads.get("Uploads", []):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=str(up["Key"]), UploadId=str(up["UploadId"])
                )
        except Exception as exc:
            raise _boto_error("delete", f"s3://{self.bucket}/{full}", exc) from exc
        return len(keys)


DEFAULT_STORE = ".plantops/backups"
STORE_ENV = "PLANTOPS_BACKUP_STORE"


def default_store_url() -> str:
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def open_store(url: str | None = None) -> ObjectStore:
    """``s3://bucket/prefix[?endpoint=URL&region=R]``, ``file:///dir`` or a plain path.

    S3 credentials come from the usual AWS environment/config, never from the URL;
    the endpoint may also come from ``AWS_ENDPOINT_URL``.
    """
    url = url or default_store_url()
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UserError(f"store URL {url!r} has no bucket (s3://BUCKET/PREFIX)")
        query = parse_qs(parsed.query)
        endpoint = query.get("endpoint", [None])[0] or os.environ.get("AWS_ENDPOINT_URL")
        region = query.get("region", [None])[0] or os.environ.get("AWS_DEFAULT_REGION")
        prefix = check_prefix(parsed.path, f"store URL {url!r}: prefix")
        return S3Store(parsed.netloc, prefix, endpoint_url=endpoint, region=region)
    if parsed.scheme in ("file", "", "local"):
        root = Path(parsed.path if parsed.scheme else url)
        if root.exists() and not root.is_dir():
            raise UserError(f"store {url!r} is not a directory; name a directory or s3://…")
        return LocalStore(root)
    raise UserError(
        f"store URL {url!r}: unsupported scheme {parsed.scheme!r} (use s3:// or a path)"
    )

"""S3-compatible storage against a local moto server (started here, real HTTP)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer
from odoo_helpers import OdooDb
from tests.fixtures.postgres import free_port

from plantops.backup import stores
from plantops.backup.archive import BackupRequest, reap_abandoned, run_backup
from plantops.backup.crypto import AgeKeys, generate_identity
from plantops.backup.errors import CorruptArchive, StoreError
from plantops.backup.policy import DEFAULT_POLICIES
from plantops.backup.restore import BackupReader
from plantops.backup.stores import S3Store, open_store
from plantops.backup.verify import verify_backup
from plantops.store import Catalog


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"b{os.urandom(4).hex()}"
    store = open_store(f"s3://{bucket}/plantops?endpoint={s3_endpoint}")
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket=bucket)
    return store


def test_multipart_streaming_upload_and_checked_read(
    s3: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "PART_SIZE", 5 * 1024 * 1024)
    data = os.urandom(12 * 1024 * 1024 + 123)
    w = s3.writer("p/e/x/obj")
    for i in range(0, len(data), 1 << 20):
        w.write(data[i : i + (1 << 20)])
    assert not s3.exists("p/e/x/obj")  # nothing visible before completion
    stored = w.commit()
    assert stored.size_bytes == len(data)
    assert s3.list("p/e/") == ["p/e/x/obj"]
    body = s3.open_read("p/e/x/obj")
    got = b""
    while chunk := body.read(1 << 20):
        got += chunk
    assert got == data

    aborted = s3.writer("p/e/y/obj")
    aborted.write(os.urandom(6 * 1024 * 1024))
    aborted.abort()
    assert not s3.exists("p/e/y/obj")
    assert s3.delete_prefix("p/e") == 1 and s3.list("p/") == []


@pytest.mark.postgres
def test_encrypted_backup_to_s3_verifies(odoo_db: OdooDb, catalog: Catalog, s3: S3Store) -> None:
    keys = AgeKeys.parse(generate_identity()[0], "test")
    policy = DEFAULT_POLICIES["standard"]
    req = BackupRequest(odoo_db.target, odoo_db.filestore, "porto", "prod", policy, "native")
    rec = run_backup(req, catalog, s3, keys)
    assert rec.store_url.startswith(f"s3://{s3.bucket}/plantops?endpoint=")
    assert any(k.endswith("COMPLETE.json") for k in s3.list(rec.location))
    # The catalog's store URL is enough to find the objects again.
    result = verify_backup(rec, open_store(rec.store_url), odoo_db.target, policy, catalog, keys)
    assert result.passed, result.as_dict()

    # Tamper with one object: the checksum check refuses it.
    name = next(o.name for o in rec.objects if o.name.startswith("manifest"))
    s3.client.put_object(Bucket=s3.bucket, Key=s3.full_key(f"{rec.location}/{name}"), Body=b"x")
    reader = BackupReader(rec, s3, keys)
    with pytest.raises(CorruptArchive), reader.open("manifest.json") as fh:
        while fh.read(1 << 16):
            pass
    assert reap_abandoned(catalog, open_store) == []


def test_unreachable_s3_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = open_store(f"s3://nobucket/x?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1")
    with pytest.raises(StoreError, match="S3"):
        store.list("a/")


def test_imported_odoo_zip_into_s3_encrypted_verifies(
    odoo_db: OdooDb, catalog: Catalog, s3: S3Store, tmp_path: object
) -> None:
    from pathlib import Path

    from odoo_zip import make_odoo_zip

    from plantops.backup.importer import ImportRequest, import_backup
    from plantops.backup.policy import ADHOC_POLICY

    assert isinstance(tmp_path, Path)
    path = make_odoo_zip(odoo_db, tmp_path / "odoo.zip")
    keys = AgeKeys.parse(generate_identity()[0], "test")
    res = import_backup(ImportRequest(path, "lyon", "prod", ADHOC_POLICY), catalog, s3, keys)
    rec = res.record
    assert rec.source == "imported" and [o.name for o in rec.objects] == ["backup.zip.age"]
    assert s3.list(rec.location + "/") == [
        f"{rec.location}/COMPLETE.json",
        f"{rec.location}/backup.zip.age",
    ]
    result = verify_backup(rec, s3, odoo_db.target, DEFAULT_POLICIES["standard"], catalog, keys)
    assert result.passed, result.as_dict()

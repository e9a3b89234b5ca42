"""Back up, verify and restore a real Odoo-like database in every format."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import pytest
from odoo_helpers import OdooDb

from plantops.backup.archive import BackupRequest, run_backup
from plantops.backup.crypto import load_key
from plantops.backup.pg import PgTarget
from plantops.backup.policy import DEFAULT_POLICIES
from plantops.backup.restore import BackupReader, restore_backup
from plantops.backup.stores import LocalStore
from plantops.backup.verify import verify_backup
from plantops.store import Catalog

pytestmark = pytest.mark.postgres

# Clear on purpose: these tests are about each format's round trip (encryption has its own
# tests, and the refusal of a clear backup of a required tier is in test_backup_hostile).
POLICY = dataclasses.replace(DEFAULT_POLICIES["critical"], encryption="optional")


def _request(db: OdooDb, fmt: str) -> BackupRequest:
    return BackupRequest(
        db=db.target, filestore=db.filestore, plant="mlh", env="prod", policy=POLICY, fmt=fmt
    )


@pytest.mark.parametrize("fmt", ["odoo-zip", "native", "dump"])
def test_backup_verify_restore_each_format(
    fmt: str, odoo_db: OdooDb, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    rec = run_backup(_request(odoo_db, fmt), catalog, store)
    assert rec.status == "complete"
    assert rec.row_counts["public.res_partner"] == 500
    assert rec.manifest["modules"] == {"base": "17.0.1.3", "web": "17.0.1.0", "stock": "17.0.1.1"}
    assert all(len(o.sha256) == 64 for o in rec.objects)
    assert store.exists(f"{rec.location}/COMPLETE.json")

    result = verify_backup(rec, store, odoo_db.target, POLICY, catalog)
    assert result.passed, [c.detail for c in result.checks]
    names = {c.name for c in result.checks}
    assert {
        "checksums",
        "restore",
        "row_counts",
        "odoo.module_versions",
        "pg_amcheck",
        "filestore.attachments",
        "odoo.database_uuid",
    } <= names
    assert result.rto_seconds is not None and result.rto_seconds > 0
    assert not odoo_db.cluster.database_exists(result.scratch_db)
    assert catalog.get(rec.id).verified

    target_fs = tmp_path / "restored-fs"
    res = restore_backup(
        BackupReader(rec, store, None), odoo_db.target, f"{odoo_db.name}_copy", target_fs
    )
    try:
        assert res.files == odoo_db.attachments
        assert sorted(p.relative_to(target_fs) for p in target_fs.rglob("*") if p.is_file()) == (
            sorted(
                p.relative_to(odoo_db.filestore)
                for p in odoo_db.filestore.rglob("*")
                if p.is_file()
            )
        )
        with odoo_db.cluster.connect(f"{odoo_db.name}_copy") as conn:
            row = conn.execute("SELECT count(*) FROM res_partner").fetchone()
        assert row == (500,)
    finally:
        odoo_db.cluster.drop_database(f"{odoo_db.name}_copy")


def test_odoo_zip_has_exactly_odoos_layout(
    odoo_db: OdooDb, catalog: Catalog, store: LocalStore
) -> None:
    rec = run_backup(_request(odoo_db, "odoo-zip"), catalog, store)
    path = store.root / rec.location / "backup.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "dump.sql"
        assert names[1] == "manifest.json"
        assert all(n.startswith("filestore/") for n in names[2:])
        assert len(names) == 2 + odoo_db.attachments
        manifest = json.loads(zf.read("manifest.json"))
        dump = zf.read("dump.sql").decode()
    assert set(manifest) == {
        "odoo_dump",
        "db_name",
        "version",
        "version_info",
        "major_version",
        "pg_version",
        "modules",
    }
    assert manifest["odoo_dump"] == "1"
    assert manifest["db_name"] == odoo_db.name
    assert manifest["version"] == "17.0" and manifest["major_version"] == "17.0"
    assert manifest["version_info"] == [17, 0, 0, "final", 0, ""]
    assert manifest["pg_version"] == "15.0"
    assert manifest["modules"]["base"] == "17.0.1.3"
    assert "mrp" not in manifest["modules"]
    assert "CREATE TABLE public.res_partner" in dump
    assert "OWNER TO" not in dump  # --no-owner, as Odoo does


def test_encrypted_backup_roundtrip_and_wrong_key(
    odoo_db: OdooDb, catalog: Catalog, store: LocalStore, age_key: Path, tmp_path: Path
) -> None:
    from plantops.backup.crypto import generate_identity
    from plantops.backup.errors import WrongKey

    keys = load_key(age_key)
    assert keys is not None
    rec = run_backup(_request(odoo_db, "native"), catalog, store, keys)
    assert rec.key_id == keys.key_id and rec.key_id.startswith("age:")
    assert all(o.name.endswith(".age") and o.encrypted for o in rec.objects)
    result = verify_backup(rec, store, odoo_db.target, POLICY, catalog, keys)
    assert result.passed, [c.detail for c in result.checks]

    other = tmp_path / "other.txt"
    other.write_text(generate_identity()[0])
    with pytest.raises(WrongKey, match="was encrypted with key"):
        BackupReader(rec, store, load_key(other))
    with pytest.raises(WrongKey, match="is encrypted"):
        BackupReader(rec, store, None)
    # The secret key never reaches the catalog.
    assert age_key.read_text().split()[-1] not in json.dumps(catalog.get(rec.id).manifest)


def test_backup_of_plain_target_url(pg_cluster: object) -> None:
    t = PgTarget.from_url("postgresql://u:secret@127.0.0.1:1/x")
    assert t.env()["PGPASSWORD"] == "secret"
    assert "secret" not in t.display()


@pytest.mark.parametrize("encrypted", [False, True])
def test_native_restore_streams_data_files_through_fifos(
    encrypted: bool,
    odoo_db: OdooDb,
    catalog: Catalog,
    store: LocalStore,
    age_key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every table data file goes to pg_restore through a FIFO (decrypted, decompressed
    and checksum-checked on the fly) while the filestore is extracted beside it."""
    import plantops.backup.restore as restore_mod

    monkeypatch.setattr(restore_mod, "STREAM_MIN_BYTES", 0)
    keys = load_key(age_key) if encrypted else None
    rec = run_backup(_request(odoo_db, "native"), catalog, store, keys)
    streamed = [
        o
        for o in rec.objects
        if restore_mod._DATA_FILE.fullmatch(
            o.name.removeprefix("db/").removesuffix(".age").removesuffix(".zst")
        )
    ]
    assert len(streamed) >= 5  # res_partner, ir_attachment, ir_module_module, ...
    scratch = odoo_db.cluster.create_database("fifo")
    try:
        timings = restore_mod.restore_all(
            BackupReader(rec, store, keys), odoo_db.target.with_db(scratch), tmp_path / "fs"
        )
        with odoo_db.cluster.connect(scratch) as conn:
            assert conn.execute("SELECT count(*) FROM res_partner").fetchone() == (500,)
    finally:
        odoo_db.cluster.drop_database(scratch)
    assert timings.files == odoo_db.attachments
    assert timings.db_seconds > 0 and timings.filestore_seconds > 0
    result = verify_backup(rec, store, odoo_db.target, POLICY, catalog, keys)
    assert result.passed, [c.detail for c in result.checks]
    assert result.db_restore_seconds is not None and result.filestore_restore_seconds is not None


@pytest.mark.parametrize("damaged", ["db", "filestore.tar.zst"])
def test_damage_in_a_streamed_object_fails_verification_cleanly(
    damaged: str,
    odoo_db: OdooDb,
    catalog: Catalog,
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import plantops.backup.restore as restore_mod

    monkeypatch.setattr(restore_mod, "STREAM_MIN_BYTES", 0)
    rec = run_backup(_request(odoo_db, "native"), catalog, store)
    if damaged == "db":
        obj = max((o for o in rec.objects if o.name.startswith("db/")), key=lambda o: o.size_bytes)
    else:
        (obj,) = [o for o in rec.objects if o.name == damaged]
    path = store.root / rec.location / obj.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = verify_backup(rec, store, odoo_db.target, POLICY, catalog)
    assert not result.passed
    restore_check = next(c for c in result.checks if c.name == "restore")
    assert not restore_check.ok and obj.name in restore_check.detail, restore_check.detail
    with odoo_db.cluster.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'plantops_verify_%'"
        ).fetchone()
    assert left == (0,)

"""``plantops backup import``: an Odoo database-manager zip becomes a normal backup.

The zip is built exactly as Odoo's ``dump_db`` builds it (tests/backup/odoo_zip.py) from
a real PostgreSQL database; the hostile variants are that zip with one thing changed.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from odoo_helpers import OdooDb, make_odoo_db
from odoo_zip import make_odoo_zip, odoo_manifest, rezip
from tests.fixtures.postgres import PgCluster
from typer.testing import CliRunner

from plantops.backup.importer import ImportLimits, ImportRefused, ImportRequest, import_backup
from plantops.backup.policy import ADHOC_POLICY
from plantops.backup.stores import LocalStore
from plantops.cli.main import app
from plantops.store import Catalog

pytestmark = pytest.mark.postgres


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def source_db(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdooDb]:
    db = make_odoo_db(pg_cluster, tmp_path_factory.mktemp("odoo-data"))
    yield db
    pg_cluster.drop_database(db.name)


@pytest.fixture(scope="module")
def odoo_zip(source_db: OdooDb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_odoo_zip(source_db, tmp_path_factory.mktemp("zip") / "lyon_2025-01-31.zip")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_helper_builds_odoos_layout(odoo_zip: Path, source_db: OdooDb) -> None:
    with zipfile.ZipFile(odoo_zip) as zf:
        names = zf.namelist()
        assert names[0] == "dump.sql"
        assert set(names[1:]) == {"manifest.json"} | {
            f"filestore/{n}" for n in _files(source_db.filestore)
        }
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        manifest = json.loads(zf.read("manifest.json"))
        dump = zf.read("dump.sql")
    assert list(manifest) == [
        "odoo_dump",
        "db_name",
        "version",
        "version_info",
        "major_version",
        "pg_version",
        "modules",
    ]
    assert manifest["pg_version"] == "15.0"
    assert b"OWNER TO" not in dump and b"\n\\restrict " in dump  # pg_dump 15.14+


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
def test_import_list_verify_restore(
    encrypted: bool, odoo_zip: Path, source_db: OdooDb, tmp_path: Path, age_key: Path
) -> None:
    state = f"sqlite:///{tmp_path}/s.db"
    server = source_db.cluster.url()
    key = ["--key", str(age_key)] if encrypted else []
    code, out = _invoke(
        "backup", "import", str(odoo_zip), "--store", str(tmp_path / "store"),
        "--plant", "lyon", "--env", "prod", "--state-db", state, "--format", "json", *key,
    )  # fmt: skip
    assert code == 0, out
    imported = json.loads(out)
    bid = imported["id"]
    assert imported["source"] == "imported" and imported["format"] == "odoo-zip"
    assert imported["origin"]["file"] == odoo_zip.name
    assert imported["origin"]["filestore_files"] == source_db.attachments
    # The original manifest is kept as Odoo wrote it.
    with zipfile.ZipFile(odoo_zip) as zf:
        assert imported["odoo_version"] == "17.0"
        original = json.loads(zf.read("manifest.json"))
    [obj] = imported["objects"]
    assert obj["name"] == ("backup.zip.age" if encrypted else "backup.zip")
    if not encrypted:  # stored byte for byte
        assert (tmp_path / "store" / imported["location"] / "backup.zip").read_bytes() == (
            odoo_zip.read_bytes()
        )
    else:
        raw = (tmp_path / "store" / imported["location"] / "backup.zip.age").read_bytes()
        assert raw.startswith(b"age-encryption.org/v1")

    code, out = _invoke("backup", "list", "--state-db", state, "--format", "json")
    assert code == 0, out
    [listed] = json.loads(out)
    assert listed["id"] == bid and listed["status"] == "complete"
    code, out = _invoke("backup", "list", "--state-db", state)
    assert bid in out and "imported" in out and "lyon/prod" in out

    from plantops.store import open_catalog

    cat = open_catalog(state)
    try:
        rec = cat.get(bid)
    finally:
        cat.close()
    assert rec.manifest == original
    with source_db.cluster.connect(source_db.name) as conn:
        from plantops.backup.pg import count_rows

        assert rec.row_counts == count_rows(conn)  # counted from dump.sql's COPY blocks

    code, out = _invoke("backup", "verify", bid, "--server", server, "--state-db", state, *key)
    assert code == 0, out
    assert "PASSED" in out and "row_counts" in out and "filestore.attachments" in out

    copy = f"{source_db.name}_imp"
    fs = tmp_path / "restored-fs"
    try:
        code, out = _invoke(
            "backup", "restore", bid, "--to-db", copy, "--filestore", str(fs),
            "--server", server, "--state-db", state, *key,
        )  # fmt: skip
        assert code == 0, out
        with source_db.cluster.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM res_partner").fetchone() == (500,)
            stored = conn.execute("SELECT store_fname FROM ir_attachment").fetchall()
        assert _files(fs) == _files(source_db.filestore)
        assert {s for (s,) in stored} == set(_files(fs))
    finally:
        source_db.cluster.drop_database(copy)


def test_fleet_mode_checks_the_odoo_series(
    source_db: OdooDb, odoo_zip: Path, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
    state = f"sqlite:///{tmp_path}/s.db"
    common = ["--store", str(tmp_path / "store"), "--state-db", state]
    fleet = ["--fleet", str(example), "--plant", "lyon-meddev", "--env", "prod"]
    old = rezip(
        odoo_zip,
        tmp_path / "v16.zip",
        {
            "manifest.json": json.dumps(
                {
                    **odoo_manifest(source_db, (16, 0, 0, "final", 0, "")),
                    "modules": {"base": "16.0.1.3"},
                },
                indent=4,
            ).encode()
        },
    )
    code, out = _invoke("backup", "import", str(old), *fleet, *common)
    assert code == 2
    assert "Odoo 16.0 but lyon-meddev/prod runs Odoo 17.0" in out and "upgrade" in out
    code, out = _invoke("backup", "import", str(odoo_zip), *fleet, *common, "--format", "json")
    assert code == 0, out
    rec = json.loads(out)
    assert rec["plant"] == "lyon-meddev" and rec["tier"] == rec["policy"]["tier"] != "adhoc"


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _replace_dump(text: bytes, old: bytes, new: bytes) -> bytes:
    assert old in text
    return text.replace(old, new, 1)


HOSTILE: dict[str, Any] = {
    "missing dump.sql": ({"dump.sql": None}, [], "no dump.sql"),
    "missing manifest": ({"manifest.json": None}, [], "no manifest.json"),
    "manifest not json": (
        {"manifest.json": b"{'odoo_dump': 1"},
        [],
        "manifest.json is not valid JSON",
    ),
    "manifest inconsistent": (
        {"manifest.json": "major"},
        [],
        "manifest.json is inconsistent: major_version '18.0' but version_info [17, 0]",
    ),
    "folder zipped": ({}, [("lyon/dump.sql", b"")], "zip the folder's contents"),
    "dot-dot": (
        {},
        [("filestore/../../etc/cron.d/x", b"* * * * * root id")],
        "outside the restore directory",
    ),
    "absolute": ({}, [("/etc/passwd", b"x")], "outside the restore directory"),
    "symlink": ({}, [(_symlink("filestore/ab/link"), b"/etc/shadow")], "is a symbolic link"),
    "control char": ({}, [("filestore/ab/x\ny", b"x")], "control character"),
    "backslash": ({}, [("filestore\\..\\..\\x", b"x")], "backslash"),
    "duplicate": ({}, [("manifest.json", b"{}")], "appears twice"),
    "shell in dump": (
        {"dump.sql": (b"SET statement_timeout = 0;", b"\\! touch /tmp/pwned")},
        [],
        "dump.sql line",
    ),
    "meta in comment": (
        {"dump.sql": (b"-- Dumped by pg_dump", b"-- Dumped\r\\o /tmp/pwned\n-- by pg_dump")},
        [],
        "psql meta-command '\\o /tmp/pwned'",
    ),
    "copy from program": (
        {"dump.sql": (b"FROM stdin;", b"FROM PROGRAM 'id';")},
        [],
        "COPY statement not in pg_dump's form",
    ),
    "truncated dump": ({"dump.sql": "half"}, [], "dump.sql"),
}


def _hostile_zip(src: Path, tmp: Path, case: str) -> Path:
    changes, extra, _ = HOSTILE[case]
    with zipfile.ZipFile(src) as zf:
        dump = zf.read("dump.sql")
        manifest = json.loads(zf.read("manifest.json"))
    real: dict[str, bytes | None] = {}
    for name, change in changes.items():
        if change == "major":
            real[name] = json.dumps({**manifest, "major_version": "18.0"}).encode()
        elif change == "half":
            real[name] = dump[: len(dump) // 2]
        elif isinstance(change, tuple):
            real[name] = _replace_dump(dump, *change)
        else:
            real[name] = change
    return rezip(src, tmp / "hostile.zip", real, extra)


def _assert_nothing_left(tmp_path: Path, state: str) -> None:
    from plantops.store import open_catalog

    cat = open_catalog(state)
    try:
        assert cat.list_backups() == []
    finally:
        cat.close()
    store = tmp_path / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zips_are_refused_with_exit_2(case: str, odoo_zip: Path, tmp_path: Path) -> None:
    path = _hostile_zip(odoo_zip, tmp_path, case)
    state = f"sqlite:///{tmp_path}/s.db"
    code, out = _invoke(
        "backup", "import", str(path), "--store", str(tmp_path / "store"), "--state-db", state
    )
    flat = " ".join(out.split())
    assert code == 2, out
    assert HOSTILE[case][2] in flat, flat
    assert str(path) in flat and ";" in flat  # names the file, then says what to do
    _assert_nothing_left(tmp_path, state)
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("damage", ["not a zip", "truncated", "crc"])
def test_damaged_files_are_refused(damage: str, odoo_zip: Path, tmp_path: Path) -> None:
    data = odoo_zip.read_bytes()
    path = tmp_path / "damaged.zip"
    if damage == "not a zip":
        path.write_bytes(b"-- PostgreSQL database dump\n")
        expected = "not a zip file"
    elif damage == "truncated":
        path.write_bytes(data[: len(data) - 200])
        expected = "truncated"
    else:
        # Store the filestore uncompressed and flip one byte of a file's data: only the
        # member's CRC-32 can tell.
        stored = tmp_path / "stored.zip"
        with zipfile.ZipFile(odoo_zip) as zin, zipfile.ZipFile(stored, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_STORED)
        with zipfile.ZipFile(stored) as zf:
            victim = zf.getinfo(zf.namelist()[-1])
        raw = bytearray(stored.read_bytes())
        start = victim.header_offset + 30 + len(victim.filename.encode())
        raw[start + 5] ^= 0xFF
        path.write_bytes(bytes(raw))
        expected = f"member {victim.filename!r} is damaged"
    state = f"sqlite:///{tmp_path}/s.db"
    code, out = _invoke(
        "backup", "import", str(path), "--store", str(tmp_path / "store"), "--state-db", state
    )
    assert code == 2, out
    assert expected in " ".join(out.split())
    _assert_nothing_left(tmp_path, state)


def test_zip_bombs_are_bounded(
    odoo_zip: Path, tmp_path: Path, catalog: Catalog, store: LocalStore
) -> None:
    def attempt(path: Path, limits: ImportLimits) -> str:
        with pytest.raises(ImportRefused) as err:
            import_backup(
                ImportRequest(path, None, None, ADHOC_POLICY, limits=limits), catalog, store
            )
        return str(err.value)

    bomb = rezip(odoo_zip, tmp_path / "bomb.zip", {}, [("filestore/ff/zeros", bytes(64 << 20))])
    assert bomb.stat().st_size < 2 << 20
    assert "expands 1" in attempt(bomb, ImportLimits()) and "limit 200" in attempt(
        bomb, ImportLimits()
    )
    assert "more than the limit of 10240" in attempt(
        odoo_zip, ImportLimits(max_uncompressed_bytes=10 << 10)
    )
    assert "more than the limit of 3" in attempt(odoo_zip, ImportLimits(max_members=3))
    assert catalog.list_backups() == [] and store.list("") == []


class _FailingStore(LocalStore):
    """A local store whose writes fail (or hang) after the first block."""

    def __init__(self, root: Path, mode: str, notify: int | None = None) -> None:
        super().__init__(root)
        self.mode = mode
        self.notify = notify

    def writer(self, key: str) -> Any:
        inner = super().writer(key)
        outer = self

        class W:
            def __init__(self) -> None:
                self.count = 0

            def write(self, data: bytes, /) -> int:
                n = inner.write(data)
                self.count += 1
                if self.count == 2:
                    if outer.mode == "fail":
                        from plantops.backup.errors import StoreError

                        raise StoreError("no space left on device")
                    assert outer.notify is not None
                    os.write(outer.notify, b"x")
                    signal.pause()
                return n

            def flush(self) -> None:
                inner.flush()

            def commit(self) -> Any:
                return inner.commit()

            def abort(self) -> None:
                inner.abort()

        return W()


def test_a_failing_or_killed_import_leaves_nothing(
    odoo_zip: Path, tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plantops.backup.importer as importer_mod
    from plantops.backup.archive import reap_abandoned
    from plantops.backup.errors import StoreError

    monkeypatch.setattr(importer_mod, "CHUNK", 4096)  # several writes per object
    req = ImportRequest(odoo_zip, "lyon", "prod", ADHOC_POLICY)
    root = tmp_path / "store"
    with pytest.raises(StoreError):
        import_backup(req, catalog, _FailingStore(root, "fail"))
    assert catalog.list_backups() == []
    assert not any(p.is_file() for p in root.rglob("*"))

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the importer, killed with SIGKILL in the middle of writing backup.zip
        try:
            catalog.engine.dispose(close=False)  # never share the parent's connections
            import_backup(req, catalog, _FailingStore(root, "hang", wfd))
        finally:
            os._exit(1)
    try:
        assert os.read(rfd, 1) == b"x"
        running = catalog.list_backups()
        assert [b.status for b in running] == ["running"] and running[0].source == "imported"
        assert [p.name for p in root.rglob("*") if p.is_file()] == ["backup.zip.partial"]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
        os.close(wfd)
    assert reap_abandoned(catalog, lambda url: LocalStore(root)) == [running[0].id]
    assert catalog.list_backups() == []
    assert not any(p.is_file() for p in root.rglob("*"))


def test_a_zip_that_changes_during_the_import_is_refused(
    odoo_zip: Path, tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plantops.backup.importer as importer_mod
    from plantops.errors import UserError

    path = tmp_path / "growing.zip"
    path.write_bytes(odoo_zip.read_bytes())
    monkeypatch.setattr(importer_mod, "CHUNK", 4096)

    class Rewriting(LocalStore):
        def writer(self, key: str) -> Any:
            w = super().writer(key)
            original = w.write

            def write(data: bytes, /) -> int:
                with path.open("r+b") as fh:  # someone still writing the file
                    fh.seek(-100, os.SEEK_END)
                    fh.write(b"\0" * 10)
                return original(data)

            w.write = write  # type: ignore[method-assign]
            return w

    with pytest.raises(UserError, match="changed while it was imported"):
        import_backup(
            ImportRequest(path, None, None, ADHOC_POLICY), catalog, Rewriting(tmp_path / "store")
        )
    assert catalog.list_backups() == []

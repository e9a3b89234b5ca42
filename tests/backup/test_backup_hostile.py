"""Hostile input to the backup commands: names, filestores, tiers, times, paths, URLs, keys.

Every case ends within seconds in a clear refusal (exit 2, naming the option and the
rule), a named infrastructure failure, or a correct result — never a traceback, a hang
or a write outside the store. Cases that need no database run without one: the
refusals must come before anything connects or writes.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odoo_helpers import OdooDb
from tests.bounded import bounded
from tests.fixtures.postgres import PgCluster
from typer.testing import CliRunner

from plantops.backup.archive import (
    BackupRequest,
    EncryptionRequired,
    FilestoreScan,
    backup_location,
    run_backup,
    write_filestore_tar,
)
from plantops.backup.crypto import (
    AGE_ENV,
    AgeKeys,
    AgeProcessWriter,
    decrypting_reader,
    encrypting_writer,
    generate_identity,
)
from plantops.backup.drplan import check_target_time
from plantops.backup.errors import CorruptArchive, WrongKey
from plantops.backup.fleet import BackupTarget, tier_encryption
from plantops.backup.pg import PgTarget
from plantops.backup.policy import ADHOC_POLICY, DEFAULT_POLICIES, policy_for_tier
from plantops.backup.stores import LocalStore, open_store
from plantops.backup.streams import CHUNK, HashingReader, PipedWriter, copy_stream
from plantops.cli.main import app
from plantops.errors import EXIT_USAGE, UserError
from plantops.names import (
    BadName,
    check_backup_id,
    check_database,
    check_label,
    check_prefix,
)
from plantops.services.backup import open_target
from plantops.spec.models import TierSpec
from plantops.store import open_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
CANARY = b"CANARY-secret-outside-the-filestore-7f3a"
# Nothing listens here: a command that got as far as connecting fails with exit 3, so an
# exit 2 proves the refusal came first.
NO_DB = "postgresql://postgres@127.0.0.1:1/odoo_lyon"


_bounded = bounded


def _cli(*args: str) -> tuple[int, str]:
    result = _bounded(lambda: CliRunner().invoke(app, list(args)))
    assert not isinstance(result, BaseException), result
    assert result.exception is None or isinstance(result.exception, SystemExit), (  # type: ignore[attr-defined]
        f"traceback: {result.exception!r}"  # type: ignore[attr-defined]
    )
    return result.exit_code, result.output  # type: ignore[attr-defined]


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


# --- names: one rule, in one place --------------------------------------------------

HOSTILE_NAMES = [
    "prod/../../x",
    "..",
    ".",
    "../etc",
    "a/b",
    "/abs",
    "nul\0byte",
    "tab\tname",
    "new\nline",
    "Prod",
    "ŝtaging",
    "prod\u202e",  # right-to-left override
    "x" * 64,
    "x" * 100_000,
    "",
    "-prod",
    "prod-",
    "prod.stage",
    "a\\b",
    "~root",
    "$(id)",
    "prod ",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_label_is_refused_naming_option_and_rule(name: str) -> None:
    with pytest.raises(BadName) as info:
        check_label(name, "--env")
    message = str(info.value)
    assert info.value.exit_code == EXIT_USAGE
    assert message.startswith("--env ") and "lowercase letters, digits" in message
    assert len(message) < 400  # a 100,000-character name is cut, not echoed
    assert "\0" not in message and "\n" not in message


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_label_rule_accepts_only_safe_path_segments(name: str) -> None:
    try:
        check_label(name, "--plant")
    except BadName:
        return
    assert name.isascii() and name == name.lower()
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert name not in (".", "..") and not name.startswith(".")
    assert 1 <= len(name) <= 63


@given(st.text(max_size=80), st.text(max_size=80))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_backup_location_stays_inside_the_store(
    tmp_path_factory: pytest.TempPathFactory, plant: str, env: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "store-confinement"
    store = LocalStore(root)
    started = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    try:
        location = backup_location(plant, env, started, "0123456789ab")
    except BadName:
        return
    path = store._path(f"{location}/COMPLETE.json")
    assert path.is_relative_to(store.root)
    assert path.relative_to(store.root).parts[:2] == (plant, env)


@given(st.text(max_size=70))
@settings(max_examples=200, deadline=None)
def test_database_rule_is_odoos_and_fits_postgres(name: str) -> None:
    try:
        check_database(name, "--to-db")
    except BadName as exc:
        assert str(exc).startswith("--to-db ")
        return
    assert name.isascii() and len(name.encode()) <= 63
    assert name[0].isalnum() and "/" not in name and ".." not in name[:1]


@pytest.mark.parametrize("value", ["../x", "0123456789abc", "ABC", "", "g1", "1; drop"])
def test_backup_id_rule(value: str) -> None:
    with pytest.raises(BadName, match="hexadecimal"):
        check_backup_id(value, "BACKUP_ID")


@pytest.mark.parametrize("prefix", ["a/../b", "..", "a/./b", "a//b", ".hidden", "a\0b", "a b"])
def test_store_prefix_rule(prefix: str) -> None:
    with pytest.raises(BadName, match="store prefix"):
        check_prefix(prefix, "prefix")
    with pytest.raises(UserError):
        open_store(f"s3://bucket/{prefix}")
    assert check_prefix("/plantops/eu-west/", "prefix") == "plantops/eu-west"


@pytest.mark.parametrize("option", ["--plant", "--env"])
@pytest.mark.parametrize("name", HOSTILE_NAMES[:14], ids=repr)
def test_backup_run_refuses_hostile_names_before_anything(
    tmp_path: Path, option: str, name: str
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    values = {"--plant": "lyon", "--env": "prod", option: name}
    code, out = _cli(
        "backup", "run", "--db-url", NO_DB, "--store", str(store),
        "--state-db", f"sqlite:///{state}/s.db",
        "--plant", values["--plant"], "--env", values["--env"],
    )  # fmt: skip
    assert code == EXIT_USAGE, out
    assert f"{option} " in out and "not a valid label" in out
    assert _tree(tmp_path) == set()  # no store, no catalog, nothing outside either


def test_issue_example_env_with_dot_dot_writes_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    code, out = _cli(
        "backup", "run", "--db-url", NO_DB, "--plant", "lyon", "--env", "prod/../../x",
        "--store", str(cwd / "store"), "--state-db", f"sqlite:///{cwd}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and "--env 'prod/../../x' is not a valid label" in out
    assert _tree(tmp_path) == {"work"}


def test_adhoc_plant_defaults_to_the_database_name_only_when_it_is_a_label(
    tmp_path: Path,
) -> None:
    code, out = _cli(
        "backup", "run", "--db-url", "postgresql://postgres@127.0.0.1:1/Odoo.Prod",
        "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and "pass --plant" in out
    assert _tree(tmp_path) == set()


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "list", "--plant", "../x"],
        ["backup", "prune", "--dry-run", "--env", "a/b"],
        ["backup", "verify", "../../etc"],
        ["backup", "restore", "zz", "--to-db", "copy"],
        ["backup", "restore", "abc123", "--to-db", "../copy"],
        ["backup", "restore", "abc123", "--to-db", "x" * 64],
    ],
)
def test_other_commands_refuse_hostile_names(tmp_path: Path, args: list[str]) -> None:
    code, out = _cli(*args, "--state-db", f"sqlite:///{tmp_path}/s.db")
    assert code == EXIT_USAGE and "is not a valid" in out, out
    assert _tree(tmp_path) == set()


# --- filestores: regular files inside the tree only -----------------------------------


def _read_tar(data: bytes) -> dict[str, bytes]:
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        out = {}
        for m in tar.getmembers():
            assert m.isreg(), m.name
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


def _archive(filestore: Path) -> tuple[dict[str, bytes], dict[str, str], bytes]:
    scan = FilestoreScan(filestore)
    buf = io.BytesIO()
    result = _bounded(lambda: write_filestore_tar(buf, filestore, 3, scan))
    assert not isinstance(result, BaseException), result
    return _read_tar(buf.getvalue()), {s.path: s.reason for s in scan.skipped}, buf.getvalue()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(CANARY)
    return secret


def _hostile_filestore(root: Path, outside: Path) -> Path:
    fs = root / "filestore" / "odoo_lyon"
    (fs / "ab").mkdir(parents=True)
    (fs / "ab" / "ab12").write_bytes(b"attachment")
    (fs / "ab" / "in-link").symlink_to("ab12")
    (fs / "ab" / "out-link").symlink_to(outside)
    (fs / "ab" / "etc-shadow").symlink_to("/etc/shadow")
    (fs / "ab" / "dotdot").symlink_to("../../../outside/shadow")
    (fs / "ab" / "dangling").symlink_to("nowhere")
    (fs / "ab" / "loop").symlink_to("loop")
    (fs / "dirlink").symlink_to(outside.parent, target_is_directory=True)
    (fs / "selfdir").symlink_to(".", target_is_directory=True)
    os.mkfifo(fs / "ab" / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(fs / "ab" / "sock"))
    sock.close()
    return fs


def test_filestore_links_and_special_files_are_skipped_and_named(
    tmp_path: Path, outside: Path
) -> None:
    fs = _hostile_filestore(tmp_path, outside)
    members, skipped, raw = _archive(fs)
    assert members == {"ab/ab12": b"attachment", "ab/in-link": b"attachment"}
    assert CANARY not in zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    assert "outside the filestore" in skipped["ab/out-link"]
    assert "outside the filestore" in skipped["ab/etc-shadow"]
    assert "outside the filestore" in skipped["ab/dotdot"]
    assert "dangling" in skipped["ab/dangling"]
    assert "loop" in skipped["ab/loop"]
    assert "outside the filestore" in skipped["dirlink"]
    assert "directory" in skipped["selfdir"]
    assert "named pipe" in skipped["ab/fifo"]
    assert "socket" in skipped["ab/sock"]


def test_entry_swapped_for_a_fifo_or_link_after_the_scan_is_skipped(
    tmp_path: Path, outside: Path
) -> None:
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "a").write_bytes(b"a")
    (fs / "b").write_bytes(b"b")
    scan = FilestoreScan(fs)
    entries = list(scan.entries())
    (fs / "a").unlink()
    os.mkfifo(fs / "a")
    (fs / "b").unlink()
    (fs / "b").symlink_to(outside)

    def open_all() -> list[object]:
        out: list[object] = []
        for e in entries:
            with scan.open(e) as opened:
                out.append(opened)
        return out

    assert _bounded(open_all) == [None, None]
    reasons = {s.path: s.reason for s in scan.skipped}
    assert "named pipe" in reasons["a"] and "symbolic link" in reasons["b"]


KINDS = ["file", "link_in", "link_out", "dangling", "fifo", "loop", "dir", "dirlink_out"]


@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 3)), max_size=14))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_generated_filestores_archive_exactly_their_regular_files(
    tmp_path_factory: pytest.TempPathFactory, layout: list[tuple[str, int]]
) -> None:
    base = tmp_path_factory.mktemp("gen")
    secret = base / "secret"
    secret.write_bytes(CANARY)
    fs = base / "fs"
    fs.mkdir()
    expected: dict[str, bytes] = {}
    skipped_names: set[str] = set()
    for i, (kind, depth) in enumerate(layout):
        folder = fs.joinpath(*[f"d{j}" for j in range(depth)])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{kind}{i}"
        rel = path.relative_to(fs).as_posix()
        if kind == "file":
            path.write_bytes(f"content {i}".encode())
            expected[rel] = f"content {i}".encode()
        elif kind == "link_in":
            target = fs / f"target{i}"
            target.write_bytes(b"inside")
            expected[f"target{i}"] = b"inside"
            path.symlink_to(target)
            expected[rel] = b"inside"
        elif kind == "link_out":
            path.symlink_to(secret)
            skipped_names.add(rel)
        elif kind == "dangling":
            path.symlink_to(base / "missing")
            skipped_names.add(rel)
        elif kind == "fifo":
            os.mkfifo(path)
            skipped_names.add(rel)
        elif kind == "loop":
            path.symlink_to(path.name)
            skipped_names.add(rel)
        elif kind == "dir":
            path.mkdir()
        else:
            path.symlink_to(base, target_is_directory=True)
            skipped_names.add(rel)
    members, skipped, _ = _archive(fs)
    assert members == expected
    assert set(skipped) == skipped_names
    assert all(CANARY not in body for body in members.values())
    assert _tree(base) - _tree(fs) <= {"secret", "fs"} | {
        f"fs/{p}" for p in _tree(fs)
    }  # nothing written beside the filestore


# --- tiers, encryption defaults -------------------------------------------------------


def test_unknown_tier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a known tier"):
        policy_for_tier("mega")
    assert policy_for_tier("adhoc") is ADHOC_POLICY
    code, out = _cli(
        "backup", "run", "--db-url", NO_DB, "--tier", "mega", "--plant", "lyon",
        "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and "--tier 'mega' is not a known tier" in out
    code, out = _cli(
        "backup", "run", "--fleet", str(EXAMPLE), "--plant", "lyon-meddev", "--env", "prod",
        "--tier", "mega", "--db-url", NO_DB,
        "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and "tier 'mega' is not defined" in out
    assert _tree(tmp_path) == set()


@pytest.mark.parametrize("tier", ["critical", "high"])
def test_required_tier_without_key_is_refused_and_nothing_written(
    tmp_path: Path, tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLANTOPS_BACKUP_KEY", raising=False)
    code, out = _cli(
        "backup", "run", "--db-url", NO_DB, "--tier", tier, "--plant", "lyon",
        "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and f"tier {tier} requires encrypted backups" in out
    assert "nothing was written" in out
    catalog = open_catalog(f"sqlite:///{tmp_path}/cat.db")
    try:
        req = BackupRequest(PgTarget.from_url(NO_DB), None, "lyon", "prod", DEFAULT_POLICIES[tier])
        with pytest.raises(EncryptionRequired):
            run_backup(req, catalog, LocalStore(tmp_path / "store"), None)
        assert catalog.list_backups() == []
    finally:
        catalog.close()
    assert not (tmp_path / "store").exists()


def _tier(rank: int, encryption: str | None = None) -> TierSpec:
    backup: dict[str, object] = {
        "rpo_minutes": 60,
        "rto_minutes": 60,
        "retention": {"daily": 7, "weekly": 4, "monthly": 3},
    }
    if encryption is not None:
        backup["encryption"] = encryption
    return TierSpec.model_validate(
        {
            "rank": rank,
            "web_replicas": 1,
            "postgres_instances": 1,
            "resource_profile": "small",
            "backup": backup,
            "slo": {"availability": 99.0, "latency_p95_ms": 800},
        }
    )


def test_encryption_default_follows_the_tier_and_fleet_yaml_overrides_it() -> None:
    assert tier_encryption("critical", _tier(3)) == "required"
    assert tier_encryption("high", _tier(4)) == "required"
    assert tier_encryption("gold", _tier(1)) == "required"
    assert tier_encryption("silver", _tier(2)) == "required"
    assert tier_encryption("standard", _tier(3)) == "optional"
    assert tier_encryption("critical", _tier(1, "optional")) == "optional"
    assert tier_encryption("pilot", _tier(4, "required")) == "required"
    assert DEFAULT_POLICIES["standard"].encryption == "optional"
    with pytest.raises(ValueError, match="encryption"):
        _tier(1, "sometimes")


# --- encryption: age binary, pyrage, damaged objects named ----------------------------


@pytest.fixture
def keys() -> AgeKeys:
    secret, _ = generate_identity()
    return AgeKeys.parse(secret, "test key")


def _encrypt(data: bytes, keys: AgeKeys) -> bytes:
    out = io.BytesIO()
    w = encrypting_writer(out, keys)
    for i in range(0, len(data), CHUNK):
        w.write(data[i : i + CHUNK])
    w.close()
    return out.getvalue()


def _decrypt(data: bytes, keys: AgeKeys, name: str = "db.dump.age") -> bytes:
    out = io.BytesIO()
    reader = decrypting_reader(io.BytesIO(data), keys, name)
    try:
        copy_stream(reader, out)
    finally:
        reader.close()
    return out.getvalue()


@pytest.mark.parametrize("engine", ["age", "pyrage"])
def test_both_encryption_engines_write_age_that_pyrage_reads(
    keys: AgeKeys, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "pyrage":
        monkeypatch.setenv(AGE_ENV, "")
    else:
        monkeypatch.delenv(AGE_ENV, raising=False)
    writer = encrypting_writer(io.BytesIO(), keys)
    expected = AgeProcessWriter if engine == "age" else PipedWriter
    assert isinstance(writer, expected), "the age binary is installed by `make test`"
    writer.close()
    data = os.urandom(3 * CHUNK + 17)
    cipher = _encrypt(data, keys)
    assert cipher.startswith(b"age-encryption.org/v1\n")
    assert _decrypt(cipher, keys) == data


@pytest.mark.parametrize("cut", ["truncated", "flipped-payload", "flipped-header"])
def test_damaged_encrypted_object_is_named(keys: AgeKeys, cut: str) -> None:
    cipher = bytearray(_encrypt(os.urandom(200_000), keys))
    if cut == "truncated":
        cipher = cipher[:-100]
    elif cut == "flipped-payload":
        cipher[-5000] ^= 1
    else:  # the header's MAC line
        cipher[cipher.index(b"\n--- ") + 8] ^= 1
    with pytest.raises(CorruptArchive) as info:
        _decrypt(bytes(cipher), keys)
    assert "db.dump.age" in str(info.value) and str(info.value) != "decryption error"
    # Through the checksum reader the full location is named, and the checksum speaks.
    reader = HashingReader(io.BytesIO(bytes(cipher)), "lyon/prod/x-1/db.dump.age", "0" * 64, None)
    plain = decrypting_reader(reader, keys, "db.dump.age")
    try:
        with pytest.raises(CorruptArchive, match="lyon/prod/x-1/db.dump.age"):
            copy_stream(plain, io.BytesIO())
    finally:
        plain.close()


def test_wrong_key_is_named_as_such(keys: AgeKeys) -> None:
    cipher = _encrypt(b"data", keys)
    other = AgeKeys.parse(generate_identity()[0], "other")
    with pytest.raises(WrongKey, match=r"object db\.dump\.age.*not encrypted to key age:"):
        _decrypt(cipher, other)


# --- bad paths, URLs, times -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("mysql://root@db/odoo", "mysql"), ("mongodb://x", "mongodb"), ("http://h/x", "http")],
)
def test_non_postgres_database_urls_name_the_accepted_schemes(
    tmp_path: Path, url: str, scheme: str
) -> None:
    code, out = _cli(
        "backup", "run", "--db-url", url, "--plant", "lyon",
        "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and f"scheme '{scheme}' is not supported" in out
    assert "postgresql://" in out
    code, out = _cli("backup", "verify", "abc", "--server", url)
    assert code == EXIT_USAGE and "--server" in out and "postgresql://" in out
    assert _tree(tmp_path) == set()


@pytest.mark.parametrize("url", ["mongodb://x", "mysql://root@h/db", "redis://h"])
def test_state_db_url_scheme_is_checked(tmp_path: Path, url: str) -> None:
    code, out = _cli("backup", "list", "--state-db", url)
    assert code == EXIT_USAGE and "sqlite:///PATH" in out and "postgresql://" in out


def test_state_db_in_an_impossible_folder_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, out = _cli("backup", "list", "--state-db", f"sqlite:///{tmp_path}/file/sub/s.db")
    assert code == EXIT_USAGE and "cannot be created" in out


def test_restore_filestore_must_be_a_directory(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    os.mkfifo(tmp_path / "fifo")
    for path, what in [(afile, "a regular file"), (tmp_path / "fifo", "a named pipe")]:
        code, out = _cli(
            "backup", "restore", "abc123", "--to-db", "copy", "--filestore", str(path)
        )  # fmt: skip
        assert code == EXIT_USAGE and f"is {what}" in out, out
    code, out = _cli(
        "backup", "restore", "abc123", "--to-db", "copy",
        "--filestore", str(tmp_path / "missing" / "fs"),
    )  # fmt: skip
    assert code == EXIT_USAGE and "does not exist" in out
    assert afile.read_text() == "keep me"


DR = ["dr", "plan", "--fleet", str(EXAMPLE), "--plant", "porto-plastics", "--env", "prod"]


def test_dr_plan_out_paths_are_checked(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep")
    code, out = _cli(*DR, "--out", str(afile))
    assert code == EXIT_USAGE and "is not a directory" in out
    code, out = _cli(*DR, "--out", str(afile / "sub"))
    assert code == EXIT_USAGE and f"{afile} is a file, not a folder" in out, out
    code, out = _cli(*DR, "--out", str(tmp_path / "no" / "such" / "dir"))
    assert code == EXIT_USAGE and "does not exist" in out
    assert afile.read_text() == "keep"
    code, out = _cli(*DR, "--out", str(tmp_path / "dr"))
    assert code == 0, out
    assert (tmp_path / "dr" / "RUNBOOK.md").is_file()


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        (dt.timedelta(days=-1), "is in the future"),
        (dt.timedelta(days=-(365 * 73)), "is in the future"),
        (dt.timedelta(days=400), "before the oldest backup"),
        (dt.timedelta(days=365 * 30), "before the oldest backup"),
    ],
)
def test_dr_plan_target_time_outside_the_recoverable_window(
    tmp_path: Path, delta: dt.timedelta, message: str
) -> None:
    when = (dt.datetime.now(dt.UTC) - delta).replace(microsecond=0)
    code, out = _cli(*DR, "--target-time", when.isoformat(), "--out", str(tmp_path / "dr"))
    assert code == EXIT_USAGE and message in out, out
    assert not (tmp_path / "dr").exists()


@functools.cache
def _porto() -> BackupTarget:
    return open_target(EXAMPLE, "porto-plastics", "prod")


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2999, 1, 1)))
@settings(max_examples=40, deadline=None)
def test_dr_plan_generated_target_times(when: dt.datetime) -> None:
    target = _porto()
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    aware = when.replace(tzinfo=dt.UTC)
    window = dt.timedelta(days=target.tier_spec.backup.retention.daily)
    assert window.days > 0
    try:
        check_target_time(target, aware, now)
    except UserError as exc:
        assert aware > now or aware < now - window, str(exc)
        return
    assert now - window <= aware <= now


# --- against a real PostgreSQL: Odoo check, hostile filestore in a real backup --------


def _run(db_url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    return _cli(
        "backup", "run", "--db-url", db_url, "--plant", "lyon", "--env", "prod",
        "--store", str(tmp_path / "store"), "--state-db", f"sqlite:///{tmp_path}/s.db",
        "--format", "json", *extra,
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("schema", ["", "registry-without-base"])
def test_non_odoo_database_is_refused_unless_allowed(
    pg_cluster: PgCluster, tmp_path: Path, schema: str
) -> None:
    name = pg_cluster.create_database("notodoo")
    try:
        with pg_cluster.connect(name) as conn:
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
            if schema:
                conn.execute(
                    "CREATE TABLE ir_module_module (id serial, name varchar, state varchar,"
                    " latest_version varchar);"
                    "INSERT INTO ir_module_module (name, state) VALUES ('base', 'to install')"
                )
        code, out = _run(pg_cluster.url(name), tmp_path)
        assert code == EXIT_USAGE and "is not an Odoo database" in out
        assert "--allow-non-odoo" in out
        assert _tree(tmp_path / "store") == set()
        code, out = _cli("backup", "list", "--format", "json", "--state-db",
                         f"sqlite:///{tmp_path}/s.db")  # fmt: skip
        assert code == 0 and out.strip() == "[]"
        code, out = _run(pg_cluster.url(name), tmp_path, "--allow-non-odoo")
        assert code == 0, out
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["odoo-zip", "native"])
def test_real_backup_of_a_hostile_filestore(
    odoo_db: OdooDb, tmp_path: Path, outside: Path, fmt: str
) -> None:
    fs = odoo_db.filestore
    (fs / "zz").mkdir()
    (fs / "zz" / "shadow").symlink_to("/etc/shadow")
    (fs / "zz" / "out").symlink_to(outside)
    os.mkfifo(fs / "zz" / "fifo")
    (fs / "zz" / "loop").symlink_to("loop")
    code, out = _run(odoo_db.url, tmp_path, "--filestore", str(fs), "--archive-format", fmt)
    assert code == 0, out
    payload = out[out.index("{") :]
    rec = json.loads(payload[: payload.rindex("}") + 1])
    skipped = {s["path"]: s["reason"] for s in rec["origin"]["filestore_skipped"]}
    assert set(skipped) == {"zz/shadow", "zz/out", "zz/fifo", "zz/loop"}
    assert "skipped zz/fifo: a named pipe (FIFO), not a regular file" in out
    store = tmp_path / "store"
    marker = json.loads(next(store.rglob("COMPLETE.json")).read_text())
    assert {s["path"] for s in marker["filestore_skipped"]} == set(skipped)
    for obj in store.rglob("*"):
        if obj.is_file():
            data = obj.read_bytes()
            if obj.name.endswith(".zst"):
                data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
            elif obj.name.endswith(".zip"):
                with zipfile.ZipFile(obj) as zf:
                    names = zf.namelist()
                    assert not [n for n in names if n.startswith("filestore/zz/")]
                    assert len([n for n in names if n.startswith("filestore/")]) == (
                        odoo_db.attachments
                    )
                    data = b"".join(zf.read(n) for n in names)
            assert CANARY not in data
    # The restore of such a backup brings back exactly the regular files.
    code, out = _cli(
        "backup", "verify", rec["id"], "--server", odoo_db.cluster.url(),
        "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == 0, out


def test_fleet_tiers_carry_their_encryption_rule_into_the_backup_policy() -> None:
    from plantops.backup.fleet import target_for
    from plantops.services import open_fleet
    from plantops.services.backup import utc_today

    fleet = open_fleet(EXAMPLE, today=utc_today()).fleet
    seen = set()
    for plant in fleet.plants:
        target = target_for(fleet, plant.code, "prod")
        rank = fleet.tier(target.tier).rank
        want = "required" if target.tier in ("critical", "high") or rank <= 2 else "optional"
        assert target.policy.encryption == want, (plant.code, target.tier)
        seen.add(want)
    assert seen == {"required", "optional"}  # the example exercises both


def test_key_file_that_is_a_fifo_or_too_big_is_refused_quickly(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"#" * 100_000)
    for name, why in [("fifo", "named pipe"), ("big", "over the limit"), ("none", "no such")]:
        code, out = _cli(
            "backup", "run", "--db-url", NO_DB, "--plant", "lyon", "--key", str(tmp_path / name),
            "--store", str(tmp_path / "s"), "--state-db", f"sqlite:///{tmp_path}/st/s.db",
        )  # fmt: skip
        assert code == EXIT_USAGE and "cannot read key file" in out and why in out, out
    assert not (tmp_path / "s").exists()


def test_store_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("keep")
    code, out = _cli(
        "backup", "run", "--db-url", NO_DB, "--plant", "lyon", "--store", str(tmp_path / "afile"),
        "--state-db", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == EXIT_USAGE and "is not a directory" in out, out
    assert (tmp_path / "afile").read_text() == "keep"

"""Point-in-time recovery with real PostgreSQL 15 and pgBackRest (posix repository)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from tests.fixtures.pgbackrest import local_pgbackrest_conf
from tests.fixtures.postgres import free_port, make_shared_dir, start_cluster
from typer.testing import CliRunner

from plantops.backup.pgbackrest import archive_command
from plantops.cli.main import app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["backup", "pitr", *args])
    return result.exit_code, result.output


def test_pitr_cli_recovers_to_target_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """init → full → incr → restore to a time between markers, all through the CLI, with
    the cipher passphrase from the environment as the rendered fleet config expects."""
    monkeypatch.setenv("PGBACKREST_REPO1_CIPHER_PASS", "test-cipher-pass")
    base = make_shared_dir("plantops-pitr-")
    cluster = None
    restored = None
    restored_base = None
    latest = None
    latest_base = None
    try:
        for sub in ("repo", "spool", "log", "lock"):
            (base / sub).mkdir()
            shutil.chown(base / sub, "postgres", "postgres")
        port = free_port()
        conf_file = base / "pgbackrest.conf"
        # The config plan renders for a VM plant, on a local repository: no passphrase
        # in the file (it comes from PGBACKREST_REPO1_CIPHER_PASS).
        conf_file.write_text(local_pgbackrest_conf("pitr", base, port))
        assert "test-cipher-pass" not in conf_file.read_text()
        shutil.chown(conf_file, "postgres", "postgres")
        conf = str(conf_file)
        cluster = start_cluster(
            base,
            {
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"'{archive_command(conf_file, 'pitr')}'",
                "max_wal_senders": "3",
            },
            port=port,
        )
        code, out = _cli("init", "--config", conf)  # the config's only stanza
        assert code == 0 and "stanza pitr created" in out, out
        with cluster.connect() as conn:
            conn.execute("CREATE TABLE marker (label text, at timestamptz DEFAULT now())")
            conn.execute("INSERT INTO marker (label) VALUES ('before-full')")
        code, out = _cli("backup", "--config", conf, "--stanza", "pitr", "--type", "full")
        assert code == 0 and "pgBackRest full backup" in out, out
        with cluster.connect() as conn:
            conn.execute("INSERT INTO marker (label) VALUES ('before-target')")
            code, out = _cli("backup", "--config", conf, "--type", "incr")
            assert code == 0 and "pgBackRest incr backup" in out, out
            time.sleep(1.1)
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            target = row[0]
            time.sleep(1.1)
            conn.execute("INSERT INTO marker (label) VALUES ('after-target')")
            conn.execute("SELECT pg_switch_wal()")
        code, out = _cli("check", "--config", conf)  # waits until that WAL is archived
        assert code == 0, out
        code, out = _cli("info", "--config", conf, "--format", "json")
        assert code == 0, out
        assert [b["type"] for b in json.loads(out)] == ["full", "incr"]
        code, out = _cli("backup", "--config", conf, "--stanza", "nope")
        assert code == 2 and "not in" in out
        cluster.stop()

        restored_base = make_shared_dir("plantops-pitr-restore-")
        when = target.isoformat()
        # Never in place, never over existing data.
        code, out = _cli(
            "restore", "--config", conf, "--target-time", when, "--to", str(base / "data")
        )
        assert code == 2 and "never in place" in out, out
        occupied = restored_base / "occupied"
        occupied.mkdir()
        (occupied / "keep-me").write_text("x")
        code, out = _cli("restore", "--config", conf, "--target-time", when, "--to", str(occupied))
        assert code == 2 and "not an empty directory" in out, out
        assert (occupied / "keep-me").read_text() == "x"
        code, out = _cli(
            "restore", "--config", conf, "--target-time", "2025-01-01T00:00", "--to", "/x"
        )
        assert code == 2 and "time zone" in out
        # Times no backup can reach are refused before pgBackRest runs (issue 10, class 6).
        fresh = restored_base / "fresh"
        for bad, why in [
            ("2099-01-01T00:00:00+00:00", "is in the future"),
            ("2000-01-01T00:00:00+00:00", "before the end of the oldest backup"),
        ]:
            code, out = _cli("restore", "--config", conf, "--target-time", bad, "--to", str(fresh))
            assert code == 2 and why in out, out
            assert not fresh.exists()

        restored_data = restored_base / "data"
        code, out = _cli(
            "restore", "--config", conf, "--target-time", when, "--to", str(restored_data)
        )
        assert code == 0, out
        # The old server is stopped, but keep the restored one out of the stanza anyway.
        with (restored_data / "postgresql.auto.conf").open("a") as fh:
            fh.write("archive_mode = off\n")
        restored = start_cluster_existing(restored_base)
        deadline = time.monotonic() + 60
        while True:
            with restored.connect() as conn:
                rec = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if rec == (False,) or time.monotonic() > deadline:
                    break
            time.sleep(0.3)
        with restored.connect() as conn:
            labels = {r[0] for r in conn.execute("SELECT label FROM marker").fetchall()}
        assert labels == {"before-full", "before-target"}

        # --latest (what `dr plan` prints without --target-time): the end of the archive.
        latest_base = make_shared_dir("plantops-pitr-latest-")
        code, out = _cli("restore", "--config", conf, "--latest", "--to", str(latest_base / "data"))
        assert code == 0 and "the end of the archived WAL" in out, out
        with (latest_base / "data" / "postgresql.auto.conf").open("a") as fh:
            fh.write("archive_mode = off\n")
        latest = start_cluster_existing(latest_base)
        deadline = time.monotonic() + 60
        while True:
            with latest.connect() as conn:
                rec = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if rec == (False,) or time.monotonic() > deadline:
                    break
            time.sleep(0.3)
        with latest.connect() as conn:
            labels = {r[0] for r in conn.execute("SELECT label FROM marker").fetchall()}
        assert labels == {"before-full", "before-target", "after-target"}
    finally:
        if latest is not None:
            latest.stop()
        if latest_base is not None:
            shutil.rmtree(latest_base, ignore_errors=True)
        if restored is not None:
            restored.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        if restored_base is not None:
            shutil.rmtree(restored_base, ignore_errors=True)


def test_pitr_config_is_the_file_plan_renders(tmp_path: Path) -> None:
    import datetime as dt

    from plantops.services import plan_fleet

    example = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
    plan_fleet(example, tmp_path / "out", today=dt.date.today(), plants=["leipzig-vm"])
    for env in ("prod", "staging"):
        rendered = (tmp_path / "out" / "vms" / f"leipzig-vm-{env}" / "pgbackrest.conf").read_text()
        code, out = _cli("config", "--fleet", str(example), "--plant", "leipzig-vm", "--env", env)
        assert code == 0 and out == rendered
        written = tmp_path / f"{env}.conf"
        code, _ = _cli(
            "config",
            "--fleet",
            str(example),
            "--plant",
            "leipzig-vm",
            "--env",
            env,
            "--out",
            str(written),
        )
        assert code == 0 and written.read_text() == rendered
    code, out = _cli("config", "--fleet", str(example), "--plant", "lyon-meddev", "--env", "prod")
    assert code == 2 and "CloudNativePG" in out


def start_cluster_existing(base: Path):  # type: ignore[no-untyped-def]
    """Start a restored data directory on a fresh port."""
    import subprocess

    from tests.fixtures.postgres import PgCluster, as_postgres, pg_bindir

    port = free_port()
    sock = base / "sock"
    sock.mkdir(exist_ok=True)
    shutil.chown(sock, "postgres", "postgres")
    with (base / "data" / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"port = {port}\nunix_socket_directories = '{sock}'\n")
    log = base / "postgres.log"
    subprocess.run(
        as_postgres(
            [
                str(pg_bindir() / "pg_ctl"),
                "-D",
                str(base / "data"),
                "-l",
                str(log),
                "-w",
                "-t",
                "120",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return PgCluster(datadir=base / "data", sockdir=sock, port=port, logfile=log)

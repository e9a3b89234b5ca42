"""Point-in-time recovery with real PostgreSQL 15 and pgBackRest (posix repository)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from tests.fixtures.postgres import free_port, make_shared_dir, start_cluster

from plantops.backup.pgbackrest import PgBackRest, PgBackRestConfig, archive_command, render_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_render_config_s3_and_cipher_reference() -> None:
    from plantops.backup.pgbackrest import S3Repo

    cfg = PgBackRestConfig(
        stanza="leipzig-prod",
        pg_path=Path("/var/lib/postgresql/15/main"),
        s3=S3Repo("acme-pgbackrest", "s3.eu-central-1.amazonaws.com", "eu-central-1"),
        cipher_pass_ref="env:PGBR_CIPHER",
    )
    text = render_config(cfg)
    assert "repo1-type=s3" in text and "compress-type=zst" in text
    assert "repo1-cipher-type=aes-256-cbc" in text
    assert "repo1-cipher-pass=" not in text  # only the reference, never the secret
    assert "archive-async=y" in text and "[leipzig-prod]" in text
    assert "repo1-cipher-pass=s3cret" in render_config(cfg, cipher_pass="s3cret")


def test_pitr_recovers_to_target_time() -> None:
    base = make_shared_dir("plantops-pitr-")
    cluster = None
    restored = None
    try:
        for sub in ("repo", "spool", "log", "lock"):
            (base / sub).mkdir()
            shutil.chown(base / sub, "postgres", "postgres")
        port = free_port()
        cfg = PgBackRestConfig(
            stanza="pitr",
            pg_path=base / "data",
            pg_port=port,
            pg_socket_path=base / "sock",
            repo_path=base / "repo",
            spool_path=base / "spool",
            log_path=base / "log",
            lock_path=base / "lock",
            process_max=2,
            cipher_pass_ref="env:X",
        )
        conf_file = base / "pgbackrest.conf"
        conf_file.write_text(render_config(cfg, cipher_pass="test-cipher-pass"))
        shutil.chown(conf_file, "postgres", "postgres")
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
        br = PgBackRest(conf_file, "pitr", run_as="postgres")
        br.stanza_create()
        br.check()
        with cluster.connect() as conn:
            conn.execute("CREATE TABLE marker (label text, at timestamptz DEFAULT now())")
            conn.execute("INSERT INTO marker (label) VALUES ('before-full')")
        br.backup("full")
        with cluster.connect() as conn:
            conn.execute("INSERT INTO marker (label) VALUES ('before-target')")
            br.backup("incr")
            time.sleep(1.1)
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            target = row[0]
            time.sleep(1.1)
            conn.execute("INSERT INTO marker (label) VALUES ('after-target')")
            conn.execute("SELECT pg_switch_wal()")
        br.check()  # waits until the WAL segment with 'after-target' is archived
        cluster.stop()

        restored_base = make_shared_dir("plantops-pitr-restore-")
        restored_data = restored_base / "data"
        br.restore_to_time(target, restored_data)
        # The restored cluster must not archive into the same stanza.
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
    finally:
        if restored is not None:
            restored.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


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

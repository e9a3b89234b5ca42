"""Backup benchmark: plantops vs raw PostgreSQL tools vs pgBackRest, in one run.

Not part of the test suite. Starts its own PostgreSQL 15 cluster (as the postgres
user when run as root), generates an Odoo-like database of random-ish, poorly
compressible data and a filestore, then times, side by side:

* plantops ``native`` backup vs raw ``pg_dump -Fd -j2`` + ``tar``
* plantops verify vs raw ``pg_restore -j2`` (database half, like for like) and raw
  ``tar -x`` (filestore half); plantops restores the two side by side
* a pgBackRest full backup (zst, process-max 2)
* encryption overhead: plain and age-encrypted native backups alternated
  (``--rounds`` of each, default 2) so page-cache order does not favour either
* peak RSS of the plantops process

Usage: ``python benchmarks/backup_bench.py --scale 1.8`` (1.8 ≈ 2.1 GB + 36,000 files;
1.0 ≈ 1.2 GB + 20,000 files). Progress goes to stderr, figures to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fixtures.pgbackrest import local_pgbackrest_conf  # noqa: E402
from tests.fixtures.postgres import (  # noqa: E402
    PgCluster,
    free_port,
    make_shared_dir,
    pg_bindir,
    start_cluster,
)

from plantops.backup.crypto import generate_identity  # noqa: E402
from plantops.backup.pgbackrest import PgBackRest, archive_command  # noqa: E402

# Rows per scale 1.0 with ~wide rows: sized for ~2 GB on disk in total.
TABLES = {
    "res_partner": (400_000, "name text, email text, street text, vat text, comment bytea"),
    "product_product": (200_000, "default_code text, barcode text, description bytea"),
    "stock_move": (
        2_500_000,
        "product_id int, qty numeric, origin text, reference text," " note bytea",
    ),
    "mrp_production": (300_000, "product_id int, qty numeric, origin text, note bytea"),
    "account_move_line": (
        2_500_000,
        "account_id int, debit numeric, credit numeric, name text," " ref bytea",
    ),
    "ir_attachment": (20_000, "name text, store_fname text, checksum text, file_size int"),
}


def rnd_bytes(n: int) -> str:
    # Random bytes, poorly compressible (like scanned PDFs / hashes in real data).
    parts = " || ".join(["decode(md5(random()::text), 'hex')"] * max(1, n // 16))
    return f"({parts})"


def rnd_text() -> str:
    return "md5(random()::text)"


def generate(cluster: PgCluster, db: str, scale: float, filestore: Path) -> dict[str, int]:
    with cluster.connect() as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    counts: dict[str, int] = {}
    with cluster.connect(db) as conn:
        conn.execute(
            "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar UNIQUE,"
            " state varchar, latest_version varchar);"
            "INSERT INTO ir_module_module (name, state, latest_version) VALUES"
            " ('base','installed','17.0.1.3'), ('stock','installed','17.0.1.1'),"
            " ('mrp','installed','17.0.2.0'), ('account','installed','17.0.1.2');"
            "CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar UNIQUE,"
            " value text);"
            "INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid',"
            " gen_random_uuid()::text);"
        )
        for table, (rows, cols) in TABLES.items():
            n = max(10, int(rows * scale))
            counts[table] = n
            conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, {cols})")
            if table == "ir_attachment":
                continue
            values = []
            for col in cols.split(","):
                name, typ = col.split()[:2]
                if typ == "bytea":
                    values.append(f"{rnd_bytes(64)} AS {name}")
                elif typ == "int":
                    values.append(f"(random()*100000)::int AS {name}")
                elif typ == "numeric":
                    values.append(f"round((random()*1000)::numeric, 2) AS {name}")
                else:
                    values.append(f"{rnd_text()} AS {name}")
            names = ", ".join(c.split()[0] for c in cols.split(","))
            conn.execute(
                f"INSERT INTO {table} ({names}) SELECT {', '.join(values)}"
                f" FROM generate_series(1, {n})"
            )
        conn.execute("CREATE INDEX ON stock_move (product_id)")
        conn.execute("CREATE INDEX ON account_move_line (account_id)")
        files = counts["ir_attachment"]
        filestore.mkdir(parents=True)
        rows = []
        for i in range(files):
            data = os.urandom(8_000 + (i * 7919) % 24_000)
            name = f"{i:08x}"
            sub = filestore / name[-2:]
            sub.mkdir(exist_ok=True)
            (sub / name).write_bytes(data)
            rows.append((f"doc{i}.pdf", f"{name[-2:]}/{name}", name, len(data)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ir_attachment (name, store_fname, checksum, file_size)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        counts["db_bytes"] = int(row[0]) if row else 0
    counts["filestore_bytes"] = sum(p.stat().st_size for p in filestore.rglob("*") if p.is_file())
    return counts


LAST_STDOUT: list[bytes] = [b""]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run cmd; return (seconds, peak RSS KiB of the process tree's largest member)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - t0
    out = proc.stdout.read() if proc.stdout else b""
    errb = proc.stderr.read() if proc.stderr else b""
    if os.waitstatus_to_exitcode(status) not in (0,):
        raise SystemExit(
            f"{' '.join(cmd[:6])} failed: {errb.decode()[-2000:]} {out.decode()[-500:]}"
        )
    LAST_STDOUT[0] = out
    return elapsed, int(usage.ru_maxrss)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 ≈ 2 GB DB + 20,000 files")
    ap.add_argument("--json", type=Path, help="write raw figures here")
    ap.add_argument("--rounds", type=int, default=2, help="plain/encrypted backup pairs")
    args = ap.parse_args()

    base = make_shared_dir("plantops-bench-")
    work = Path(tempfile.mkdtemp(prefix="plantops-bench-work-", dir="/tmp"))
    results: dict[str, object] = {"scale": args.scale}
    cluster: PgCluster | None = None
    try:
        for sub in ("repo", "spool", "log", "lock"):
            (base / sub).mkdir()
            shutil.chown(base / sub, "postgres", "postgres")
        port = free_port()
        conf = base / "pgbackrest.conf"
        # The config plan renders for a VM plant, on a local repository, unencrypted (the
        # benchmark compares plantops' own archive encryption); a generous archive
        # timeout: the backlog of the bulk load is archived first.
        text = local_pgbackrest_conf(
            "bench", base, port, encrypted=False, extra=("archive-timeout=900",)
        )
        conf.write_text(text)
        shutil.chown(conf, "postgres", "postgres")
        cluster = start_cluster(
            base,
            {
                "wal_level": "replica",
                "archive_mode": "on",
                "max_wal_size": "4GB",
                "archive_command": f"'{archive_command(conf, 'bench')}'",
                "shared_buffers": "256MB",
                "maintenance_work_mem": "256MB",
            },
            port=port,
        )
        t0 = time.monotonic()
        log(f"generating scale {args.scale}")
        # The stanza exists before the load, so WAL is archived while it is generated...
        br = PgBackRest(conf, "bench", run_as="postgres")
        br.stanza_create()
        counts = generate(cluster, "odoo", args.scale, work / "filestore")
        log(f"generated {counts}; waiting until WAL archiving has caught up")
        # ...and has caught up before anything is timed (check waits for the archive).
        br.check()
        log("archive caught up")
        results["generate_seconds"] = round(time.monotonic() - t0, 1)
        results["data"] = counts
        db_url = cluster.url("odoo")
        env = {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(cluster.port),
            "PGUSER": "postgres",
        }
        bindir = pg_bindir()

        # Raw: pg_dump -Fd -j2 + tar of the filestore.
        log("raw pg_dump + tar")
        t_dump, _ = timed(
            [str(bindir / "pg_dump"), "-Fd", "-j2", "-f", str(work / "raw"), "odoo"], env
        )
        t_tar, _ = timed(["tar", "-C", str(work / "filestore"), "-cf", str(work / "fs.tar"), "."])
        results["raw_backup_seconds"] = round(t_dump + t_tar, 1)
        results["raw_backup_bytes"] = dir_size(work / "raw") + (work / "fs.tar").stat().st_size

        plantops = [sys.executable, "-c", "from plantops.cli.main import main; main()"]
        penv = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        state = f"sqlite:///{work}/state.db"

        def backup(store: str, *extra: str) -> tuple[float, int, str]:
            t, rss = timed(
                [
                    *plantops,
                    "backup",
                    "run",
                    "--db-url",
                    db_url,
                    "--filestore",
                    str(work / "filestore"),
                    "--store",
                    store,
                    "--state-db",
                    state,
                    "--archive-format",
                    "native",
                    "--plant",
                    "bench",
                    "--env",
                    "prod",
                    "--tier",
                    "standard",
                    "--format",
                    "json",
                    *extra,
                ],
                penv,
            )
            return t, rss, json.loads(LAST_STDOUT[0])["id"]

        secret, _pub = generate_identity()
        key = work / "key.txt"
        key.write_text(secret + "\n")
        plain: list[float] = []
        enc: list[float] = []
        rss: dict[str, int] = {}
        bid = ""
        # Alternate plain and encrypted runs so neither always sees the warmer cache.
        for i in range(max(1, args.rounds)):
            for kind in ("plain", "encrypted"):
                store_dir = work / f"store-{kind}-{i}"
                log(f"plantops native backup, {kind}, round {i + 1}")
                extra = ("--key", str(key)) if kind == "encrypted" else ()
                t, r, b = backup(str(store_dir), *extra)
                (plain if kind == "plain" else enc).append(t)
                rss[kind] = max(rss.get(kind, 0), r)
                if kind == "plain" and i == 0:
                    bid = b
                    results["plantops_backup_bytes"] = dir_size(store_dir)
                else:
                    shutil.rmtree(store_dir, ignore_errors=True)
        results["plantops_backup_seconds_runs"] = [round(t, 1) for t in plain]
        results["plantops_backup_encrypted_seconds_runs"] = [round(t, 1) for t in enc]
        t_pl = sum(plain) / len(plain)
        t_enc = sum(enc) / len(enc)
        results["plantops_backup_seconds"] = round(t_pl, 1)
        results["plantops_backup_encrypted_seconds"] = round(t_enc, 1)
        results["plantops_backup_peak_rss_mib"] = round(rss["plain"] / 1024, 1)
        results["plantops_backup_encrypted_peak_rss_mib"] = round(rss["encrypted"] / 1024, 1)
        results["encryption_overhead_pct"] = round((t_enc / t_pl - 1) * 100, 1)
        results["backup_vs_raw_ratio"] = round(t_pl / (t_dump + t_tar), 2)

        log("raw pg_restore -j2 and tar -x")
        with cluster.connect() as conn:
            conn.execute('CREATE DATABASE "raw_restore"')
        t_rr, _ = timed(
            [
                str(bindir / "pg_restore"),
                "-j2",
                "--no-owner",
                "-d",
                "raw_restore",
                str(work / "raw"),
            ],
            env,
        )
        results["raw_restore_seconds"] = round(t_rr, 1)
        with cluster.connect() as conn:
            conn.execute('DROP DATABASE "raw_restore"')
        shutil.rmtree(work / "raw", ignore_errors=True)
        (work / "untar").mkdir()
        t_untar, _ = timed(["tar", "-C", str(work / "untar"), "-xf", str(work / "fs.tar")])
        results["raw_untar_seconds"] = round(t_untar, 1)
        shutil.rmtree(work / "untar", ignore_errors=True)
        (work / "fs.tar").unlink()
        log("plantops verify")

        t_v, rss_v = timed(
            [
                *plantops,
                "backup",
                "verify",
                bid,
                "--server",
                cluster.url(),
                "--state-db",
                state,
                "--format",
                "json",
            ],
            penv,
        )
        ver = json.loads(LAST_STDOUT[0])[0]
        results["plantops_verify_seconds"] = round(t_v, 1)
        results["plantops_verify_restore_seconds_rto"] = round(ver["rto_seconds"], 1)
        results["plantops_verify_db_restore_seconds"] = round(ver["db_restore_seconds"], 1)
        results["plantops_verify_filestore_restore_seconds"] = round(
            ver["filestore_restore_seconds"], 1
        )
        results["verify_db_vs_pg_restore_ratio"] = round(ver["db_restore_seconds"] / t_rr, 2)
        results["verify_filestore_vs_untar_ratio"] = round(
            ver["filestore_restore_seconds"] / t_untar, 2
        )
        results["verify_rto_vs_raw_restore_plus_untar_ratio"] = round(
            ver["rto_seconds"] / (t_rr + t_untar), 2
        )
        results["plantops_verify_status"] = "passed" if ver["passed"] else "failed"
        results["plantops_verify_peak_rss_mib"] = round(rss_v / 1024, 1)

        log("pgBackRest full backup")
        t0 = time.monotonic()
        br.backup("full")
        results["pgbackrest_full_seconds"] = round(time.monotonic() - t0, 1)
        results["pgbackrest_backup_repo_bytes"] = br.backups()[-1].repo_bytes
        results["pgbackrest_repo_bytes_with_wal"] = dir_size(base / "repo")
        results["backup_vs_pgbackrest_ratio"] = round(
            t_pl / float(results["pgbackrest_full_seconds"]),  # type: ignore[arg-type]
            2,
        )
        log("done")
    except BaseException:
        print(json.dumps(results, indent=2))  # the figures measured before the failure
        raise
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

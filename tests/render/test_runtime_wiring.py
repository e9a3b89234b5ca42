"""Defects found in review: wiring that validates against every schema yet fails at run time."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.fixtures.postgres import pg_bindir
from tests.render.conftest import Rendered

ODOO_EXTENSIONS = {"pg_trgm", "unaccent"}


def _objects(example: Rendered, kind: str) -> list[tuple[Any, str, dict[str, Any]]]:
    return [(d, p, o) for d, p, o in example.objects if o["kind"] == kind]


def _odoo_containers(example: Rendered) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for _dep, path, obj in _objects(example, "Deployment"):
        if obj["metadata"]["labels"]["app.kubernetes.io/component"] in {"web", "cron"}:
            out += [(path, c) for c in obj["spec"]["template"]["spec"]["containers"]]
    return out


def test_pgbouncer_instances_together_stay_within_max_connections(example: Rendered) -> None:
    # Each PgBouncer instance keeps its own pool per (user, database): the sum over
    # instances and databases must fit PostgreSQL's max_connections.
    clusters = {(dep.id, o["metadata"]["name"]): o for dep, _p, o in _objects(example, "Cluster")}
    poolers = _objects(example, "Pooler")
    assert poolers
    for dep, path, pooler in poolers:
        cluster = clusters[(dep.id, pooler["spec"]["cluster"]["name"])]
        max_conn = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
        pool = int(pooler["spec"]["pgbouncer"]["parameters"]["default_pool_size"])
        total = pool * pooler["spec"]["instances"] * len(dep.tenants)
        assert total < max_conn, f"{path}: {total} server connections > {max_conn}"


def test_no_session_redis_setting_that_no_version_reads(example: Rendered) -> None:
    # camptocamp/odoo-cloud-platform session_redis/http.py (15.0-17.0) reads HOST, PORT,
    # URL, PASSWORD, PREFIX, EXPIRATION(_ANONYMOUS) and the SENTINEL_* settings; no SSL.
    read = {
        "ODOO_SESSION_REDIS",
        "ODOO_SESSION_REDIS_EXPIRATION",
        "ODOO_SESSION_REDIS_EXPIRATION_ANONYMOUS",
        "ODOO_SESSION_REDIS_HOST",
        "ODOO_SESSION_REDIS_PASSWORD",
        "ODOO_SESSION_REDIS_PORT",
        "ODOO_SESSION_REDIS_PREFIX",
        "ODOO_SESSION_REDIS_SENTINEL_HOST",
        "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME",
        "ODOO_SESSION_REDIS_SENTINEL_PORT",
        "ODOO_SESSION_REDIS_URL",
    }
    containers = _odoo_containers(example)
    assert containers
    for path, c in containers:
        names = {e["name"] for e in c["env"] if e["name"].startswith("ODOO_SESSION_REDIS")}
        assert names and names <= read, (path, names - read)
    assert example.compose
    for _dep, path, compose in example.compose:
        for svc in ("odoo-web", "odoo-cron"):
            names = {n for n in compose["services"][svc]["environment"] if "SESSION_REDIS" in n}
            assert names and names <= read, (path, svc, names - read)


def test_precreated_databases_get_odoos_extensions(example: Rendered) -> None:
    # Odoo creates pg_trgm and unaccent only in databases it creates itself.
    databases = _objects(example, "Database")
    assert databases
    for _dep, path, db in databases:
        present = {e["name"] for e in db["spec"].get("extensions", []) if e["ensure"] == "present"}
        assert present >= ODOO_EXTENSIONS, path
    scripts = {p: t for p, t in example.files.items() if p.endswith("10-odoo-roles.sh")}
    assert scripts
    for path, text in scripts.items():
        for ext in sorted(ODOO_EXTENSIONS):
            assert f"CREATE EXTENSION IF NOT EXISTS {ext};" in text, path


def test_vm_init_script_never_splices_the_password_into_sql(example: Rendered) -> None:
    scripts = [t for p, t in example.files.items() if p.endswith("10-odoo-roles.sh")]
    assert scripts
    for text in scripts:
        assert "<<'SQL'" in text  # no shell expansion inside the SQL
        assert "PASSWORD :'pw'" in text  # psql quotes the value
        assert "'$pw'" not in text


def _pg_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return "postgres"


def test_vm_init_script_runs_on_real_postgres(example: Rendered) -> None:
    """The rendered script creates roles, databases and extensions with a hostile password."""
    run_as = _pg_user()
    assert not (os.geteuid() == 0 and run_as is None), "the postgresql package creates it"
    bindir = pg_bindir()
    # pytest's tmp_path is private to this user; the server may run as another one.
    tmp_path = Path(tempfile.mkdtemp(prefix="plantops-pg-"))
    tmp_path.chmod(0o777)
    data, sock = tmp_path / "data", tmp_path
    password = "it's\"a $x `pw`"
    (tmp_path / "pw").write_text(password)

    def sh(cmd: str) -> subprocess.CompletedProcess[str]:
        argv = ["su", "-s", "/bin/sh", run_as, "-c", cmd] if run_as else ["sh", "-c", cmd]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    port = "55439"
    assert sh(f"{bindir}/initdb -D {data} -U postgres -A trust >/dev/null").returncode == 0
    opts = f"-p {port} -k {sock} -c listen_addresses=''"
    assert sh(f'{bindir}/pg_ctl -D {data} -o "{opts}" -l {tmp_path}/log -w start').returncode == 0
    try:
        script = next(t for p, t in example.files.items() if p.endswith("10-odoo-roles.sh"))
        init = tmp_path / "init.sh"
        init.write_text(script.replace("/run/secrets/odoo_db_password", str(tmp_path / "pw")))
        env = {**os.environ, "PGHOST": str(sock), "PGPORT": port}
        res = subprocess.run(
            ["sh", str(init)], capture_output=True, text=True, env=env, check=False
        )
        assert res.returncode == 0, res.stderr
        q = subprocess.run(
            [
                "psql",
                "-At",
                "-U",
                "postgres",
                "-d",
                "leipzig-vm",
                "-c",
                "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
                "-c",
                "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = 'leipzig_vm'",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        exts, role = q.stdout.split()
        assert set(exts.split(",")) >= ODOO_EXTENSIONS
        assert role == "f|f"
    finally:
        sh(f"pg_ctl -D {data} -m immediate stop")
        shutil.rmtree(tmp_path, ignore_errors=True)

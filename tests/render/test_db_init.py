"""Database initialisation: every database gets ``base`` once, and only once.

The Kubernetes Job and the Compose ``odoo-init`` service run the rendered script against a
real PostgreSQL; ``odoo`` itself is a stand-in (tests/fixtures/fake_odoo/odoo) that records
its argv and leaves what ``-i base`` leaves: ``ir_module_module`` with base installed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from plantops.check.compose import validate_compose
from plantops.plan import Deployment
from plantops.render.compose.stack import render_compose
from plantops.render.kubernetes.common import ODOO_IDS
from plantops.render.kubernetes.odoo import render_db_init_jobs, render_odoo_web
from tests.fixtures.postgres import PgCluster, running_cluster
from tests.render.conftest import Rendered

FAKE_BIN = Path(__file__).resolve().parent.parent / "fixtures" / "fake_odoo"
HOOK = "argocd.argoproj.io/hook"
WAVE = "argocd.argoproj.io/sync-wave"
# Odoo's own probe (odoo/modules/db.py has_unaccent, 17.0+): INDEXABLE only for 'i'.
ODOO_UNACCENT_PROBE = (
    "SELECT provolatile FROM pg_proc WHERE proname = 'unaccent' "
    "AND pronargs = 1 AND pronamespace = current_schema::regnamespace"
)


def _objects(example: Rendered, dep: Deployment, kind: str) -> list[dict[str, Any]]:
    return [o for d, _p, o in example.objects if d.id == dep.id and o["kind"] == kind]


def _k8s_deployments(example: Rendered) -> list[Deployment]:
    return [d for d in example.deployments if d.cluster is not None]


def _container(job: dict[str, Any]) -> dict[str, Any]:
    (c,) = job["spec"]["template"]["spec"]["containers"]
    return dict(c)


def _wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["annotations"][WAVE])


def _shared_prod(example: Rendered) -> Deployment:
    return next(
        d
        for d in example.deployments
        if d.pattern == "shared-multitenant" and len(d.tenants) > 1 and d.production
    )


# --- the rendered Job -------------------------------------------------------------------


def test_every_database_has_an_init_job_between_the_database_and_odoo(example: Rendered) -> None:
    deps = _k8s_deployments(example)
    assert any(len(d.tenants) > 1 for d in deps)
    for dep in deps:
        jobs = _objects(example, dep, "Job")
        databases = _objects(example, dep, "Database")
        owners = {d["spec"]["name"]: d["spec"]["owner"] for d in databases}
        assert sorted(_container(j)["command"][-1] for j in jobs) == sorted(owners), dep.id
        data_waves = [
            _wave(o)
            for kind in ("Cluster", "Database", "Pooler", "PersistentVolumeClaim")
            for o in _objects(example, dep, kind)
        ]
        odoo_waves = [_wave(o) for o in _objects(example, dep, "Deployment")]
        for job in jobs:
            ann = job["metadata"]["annotations"]
            assert ann[HOOK] == "Sync", dep.id
            assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
            assert max(data_waves) < _wave(job) < min(odoo_waves), dep.id
            assert len(job["metadata"]["name"]) <= 63
            spec = job["spec"]
            assert spec["backoffLimit"] >= 1
            assert spec["activeDeadlineSeconds"] > 0
            assert spec["ttlSecondsAfterFinished"] >= 3600  # argoproj/argo-cd#21055
            pod = spec["template"]["spec"]
            assert pod["restartPolicy"] == "Never"
            c = _container(job)
            env = {e["name"]: e for e in c["env"]}
            database = c["command"][-1]
            # Logs in as the database's owner, with that role's own secret.
            assert env["PGUSER"]["value"] == owners[database]
            secret = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
            assert secret.endswith(owners[database].replace("_", "-"))


def test_init_job_is_hardened_and_sized_like_a_cron_worker(example: Rendered) -> None:
    for dep in _k8s_deployments(example):
        (cron,) = [
            o
            for o in _objects(example, dep, "Deployment")
            if o["metadata"]["labels"]["app.kubernetes.io/component"] == "cron"
        ]
        cron_pod = cron["spec"]["template"]["spec"]
        for job in _objects(example, dep, "Job"):
            pod = job["spec"]["template"]["spec"]
            c = _container(job)
            assert c["image"] == cron_pod["containers"][0]["image"]
            assert c["securityContext"] == cron_pod["containers"][0]["securityContext"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert pod["securityContext"] == cron_pod["securityContext"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False
            assert c["resources"] == cron_pod["containers"][0]["resources"]
            if dep.production and dep.tier_spec.ha:  # sizing's Guaranteed tiers
                assert c["resources"]["requests"] == c["resources"]["limits"], dep.id
            # The config it names is the ConfigMap's, mounted where the script reads it.
            (configmap,) = [
                o for o in _objects(example, dep, "ConfigMap") if "odoo-cron.conf" in o["data"]
            ]
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
            assert "--config='/etc/odoo/odoo-cron.conf'" in c["command"][2]
            assert mounts["config"] == "/etc/odoo"
            assert volumes["data"] == next(
                v for v in cron_pod["volumes"] if v["name"] == "data"
            ), "the filestore installation writes must land in the real filestore"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
    return True


def _allows(peers: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    return any("podSelector" in p and _selects(p["podSelector"], labels) for p in peers)


def test_network_policies_let_the_init_job_reach_postgres(example: Rendered) -> None:
    for dep in _k8s_deployments(example):
        policies = [o["spec"] for o in _objects(example, dep, "NetworkPolicy")]
        (cluster,) = _objects(example, dep, "Cluster")
        poolers = _objects(example, dep, "Pooler")
        server = (
            {"cnpg.io/poolerName": poolers[0]["metadata"]["name"]}
            if poolers
            else {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"}
        )
        for job in _objects(example, dep, "Job"):
            pod = job["spec"]["template"]["metadata"]["labels"]
            host = {e["name"]: e.get("value") for e in _container(job)["env"]}["PGHOST"]
            assert str(host).startswith(
                poolers[0]["metadata"]["name"] if poolers else cluster["metadata"]["name"]
            )
            egress = [
                r
                for p in policies
                if "Egress" in p["policyTypes"] and _selects(p["podSelector"], pod)
                for r in p.get("egress", [])
            ]
            assert any(
                {"port": 5432, "protocol": "TCP"} in r.get("ports", [])
                and _allows(r.get("to", []), server)
                for r in egress
            ), dep.id
            # Nothing else: no Redis, no SMTP, no integration endpoint.
            assert all(
                r.get("ports") in ([{"port": 5432, "protocol": "TCP"}], None)
                or any(p["port"] == 53 for p in r["ports"])
                for r in egress
            ), dep.id
            ingress = [
                r
                for p in policies
                if "Ingress" in p["policyTypes"] and _selects(p["podSelector"], server)
                for r in p.get("ingress", [])
            ]
            assert any(
                {"port": 5432, "protocol": "TCP"} in r["ports"] and _allows(r["from"], pod)
                for r in ingress
            ), dep.id


def test_kubernetes_pods_run_as_the_images_odoo_user_per_series(example: Rendered) -> None:
    dep = _k8s_deployments(example)[0]
    for series, (uid, gid) in ODOO_IDS.items():
        other = dataclasses.replace(dep, series=series)
        web = render_odoo_web(other, example.ctx)["spec"]["template"]["spec"]
        job = render_db_init_jobs(other, example.ctx)[0]["spec"]["template"]["spec"]
        for pod in (web, job):
            ctx = pod["securityContext"]
            assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (uid, gid, gid)
    # 18.0 and 19.0 images are built on Ubuntu noble, where the odoo user is 100:101
    # (odoo/odoo#183106); 16.0 and 17.0 have 101:101.
    assert ODOO_IDS["18.0"] == (100, 101) and ODOO_IDS["17.0"] == (101, 101)


# --- the script on a real PostgreSQL --------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with running_cluster("plantops-dbinit-") as cluster:
        yield cluster


def _ensure_role(pg: PgCluster, role: str) -> None:
    with pg.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def _create_database(pg: PgCluster, name: str, owner: str, template: str = "template1") -> None:
    # As CloudNativePG's Database controller does: no TEMPLATE clause means template1.
    with pg.connect() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template)
            )
        )


def _run(
    pg: PgCluster, command: list[str], env: dict[str, str], log: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        **env,
        # Only where the server is differs from the rendered environment (no TLS here).
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGSSLMODE": "disable",
        "PGPASSWORD": "pw",
        "PATH": f"{FAKE_BIN}:{os.environ['PATH']}",
        "FAKE_ODOO_LOG": str(log),
        **extra,
    }
    return subprocess.run(command, env=full, capture_output=True, text=True, check=False)


def _calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.rstrip("\t").split("\t") for line in log.read_text().splitlines()]


def _job_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_init_job_installs_base_once_and_then_does_nothing(
    example: Rendered, pg: PgCluster, tmp_path: Path
) -> None:
    dep = next(d for d in _k8s_deployments(example) if len(d.tenants) == 1)
    c = _container(_objects(example, dep, "Job")[0])
    env = _job_env(c)
    owner = env["PGUSER"]
    _ensure_role(pg, owner)
    db = f"init_{uuid.uuid4().hex[:8]}"
    _create_database(pg, db, owner)
    command = [*c["command"][:-1], db]  # the rendered script, on this test's database
    log = tmp_path / "odoo.log"

    first = _run(pg, command, env, log)
    assert first.returncode == 0, first.stderr
    (call,) = _calls(log)
    assert {
        "--config=/etc/odoo/odoo-cron.conf",
        f"--database={db}",
        f"--db_user={owner}",
        "--init=base",
        "--stop-after-init",
        "--no-http",
        "--workers=0",
        "--max-cron-threads=0",
    } == set(call)
    with psycopg.connect(f"postgresql://{owner}@127.0.0.1:{pg.port}/{db}", autocommit=True) as conn:
        assert conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'ir_module_module'"
        ).fetchone() == (owner,)

    again = _run(pg, command, env, log)
    assert again.returncode == 0, again.stderr
    assert len(_calls(log)) == 1, "base is installed: odoo must not run again"
    assert "nothing to do" in again.stdout

    # A first installation that broke off leaves base 'to install': it is run again.
    with pg.connect(db) as conn:
        conn.execute("UPDATE ir_module_module SET state = 'to install' WHERE name = 'base'")
    resumed = _run(pg, command, env, log)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_calls(log)) == 2
    # Upgrades are the release process's: an installed base 'to upgrade' is left alone.
    with pg.connect(db) as conn:
        conn.execute("UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'base'")
    assert _run(pg, command, env, log).returncode == 0
    assert len(_calls(log)) == 2


def test_init_job_fails_when_odoo_fails_or_postgres_never_answers(
    example: Rendered, pg: PgCluster, tmp_path: Path
) -> None:
    dep = next(d for d in _k8s_deployments(example) if len(d.tenants) == 1)
    c = _container(_objects(example, dep, "Job")[0])
    env = _job_env(c)
    _ensure_role(pg, env["PGUSER"])
    db = f"fail_{uuid.uuid4().hex[:8]}"
    _create_database(pg, db, env["PGUSER"])
    log = tmp_path / "odoo.log"
    failed = _run(pg, [*c["command"][:-1], db], env, log, FAKE_ODOO_EXIT="255")
    assert failed.returncode != 0  # the Job fails and Argo CD's sync with it
    missing = _run(pg, [*c["command"][:-1], f"{db}_absent"], env, log, PLANTOPS_DB_WAIT_TRIES="1")
    assert missing.returncode == 1
    assert "unreachable" in missing.stderr
    assert len(_calls(log)) == 1


def _as_cloudnativepg_bootstrap(pg: PgCluster, cluster: dict[str, Any]) -> None:
    """What ConfigureNewInstance runs as superuser in template1 at bootstrap."""
    with pg.connect("template1") as conn:
        for statement in cluster["spec"]["bootstrap"]["initdb"]["postInitTemplateSQL"]:
            conn.execute(statement)


def _as_database_controller(pg: PgCluster, database: dict[str, Any]) -> None:
    spec = database["spec"]
    _ensure_role(pg, spec["owner"])
    _create_database(pg, spec["name"], spec["owner"])
    with pg.connect(spec["name"]) as conn:  # the instance manager is a superuser
        for ext in spec["extensions"]:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext["name"]))
            )


def test_every_tenant_database_is_initialised_with_an_immutable_unaccent(
    example: Rendered, tmp_path: Path
) -> None:
    dep = _shared_prod(example)
    (cluster,) = _objects(example, dep, "Cluster")
    with running_cluster("plantops-dbinit-tenants-") as pg:
        _as_cloudnativepg_bootstrap(pg, cluster)
        for database in _objects(example, dep, "Database"):
            _as_database_controller(pg, database)
        log = tmp_path / "odoo.log"
        jobs = _objects(example, dep, "Job")
        assert len(jobs) == len(dep.tenants) > 1
        for job in jobs:
            c = _container(job)
            res = _run(pg, c["command"], _job_env(c), log)
            assert res.returncode == 0, res.stderr
            assert "not IMMUTABLE" not in res.stderr
        assert sorted(
            next(a for a in call if a.startswith("--database=")) for call in _calls(log)
        ) == sorted(f"--database={t.database}" for t in dep.tenants)
        for database in _objects(example, dep, "Database"):
            spec = database["spec"]
            url = f"postgresql://{spec['owner']}@127.0.0.1:{pg.port}/{spec['name']}"
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute(ODOO_UNACCENT_PROBE).fetchone() == ("i",), spec["name"]
                assert conn.execute("SELECT unaccent('Žďár')").fetchone() == ("Zdar",)


def test_the_owner_role_cannot_make_unaccent_immutable_itself(
    example: Rendered, pg: PgCluster, tmp_path: Path
) -> None:
    """Why the SQL is bootstrap SQL: extension functions belong to the superuser."""
    dep = next(d for d in _k8s_deployments(example) if len(d.tenants) == 1)
    c = _container(_objects(example, dep, "Job")[0])
    env = _job_env(c)
    owner = env["PGUSER"]
    _ensure_role(pg, owner)
    db = f"plain_{uuid.uuid4().hex[:8]}"
    _create_database(pg, db, owner, template="template0")
    url = f"postgresql://{owner}@127.0.0.1:{pg.port}/{db}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION unaccent")  # trusted: the owner may create it
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER FUNCTION unaccent(text) IMMUTABLE")
        assert conn.execute(ODOO_UNACCENT_PROBE).fetchone() == ("s",)
    res = _run(pg, [*c["command"][:-1], db], env, tmp_path / "odoo.log")
    assert res.returncode == 0, res.stderr
    assert "unaccent is not IMMUTABLE" in res.stderr  # an older cluster says so in the log


# --- Compose --------------------------------------------------------------------------


def _run_tmpfs_options(service: dict[str, Any]) -> dict[str, str]:
    (run,) = [t for t in service["tmpfs"] if t.startswith("/run/odoo:")]
    return dict(o.split("=", 1) for o in run.split(":", 1)[1].split(","))


def test_compose_odoo_waits_for_odoo_init_and_owns_its_run_dir(example: Rendered) -> None:
    assert example.compose
    for dep, path, doc in example.compose:
        services = doc["services"]
        init = services["odoo-init"]
        assert init["restart"] == "no"
        assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert init["entrypoint"][-len(dep.tenants) :] == [t.database for t in dep.tenants]
        assert init["read_only"] is True and init["cap_drop"] == ["ALL"]
        uid, gid = ODOO_IDS[dep.series]
        for name in ("odoo-web", "odoo-cron"):
            svc = services[name]
            cond = svc["depends_on"]["odoo-init"]["condition"]
            assert cond == "service_completed_successfully", (path, name)
            opts = _run_tmpfs_options(svc)
            assert (opts["uid"], opts["gid"], opts["mode"]) == (str(uid), str(gid), "0700")
            assert svc["user"] == f"{uid}:{gid}" == init["user"]
        # What is written is what is checked (the validator fills in schema defaults).
        written = yaml.safe_load(example.files[path])
        assert written["services"]["odoo-init"] == init
        assert validate_compose(written) == [], path


def test_compose_uses_each_series_image_ids(example: Rendered) -> None:
    dep = example.compose[0][0]
    for series, (uid, gid) in ODOO_IDS.items():
        doc = render_compose(dataclasses.replace(dep, series=series), example.ctx)
        web = doc["services"]["odoo-web"]
        assert web["user"] == f"{uid}:{gid}"
        assert _run_tmpfs_options(web)["uid"] == str(uid)
        assert validate_compose(copy.deepcopy(doc)) == []


def _compose_entrypoint_as_run(service: dict[str, Any], secret: Path) -> list[str]:
    """The container's argv after Compose interpolation (``$$`` is a literal ``$``)."""
    argv = [a.replace("$$", "$") for a in service["entrypoint"]]
    passfile = str(secret.parent / "pgpass")
    return [
        a.replace("/run/secrets/odoo_db_password", str(secret)).replace(
            "/run/odoo/pgpass", passfile
        )
        for a in argv
    ]


def test_compose_odoo_init_runs_once_on_the_vm_databases(
    example: Rendered, pg: PgCluster, tmp_path: Path
) -> None:
    dep, path, doc = example.compose[0]
    init = doc["services"]["odoo-init"]
    secret = tmp_path / "pw"
    secret.write_text("pw")
    # The VM's own init script creates the roles and databases, as a superuser.
    script = example.files[path.replace("compose.yaml", "initdb/10-odoo-roles.sh")]
    roles = tmp_path / "roles.sh"
    roles.write_text(script.replace("/run/secrets/odoo_db_password", str(secret)))
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PATH": os.environ["PATH"]}
    res = subprocess.run(["sh", str(roles)], env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    argv = _compose_entrypoint_as_run(init, secret)
    log = tmp_path / "odoo.log"
    for _ in range(2):
        env = {**init["environment"], "PGPASSFILE": str(tmp_path / "pgpass")}
        run = _run(pg, argv, env, log, PGPASSWORD="")
        assert run.returncode == 0, run.stderr
        # The password came from the 0600 password file the entrypoint wrote.
        assert (tmp_path / "pgpass").stat().st_mode & 0o077 == 0
        assert "not IMMUTABLE" not in run.stderr  # the VM script altered it as superuser
    calls = _calls(log)
    assert len(calls) == len(dep.tenants)  # once per database, not again on the restart
    assert f"--db_user={init['environment']['PGUSER']}" in calls[0]


def test_long_job_names_are_shortened_deterministically(example: Rendered) -> None:
    dep = _k8s_deployments(example)[0]
    long = dataclasses.replace(dep, unit="a-very-long-tenant-group-name-for-many-plants")
    names = [j["metadata"]["name"] for j in render_db_init_jobs(long, example.ctx)]
    again = [j["metadata"]["name"] for j in render_db_init_jobs(long, example.ctx)]
    assert names == again
    assert any(len(f"{long.unit}-db-init-{t.plant}") > 63 for t in long.tenants)
    assert all(len(n) <= 63 and n[-1] != "-" for n in names), names
    assert len(set(names)) == len(names)

"""A VM plant's pinned release renders its upgrade: ``upgrade.sh`` (backup, stop the old
release, update per database, start) and the ``odoo-upgrade`` service.

``docker`` cannot run here: ``upgrade.sh`` runs for real against a stand-in ``docker``
(tests/fixtures/fake_docker) that records each call, so the order and the stop on a
failed step are the script's own. The update itself (the service's entrypoint) runs
against a real PostgreSQL with the stand-in ``odoo`` of the db-init tests.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from plantops import services
from plantops.check.compose import validate_compose
from plantops.release.pins import PinRecord, next_pin, write_pin
from tests.conftest import EXAMPLE, TODAY
from tests.fixtures.postgres import PgCluster, running_cluster
from tests.render.conftest import Rendered, render_fleet

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FAKE_DOCKER = FIXTURES / "fake_docker"
FAKE_ODOO = FIXTURES / "fake_odoo"
PLANT = "leipzig-vm"
VM_DIR = "vms/leipzig-vm-prod"
REPO = "registry.acme.example/odoo/odoo"


def _record(n: int, modules: tuple[str, ...]) -> PinRecord:
    return PinRecord(
        release="sha256:" + f"{n:02x}" * 32,
        image=f"{REPO}@sha256:" + f"{n + 0x10:02x}" * 32,
        addons="sha256:" + f"{n + 0x20:02x}" * 32,
        update_modules=modules,
        config="sha256:" + f"{n + 0x30:02x}" * 32,
        stage="prod",
        promoted_at=dt.datetime(2026, 11, 20 + n, 6, 0, tzinfo=dt.UTC),
    )


def _pinned_fleet(root: Path, *records: PinRecord) -> Path:
    shutil.copytree(EXAMPLE, root)
    pin = None
    for record in records:
        new = next_pin(pin, record, plant=PLANT, environment="prod")
        write_pin(root, new, replaces=pin)
        pin = new
    return root


@pytest.fixture(scope="module")
def migrating(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("vm-upgrade") / "fleet"
    return render_fleet(
        _pinned_fleet(root, _record(1, ()), _record(2, ("acme_mrp", "mrp"))), pinned=True
    )


@pytest.fixture(scope="module")
def image_only(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("vm-image") / "fleet"
    return render_fleet(_pinned_fleet(root, _record(1, ()), _record(2, ())), pinned=True)


def _compose(r: Rendered) -> tuple[Any, dict[str, Any]]:
    (dep, doc) = next((d, doc) for d, path, doc in r.compose if path.startswith(VM_DIR))
    return dep, doc


def _run_script(script: str, tmp_path: Path, **env: str) -> tuple[int, list[list[str]], str]:
    path = tmp_path / "bundle" / "upgrade.sh"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    log = tmp_path / "docker.log"
    full = {
        "PATH": f"{FAKE_DOCKER}:{os.environ['PATH']}",
        "FAKE_DOCKER_LOG": str(log),
        "HOME": str(tmp_path),
        **env,
    }
    res = subprocess.run(["sh", str(path)], env=full, capture_output=True, text=True, check=False)
    calls = (
        [ln.rstrip("\t").split("\t") for ln in log.read_text().splitlines()] if log.exists() else []
    )
    return res.returncode, calls, res.stdout + res.stderr


def test_a_migrating_pin_renders_the_upgrade_service_and_script(migrating: Rendered) -> None:
    dep, doc = _compose(migrating)
    svc = doc["services"]["odoo-upgrade"]
    assert svc["profiles"] == ["upgrade"]  # never started by a plain `docker compose up`
    assert svc["image"] == doc["services"]["odoo-web"]["image"] == _record(2, ()).image
    init = doc["services"]["odoo-init"]
    for key in ("user", "read_only", "cap_drop", "security_opt", "networks", "secrets", "volumes"):
        assert svc[key] == init[key], key
    assert svc["depends_on"]["odoo-init"]["condition"] == "service_completed_successfully"
    assert svc["environment"]["PGAPPNAME"] == "plantops-upgrade"
    assert "--update=acme_mrp,mrp" in svc["entrypoint"][2]
    assert svc["entrypoint"][-1] == "upgrade"  # `run odoo-upgrade DB` makes DB its $1
    written = yaml.safe_load(migrating.files[f"{VM_DIR}/compose.yaml"])
    assert written["services"]["odoo-upgrade"] == svc
    assert validate_compose(written) == []
    script = migrating.files[f"{VM_DIR}/upgrade.sh"]
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0
    # unpinned VM environments render neither
    assert "vms/leipzig-vm-staging/upgrade.sh" not in migrating.files
    dev = next(doc for _d, p, doc in migrating.compose if p.startswith("vms/leipzig-vm-staging"))
    assert "odoo-upgrade" not in dev["services"]


def test_upgrade_sh_backs_up_stops_updates_each_database_then_starts(
    migrating: Rendered, tmp_path: Path
) -> None:
    dep, _doc = _compose(migrating)
    assert dep.release is not None
    rc, calls, out = _run_script(migrating.files[f"{VM_DIR}/upgrade.sh"], tmp_path)
    assert rc == 0, out
    label = f"{dep.unit}-pre-upgrade-{dep.release.upgrade_id}"  # as release.rollback names it
    assert calls == [
        ["compose", "up", "-d", "--wait", "postgres"],
        [
            "compose", "exec", "-T", "--user", "postgres", "postgres", "pgbackrest",
            f"--stanza={dep.namespace}", "--type=full", f"--annotation=plantops-backup={label}",
            "backup",
        ],
        ["compose", "stop", "odoo-web", "odoo-cron"],
        *(
            ["compose", "--profile", "upgrade", "run", "--rm", "odoo-upgrade", t.database]
            for t in dep.tenants
        ),
        ["compose", "up", "-d"],
    ]  # fmt: skip


def test_a_failed_step_stops_the_upgrade_before_the_next(
    migrating: Rendered, tmp_path: Path
) -> None:
    script = migrating.files[f"{VM_DIR}/upgrade.sh"]
    rc, calls, _ = _run_script(script, tmp_path / "a", FAKE_DOCKER_FAIL="pgbackrest")
    assert rc != 0
    assert [c[1] for c in calls] == ["up", "exec"]  # nothing stopped, nothing migrated
    rc, calls, _ = _run_script(script, tmp_path / "b", FAKE_DOCKER_FAIL="odoo-upgrade")
    assert rc != 0
    assert calls[-1][:6] == ["compose", "--profile", "upgrade", "run", "--rm", "odoo-upgrade"]
    assert ["compose", "up", "-d"] not in calls  # the new release never starts


def test_an_image_only_pin_backs_up_and_restarts_without_an_update(
    image_only: Rendered, tmp_path: Path
) -> None:
    _dep, doc = _compose(image_only)
    assert "odoo-upgrade" not in doc["services"]
    rc, calls, out = _run_script(image_only.files[f"{VM_DIR}/upgrade.sh"], tmp_path)
    assert rc == 0, out
    assert [c[1] for c in calls] == ["up", "exec", "up"]


def test_the_pinned_vm_fleet_plans_through_every_gate(tmp_path: Path) -> None:
    root = _pinned_fleet(tmp_path / "fleet", _record(1, ()), _record(2, ("mrp",)))
    services.plan_fleet(root, tmp_path / "out", today=TODAY)
    assert (tmp_path / "out" / VM_DIR / "upgrade.sh").is_file()


# --- the update on a real PostgreSQL ---------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with running_cluster("plantops-vm-upgrade-") as cluster:
        yield cluster


def _odoo_database(pg: PgCluster, owner: str) -> str:
    db = f"upg_{uuid.uuid4().hex[:8]}"
    with pg.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(owner))
        )
    url = f"postgresql://{owner}@127.0.0.1:{pg.port}/{db}"
    with psycopg.connect(url, autocommit=True) as conn:
        # ir_config_parameter as Odoo creates it (odoo/addons/base/models/ir_config_parameter.py:
        # key and value required, _sql_constraints key_uniq unique(key)).
        conn.execute(
            "CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL, "
            "value text NOT NULL, create_uid int, create_date timestamp, write_uid int, "
            "write_date timestamp, CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key))"
        )
    return db


def _update(
    pg: PgCluster, svc: dict[str, Any], db: str, tmp_path: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    secret = tmp_path / "pw"
    secret.write_text("pw")
    passfile = tmp_path / "pgpass"
    argv = [
        a.replace("$$", "$")
        .replace("/run/secrets/odoo_db_password", str(secret))
        .replace(svc["environment"]["PGPASSFILE"], str(passfile))
        for a in svc["entrypoint"]
    ]
    env = {
        **os.environ,
        **svc["environment"],
        "PGPASSFILE": str(passfile),
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGSSLMODE": "disable",
        "PATH": f"{FAKE_ODOO}:{os.environ['PATH']}",
        "FAKE_ODOO_LOG": str(tmp_path / "odoo.log"),
        **extra,
    }
    return subprocess.run([*argv, db], env=env, capture_output=True, text=True, check=False)


def test_the_update_runs_once_per_upgrade_and_not_after_a_failure(
    migrating: Rendered, pg: PgCluster, tmp_path: Path
) -> None:
    dep, doc = _compose(migrating)
    assert dep.release is not None
    svc = doc["services"]["odoo-upgrade"]
    owner = svc["environment"]["PGUSER"]
    db = _odoo_database(pg, owner)
    log = tmp_path / "odoo.log"

    failed = _update(pg, svc, db, tmp_path, FAKE_ODOO_EXIT="255")
    assert failed.returncode != 0
    with pg.connect(db) as conn:  # no marker: the next run updates again
        assert conn.execute("SELECT count(*) FROM ir_config_parameter").fetchone() == (0,)

    first = _update(pg, svc, db, tmp_path)
    assert first.returncode == 0, first.stderr
    calls = [ln.rstrip("\t").split("\t") for ln in log.read_text().splitlines()]
    assert len(calls) == 2
    assert {
        "--update=acme_mrp,mrp",
        f"--database={db}",
        f"--db_user={owner}",
        "--stop-after-init",
    } <= set(calls[1])
    with pg.connect(db) as conn:
        assert conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key = 'plantops.upgrade'"
        ).fetchone() == (dep.release.upgrade_id,)

    again = _update(pg, svc, db, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already upgraded" in again.stdout
    assert len(log.read_text().splitlines()) == 2  # odoo did not run again


def test_the_rollback_plan_names_the_backup_upgrade_sh_annotates(tmp_path: Path) -> None:
    root = _pinned_fleet(tmp_path / "fleet", _record(1, ()), _record(2, ("mrp",)))
    plan = services.rollback(root, plant=PLANT, env="prod", today=TODAY).plan
    assert plan.database == "restore"
    out = tmp_path / "out"
    services.plan_fleet(root, out, today=TODAY)
    script = (out / VM_DIR / "upgrade.sh").read_text()
    assert f"--annotation=plantops-backup={plan.backup}" in script

"""DR plans: names exactly as `plantops plan` renders them, a schema-valid CNPG recovery
Cluster (and the NetworkPolicies it needs), runbook order, VM and shared plants."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from plantops.backup.retention import plan_retention
from plantops.check.schema import SchemaValidator
from plantops.cli.main import app
from plantops.render.recovery import DrPlan, render_runbook
from plantops.services import plan_fleet
from plantops.services.backup import recovery_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"
WHEN = dt.datetime(2025, 3, 1, 14, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree `plantops plan` writes for the plants these tests recover."""
    out = tmp_path_factory.mktemp("plan") / "out"
    plan_fleet(
        EXAMPLE,
        out,
        today=dt.date.today(),
        plants=["lyon-meddev", "brno-components", "leipzig-vm"],
    )
    return out


def _objects(directory: Path, kind: str) -> list[dict[str, object]]:
    found = [o for p in sorted(directory.glob("*.yaml")) for o in yaml.safe_load_all(p.read_text())]
    return [o for o in found if o["kind"] == kind]


def _plan(plant: str, when: dt.datetime | None = WHEN) -> DrPlan:
    return recovery_plan(EXAMPLE, plant, "prod", when)


def test_names_match_the_rendered_tree_and_cluster_is_schema_valid(rendered: Path) -> None:
    plan = _plan("lyon-meddev")
    (dep_dir,) = rendered.glob(f"clusters/*/{plan.namespace}")
    (cluster,) = _objects(dep_dir, "Cluster")
    (store,) = _objects(dep_dir, "ObjectStore")
    assert plan.namespace == cluster["metadata"]["namespace"]  # type: ignore[index]
    assert plan.source_cluster == cluster["metadata"]["name"]  # type: ignore[index]
    assert plan.object_store == store["metadata"]["name"]  # type: ignore[index]
    (pooler,) = _objects(dep_dir, "Pooler")
    assert plan.pooler == pooler["metadata"]["name"]  # type: ignore[index]

    manifest = plan.recovery_manifest
    assert manifest["metadata"]["namespace"] == plan.namespace
    spec = manifest["spec"]
    assert spec["bootstrap"] == {
        "recovery": {
            "database": "lyon-meddev",
            "owner": "lyon_meddev",
            "recoveryTarget": {"targetTime": "2025-03-01 14:05:00.000000+00:00"},
            "secret": cluster["spec"]["bootstrap"]["initdb"]["secret"],  # type: ignore[index]
            "source": plan.source_cluster,
        }
    }
    assert spec["externalClusters"] == [
        {
            "name": plan.source_cluster,
            "plugin": {
                "name": "barman-cloud.cloudnative-pg.io",
                "parameters": {
                    "barmanObjectName": plan.object_store,
                    "serverName": plan.source_cluster,
                },
            },
        }
    ]
    # Same size, storage and roles as what runs today; its own WAL under its own name.
    for key in ("instances", "storage", "resources", "managed", "postgresql"):
        assert spec[key] == cluster["spec"][key]  # type: ignore[index]
    assert spec["plugins"][0]["parameters"] == {
        "barmanObjectName": plan.object_store,
        "serverName": plan.recovery_cluster,
    }

    validator = SchemaValidator("1.30")
    for obj in plan.manifests:
        assert validator.validate(obj, file="dr") == [], obj["metadata"]["name"]
    latest = _plan("lyon-meddev", None).recovery_manifest
    assert "recoveryTarget" not in latest["spec"]["bootstrap"]["recovery"]
    assert validator.validate(latest, file="dr") == []


def test_recovery_cluster_gets_the_source_clusters_network_flows() -> None:
    plan = _plan("lyon-meddev")
    selectors = {
        p["metadata"]["name"]: json.dumps(p["spec"], sort_keys=True) for p in plan.network_policies
    }
    assert set(selectors) == {
        f"postgres-{plan.recovery_cluster}",
        f"pgbouncer-{plan.recovery_cluster}",
    }
    for text in selectors.values():
        assert f'"cnpg.io/cluster": "{plan.recovery_cluster}"' in text
        assert f'"cnpg.io/cluster": "{plan.source_cluster}"' not in text


def test_runbook_sequences_database_filestore_odoo_integrations_smoke() -> None:
    text = render_runbook(_plan("lyon-meddev"))
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == [
        "## 1. Database",
        "## 2. Filestore",
        "## 3. Odoo",
        "## 4. Integrations",
        "## 5. Smoke checks",
    ]
    assert "kubectl -n lyon-meddev-prod patch pooler lyon-meddev-pg-pooler-rw" in text


def test_shared_plant_is_restored_alone_and_the_others_keep_running(rendered: Path) -> None:
    plan = _plan("brno-components")
    assert plan.namespace == "shared-eu-subsidiaries-prod"
    assert (rendered / "clusters" / "eu-shared-1" / plan.namespace).is_dir()
    assert plan.shared_with == ("gdansk-packaging",)
    assert (plan.owner, plan.runtime_role) == ("brno_components", "odoo")
    text = render_runbook(plan)
    # Nothing that stops the shared Odoo or cuts every tenant over to the recovered cluster.
    assert "scale" not in text and "--replicas" not in text
    assert "patch pooler" not in text and "db_host" not in text
    # Only this plant's routes are paused (the IngressRoutes carry the plant label).
    (routes,) = [ln for ln in text.splitlines() if "delete ingressroute" in ln]
    assert "-l plantops.io/plant=brno-components" in routes
    ingress = (rendered / "clusters" / "eu-shared-1" / plan.namespace / "ingress.yaml").read_text()
    plant_routes = [
        o
        for o in yaml.safe_load_all(ingress)
        if o["kind"] == "IngressRoute"
        and o["metadata"]["labels"].get("plantops.io/plant") == "brno-components"
    ]
    assert plant_routes and all(
        "brno-components." in r["match"] for o in plant_routes for r in o["spec"]["routes"]
    )
    assert 'ALTER DATABASE "brno-components" ALLOW_CONNECTIONS false' in text
    assert '"gdansk-packaging"' not in text


def test_vm_plant_runbook_uses_the_rendered_pgbackrest_stanza(rendered: Path) -> None:
    plan = _plan("leipzig-vm")
    conf = (rendered / "vms" / "leipzig-vm-prod" / "pgbackrest.conf").read_text()
    assert f"[{plan.stanza}]" in conf and f"pg1-path={plan.pgdata}" in conf
    assert plan.manifests == ()
    text = render_runbook(plan)
    assert f"plantops backup pitr restore --config pgbackrest.conf --stanza {plan.stanza}" in text


def test_dr_plan_cli_writes_runbook_and_manifests(tmp_path: Path) -> None:
    args = ["dr", "plan", "--fleet", str(EXAMPLE), "--plant", "porto-plastics", "--env", "prod"]
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    result = CliRunner().invoke(
        app, [*args, "--target-time", when.isoformat(), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "recovery-cluster.json").read_text())
    assert manifest["metadata"]["name"] == f"porto-plastics-pg-recovery-{when:%Y%m%d%H%M}"
    policies = json.loads((tmp_path / "recovery-networkpolicies.json").read_text())
    validator = SchemaValidator("1.30")
    for obj in [manifest, *policies["items"]]:
        assert validator.validate(obj, file="dr") == []
    assert "## 1. Database" in (tmp_path / "RUNBOOK.md").read_text()
    bad = CliRunner().invoke(
        app, ["dr", "plan", "--fleet", str(EXAMPLE), "--plant", "nope", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "no plant" in bad.output
    naive = CliRunner().invoke(app, [*args, "--target-time", "2025-03-01T14:05"])
    assert naive.exit_code == 2 and "time zone" in naive.output


def test_retention_gfs_keeps_daily_weekly_monthly() -> None:
    from dataclasses import replace

    from plantops.backup.policy import BackupPolicy
    from plantops.store import BackupRecord

    base = BackupRecord(
        id="",
        plant="p",
        env="prod",
        tier="t",
        format="dump",
        status="complete",
        store_url="",
        location="",
        db_name="",
        pg_version="",
        odoo_version="",
        key_id=None,
        size_bytes=0,
        started_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        finished_at=None,
        host="",
        pid=0,
        error="",
        manifest={},
        row_counts={},
    )
    start = dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC)
    backups = [
        replace(base, id=f"b{i:03d}", started_at=start + dt.timedelta(days=i)) for i in range(120)
    ]
    policy = BackupPolicy("t", 60, 60, daily=7, weekly=4, monthly=3)
    decisions = plan_retention(backups, lambda _: policy)
    kept = {d.backup_id for d in decisions if d.keep}
    newest_days = {f"b{i:03d}" for i in range(113, 120)}
    assert newest_days <= kept
    assert len(kept) <= 7 + 4 + 3
    assert all(d.reasons for d in decisions)
    assert "beyond retention" in next(d for d in decisions if not d.keep).reasons[0]

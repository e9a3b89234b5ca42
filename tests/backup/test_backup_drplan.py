"""DR plans for Kubernetes plants: runbook order and a schema-valid CNPG recovery Cluster."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from plantops.backup.drplan import DrPlan, render_recovery_cluster, render_runbook
from plantops.backup.retention import plan_retention
from plantops.cli.main import app

SCHEMA = Path("/work/shared/schemas/crds/postgresql.cnpg.io/cluster_v1.json")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-manufacturing"


def _plan(when: dt.datetime | None) -> DrPlan:
    return DrPlan(
        plant="lyon-meddev",
        env="prod",
        tier="critical",
        tier_reason="test",
        namespace="lyon-meddev-prod",
        source_cluster="lyon-meddev-pg",
        recovery_cluster="lyon-meddev-pg-recovery-202503011405",
        object_store="lyon-meddev-pg-backup-store",
        target_time=when,
        rpo_minutes=15,
        rto_minutes=60,
        runtime="kubernetes",
        instances=3,
    )


def test_recovery_cluster_matches_the_cnpg_schema() -> None:
    when = dt.datetime(2025, 3, 1, 14, 5, tzinfo=dt.UTC)
    manifest = render_recovery_cluster(_plan(when))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(manifest, schema)
    spec = manifest["spec"]
    assert spec["bootstrap"]["recovery"]["source"] == "lyon-meddev-pg"
    assert spec["bootstrap"]["recovery"]["recoveryTarget"] == {
        "targetTime": "2025-03-01 14:05:00.000000+00:00"
    }
    ext = spec["externalClusters"][0]
    assert ext["plugin"] == {
        "name": "barman-cloud.cloudnative-pg.io",
        "parameters": {
            "barmanObjectName": "lyon-meddev-pg-backup-store",
            "serverName": "lyon-meddev-pg",
        },
    }
    jsonschema.validate(render_recovery_cluster(_plan(None)), schema)


def test_runbook_sequences_database_filestore_odoo_integrations_smoke() -> None:
    text = render_runbook(_plan(None))
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == [
        "## 1. Database",
        "## 2. Filestore",
        "## 3. Odoo",
        "## 4. Integrations",
        "## 5. Smoke checks",
    ]


def test_dr_plan_cli_writes_runbook_and_manifest(tmp_path: Path) -> None:
    plants = sorted(p.stem for p in (EXAMPLE / "plants").glob("*.yaml"))
    result = CliRunner().invoke(
        app,
        [
            "dr",
            "plan",
            "--fleet",
            str(EXAMPLE),
            "--plant",
            plants[0],
            "--env",
            "prod",
            "--target-time",
            "2025-03-01T14:05:00+00:00",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "recovery-cluster.json").read_text())
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
    assert "## 1. Database" in (tmp_path / "RUNBOOK.md").read_text()
    bad = CliRunner().invoke(
        app, ["dr", "plan", "--fleet", str(EXAMPLE), "--plant", "nope", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "no plant" in bad.output


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

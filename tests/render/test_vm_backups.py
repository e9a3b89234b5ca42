"""VM plants: pgBackRest is in the PostgreSQL image, and something runs the backups."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plantops.plan import Deployment
from plantops.render.compose.stack import s3_uri_style, stanza
from plantops.render.compose.systemd import BACKUP_HOUR, backup_calendar
from plantops.render.kubernetes.common import stable_minute
from tests.render.conftest import Rendered


def _vms(example: Rendered) -> list[tuple[Deployment, str, dict[str, Any]]]:
    assert example.compose, "the example fleet has VM plants"
    return example.compose


def _file(example: Rendered, dep: Deployment, rel: str) -> str:
    return example.files[f"{dep.dir}/{rel}"]


def _settings(pg: dict[str, Any]) -> dict[str, str]:
    cmd = pg["command"]
    return dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd) if arg == "-c")


def test_postgres_image_is_built_with_pgbackrest(example: Rendered) -> None:
    for _dep, path, doc in _vms(example):
        pg = doc["services"]["postgres"]
        dockerfile = pg["build"]["dockerfile_inline"]
        base = dockerfile.splitlines()[0]
        assert base == f"FROM {example.ctx.platform.images.postgres}", path
        assert "@sha256:" in base, path
        assert re.search(r"apt-get install [^;]*\bpgbackrest\b", dockerfile), path
        assert "rm -rf /var/lib/apt/lists/*" in dockerfile, path
        # Compose interpolates $ in every string, dockerfile_inline included.
        assert "$" not in dockerfile, path
        # A local tag that changes with the Dockerfile, built here and never pulled.
        assert pg["image"].startswith("plantops.local/postgres-pgbackrest:"), path
        assert pg["pull_policy"] == "never", path


def test_postgres_archives_wal_through_pgbackrest(example: Rendered) -> None:
    for dep, path, doc in _vms(example):
        pg = doc["services"]["postgres"]
        settings = _settings(pg)
        assert settings["archive_mode"] == "on", path
        assert settings["archive_command"] == (
            f"pgbackrest --stanza={stanza(dep)} archive-push %p"
        ), path
        assert "./pgbackrest.conf:/etc/pgbackrest/pgbackrest.conf:ro" in pg["volumes"], path
        conf = _file(example, dep, "pgbackrest.conf")
        spool = re.search(r"^spool-path=(.+)$", conf, re.M)
        assert spool, path
        assert "archive-async=y" in conf.splitlines()
        # The async spool is on a named volume (survives container re-creation).
        assert f"pgbackrest-spool:{spool.group(1)}" in pg["volumes"], path
        assert "pgbackrest-spool" in doc["volumes"], path
        assert spool.group(1) in pg["build"]["dockerfile_inline"], "spool owned by postgres"


def test_failing_repository_cannot_fill_the_disk(example: Rendered) -> None:
    for dep, _path, _doc in _vms(example):
        conf = _file(example, dep, "pgbackrest.conf")
        m = re.search(r"^archive-push-queue-max=(\d+)GiB$", conf, re.M)
        assert m, conf
        assert 1 <= int(m.group(1)) <= dep.sizing.postgres_storage_gib // 2


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [
        (None, "host"),
        ("https://s3.eu-central-1.amazonaws.com", "host"),
        ("https://s3.amazonaws.com/", "host"),
        ("https://s3.cn-north-1.amazonaws.com.cn", "host"),
        ("http://minio.backup.svc:9000", "path"),
        ("https://rgw.ceph.example", "path"),
    ],
)
def test_s3_uri_style(endpoint: str | None, style: str) -> None:
    assert s3_uri_style(endpoint) == style


def test_aws_endpoint_uses_virtual_hosted_style(example: Rendered) -> None:
    assert example.ctx.backup_store.endpoint_url
    assert "amazonaws.com" in example.ctx.backup_store.endpoint_url
    for dep, _path, _doc in _vms(example):
        assert "repo1-s3-uri-style=host" in _file(example, dep, "pgbackrest.conf").splitlines()


def test_real_pgbackrest_reads_the_rendered_config(example: Rendered, tmp_path: Path) -> None:
    dep = _vms(example)[0][0]
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text(_file(example, dep, "pgbackrest.conf"))

    def current(command: str, option: str) -> str:
        res = subprocess.run(
            ["pgbackrest", f"--config={conf}", f"--stanza={stanza(dep)}", "help", command, option],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "WARN" not in res.stdout + res.stderr, res.stdout + res.stderr
        m = re.search(r"^current: (.+)$", res.stdout, re.M)
        assert m, res.stdout
        return m.group(1)

    gib = dep.sizing.postgres_storage_gib // 4
    assert current("archive-push", "archive-push-queue-max") == f"{gib}GiB"
    assert current("backup", "repo1-s3-uri-style") == "host"


# --- scheduled backups: systemd units under vms/<plant>-<env>/systemd/ ---------------


def test_every_vm_gets_the_stanza_and_backup_units(example: Rendered) -> None:
    for dep, _path, _doc in _vms(example):
        units = {
            p.rsplit("/", 1)[1]: t
            for p, t in example.files.items()
            if p.startswith(f"{dep.dir}/systemd/")
        }
        kinds = set(backup_calendar(dep))
        assert {"full", "diff"} <= kinds
        expected = {"plantops-pgbackrest-stanza.service"}
        for kind in kinds:
            expected |= {f"plantops-pgbackrest-{kind}.service", f"plantops-pgbackrest-{kind}.timer"}
        assert set(units) == expected
        run = f"docker compose exec -T --user postgres postgres pgbackrest --stanza={stanza(dep)}"
        assert f"ExecStart={run} stanza-create" in units["plantops-pgbackrest-stanza.service"]
        for kind in kinds:
            assert f"{run} --type={kind} backup" in units[f"plantops-pgbackrest-{kind}.service"]
            timer = units[f"plantops-pgbackrest-{kind}.timer"]
            assert f"OnCalendar={backup_calendar(dep)[kind]}" in timer.splitlines()
            assert "Persistent=true" in timer.splitlines()


def _with_backup(dep: Deployment, rpo_minutes: int, pitr: bool) -> Deployment:
    backup = dep.tier_spec.backup.model_copy(update={"rpo_minutes": rpo_minutes, "pitr": pitr})
    return dataclasses.replace(dep, tier_spec=dep.tier_spec.model_copy(update={"backup": backup}))


def _fires_per_day(calendar: str) -> list[int]:
    """Minutes of the day a (daily, UTC) OnCalendar rendered by plantops fires at."""
    m = re.fullmatch(r"\*-\*-\* (\*|[\d,]+):(\d+)(?:/(\d+))?:00 UTC", calendar)
    assert m, calendar
    hours = range(24) if m.group(1) == "*" else [int(h) for h in m.group(1).split(",")]
    minutes = range(int(m.group(2)), 60, int(m.group(3))) if m.group(3) else [int(m.group(2))]
    return sorted(h * 60 + mm for h in hours for mm in minutes)


@pytest.mark.parametrize(
    ("rpo", "pitr", "incr"),
    [
        (30, False, "*-*-* *:00/30:00 UTC"),
        (45, False, "*-*-* *:00/30:00 UTC"),
        (60, False, "*-*-* {all_but_2}:{m}:00 UTC"),
        (240, False, "*-*-* 00,04,08,12,16,20:{m}:00 UTC"),
        (300, False, "*-*-* 00,04,08,12,16,20:{m}:00 UTC"),
        (720, False, "*-*-* 00,12:{m}:00 UTC"),
        (1440, False, None),
        (2880, False, None),
        (5, True, None),
        (240, True, None),
    ],
)
def test_backup_schedule_follows_the_rpo(
    example: Rendered, rpo: int, pitr: bool, incr: str | None
) -> None:
    dep = _with_backup(_vms(example)[0][0], rpo, pitr)
    m = f"{stable_minute(dep, 'backup'):02d}"
    cal = backup_calendar(dep)
    assert cal["full"] == f"Sun *-*-* {BACKUP_HOUR:02d}:{m}:00 UTC"
    assert cal["diff"] == f"Mon..Sat *-*-* {BACKUP_HOUR:02d}:{m}:00 UTC"
    all_but_2 = ",".join(f"{h:02d}" for h in range(24) if h != BACKUP_HOUR)
    assert cal.get("incr") == (incr and incr.format(m=m, all_but_2=all_but_2))
    if "incr" in cal:
        # Never further apart than the RPO, counting the daily full/diff backup.
        daily = BACKUP_HOUR * 60 + int(m)
        fires = sorted({*_fires_per_day(cal["incr"]), daily})
        gaps = [b - a for a, b in zip(fires, [*fires[1:], fires[0] + 1440], strict=True)]
        assert max(gaps) <= rpo
        assert daily not in _fires_per_day(cal["incr"]) or rpo < 60


def test_units_pass_systemd_analyze_verify(example: Rendered, tmp_path: Path) -> None:
    # docker.service comes with Docker on the VM; a stub stands in for it here.
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "docker.service").write_text("[Service]\nExecStart=/bin/true\n")
    for dep, _path, _doc in _vms(example):
        out = tmp_path / dep.namespace
        out.mkdir()
        for p, text in example.files.items():
            if p.startswith(f"{dep.dir}/systemd/"):
                (out / p.rsplit("/", 1)[1]).write_text(text)
        for timer in sorted(out.glob("*.timer")):
            cal = re.search(r"^OnCalendar=(.+)$", timer.read_text(), re.M)
            assert cal
            res = subprocess.run(
                ["systemd-analyze", "calendar", cal.group(1)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert res.returncode == 0, res.stderr
        res = subprocess.run(
            ["systemd-analyze", "verify", *sorted(str(p) for p in out.iterdir())],
            capture_output=True,
            text=True,
            env={"SYSTEMD_UNIT_PATH": f"{stubs}:", "PATH": "/usr/bin:/bin:/usr/local/bin"},
            check=False,
        )
        assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def test_fleet_can_pin_the_s3_uri_style(example: Rendered) -> None:
    """An explicit ``uri_style`` wins over the endpoint heuristic (e.g. MinIO with vhosts)."""
    from plantops.render.compose.stack import render_pgbackrest_conf

    for dep, _path, _doc in _vms(example):
        store = example.ctx.backup_store.model_copy(update={"uri_style": "path"})
        ctx = dataclasses.replace(example.ctx, backup_store=store)
        assert "repo1-s3-uri-style=path" in render_pgbackrest_conf(dep, ctx)
        assert "repo1-s3-uri-style=host" in _file(example, dep, "pgbackrest.conf")

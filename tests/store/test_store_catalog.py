"""The catalog against SQLite and a real PostgreSQL: migrations, records, queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from tests.fixtures.postgres import PgCluster

from plantops.errors import UserError
from plantops.store import Catalog, ObjectRecord, open_catalog


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'state.db'}"
        cat = open_catalog(url)
        yield cat
        cat.close()
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database("catalog")
    cat = open_catalog(cluster.url(name))
    yield cat
    cat.close()
    cluster.drop_database(name)


T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def _add(cat: Catalog, bid: str, plant: str, when: datetime) -> None:
    cat.create_backup(
        backup_id=bid,
        plant=plant,
        env="prod",
        tier="critical",
        fmt="native",
        store_url="file:///b",
        location=f"{plant}/prod/{bid}",
        started_at=when,
        host="h",
        pid=1,
        key_id="age:0123456789abcdef",
        db_name="odoo",
    )


def test_migrations_create_the_control_plane_tables(catalog: Catalog) -> None:
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"backups", "backup_objects", "verifications", "alembic_version"} <= tables


def test_migrations_are_idempotent(catalog: Catalog) -> None:
    url = catalog.engine.url.render_as_string(hide_password=False)
    again = open_catalog(url.replace("+psycopg", ""))
    assert again.list_backups() == []
    again.close()


def test_backup_lifecycle_roundtrip(catalog: Catalog) -> None:
    _add(catalog, "aaa111", "lyon", T0)
    _add(catalog, "bbb222", "lyon", T0 + timedelta(hours=1))
    _add(catalog, "ccc333", "porto", T0 + timedelta(hours=2))
    catalog.complete_backup(
        "aaa111",
        objects=[
            ObjectRecord("db.dump.age", 10, "a" * 64, True),
            ObjectRecord("manifest.json.age", 5, "b" * 64, True),
        ],
        manifest={"odoo_dump": "1", "modules": {"base": "17.0.1.3"}},
        row_counts={"public.res_partner": 500},
        pg_version="15.0",
        odoo_version="17.0",
        finished_at=T0 + timedelta(minutes=5),
    )
    catalog.add_verification(
        "aaa111",
        status="passed",
        started_at=T0 + timedelta(hours=3),
        finished_at=T0 + timedelta(hours=3, minutes=1),
        rto_seconds=42.5,
        rto_objective_seconds=3600,
        rpo_seconds=100,
        rpo_objective_seconds=900,
        checks={"restore": {"ok": True, "detail": ""}},
    )
    rec = catalog.get("aaa")  # unique prefix
    assert rec.status == "complete" and rec.size_bytes == 15 and rec.verified
    assert rec.started_at == T0 and rec.started_at.tzinfo is not None
    assert [o.name for o in rec.objects] == ["db.dump.age", "manifest.json.age"]
    assert rec.row_counts == {"public.res_partner": 500}
    assert rec.last_verification is not None and rec.last_verification.rto_seconds == 42.5
    assert [b.id for b in catalog.list_backups(plant="lyon")] == ["bbb222", "aaa111"]
    assert [b.id for b in catalog.list_backups(statuses=["running"])] == ["ccc333", "bbb222"]
    catalog.set_status("bbb222", "abandoned", error="died")
    assert catalog.get("bbb222").error == "died"
    with pytest.raises(UserError, match="no backup with id"):
        catalog.get("zzz")


def test_bad_state_db_url_is_a_user_error() -> None:
    with pytest.raises(UserError):
        open_catalog("not a url://")


def test_backups_keep_their_policy_and_0002_upgrades_old_rows(catalog: Catalog) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from plantops.store.catalog import MIGRATIONS_DIR, migrate

    policy = {"tier": "critical", "rpo_minutes": 15, "rto_minutes": 60, "daily": 14}
    catalog.create_backup(
        backup_id="pol111",
        plant="lyon",
        env="prod",
        tier="critical",
        fmt="native",
        store_url="file:///b",
        location="lyon/prod/pol111",
        started_at=T0,
        host="h",
        pid=1,
        key_id=None,
        db_name="odoo",
        policy=policy,
    )
    assert catalog.get("pol111").policy == policy

    # A catalog written before 0002 gets an empty policy (built-in defaults apply).
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with catalog.engine.begin() as conn:
        assert "policy" not in {c["name"] for c in inspect(conn).get_columns("backups")}
        conn.execute(
            text(
                "INSERT INTO backups (id, plant, env, tier, format, status, store_url,"
                " location, db_name, pg_version, odoo_version, size_bytes, started_at, host,"
                " pid, error, manifest, row_counts) VALUES ('old111', 'lyon', 'prod', 'high',"
                " 'dump', 'complete', 'file:///b', 'x', 'odoo', '15', '17.0', 1,"
                " :t, 'h', 1, '', '{}', '{}')"
            ),
            {"t": T0},
        )
    migrate(catalog.engine)
    assert catalog.get("old111").policy == {}


def test_imported_backups_record_their_source_and_0003_upgrades_old_rows(
    catalog: Catalog,
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from plantops.store.catalog import MIGRATIONS_DIR, migrate

    origin = {"file": "lyon.zip", "sha256": "ab" * 32}
    common = {
        "plant": "lyon",
        "env": "prod",
        "tier": "adhoc",
        "fmt": "odoo-zip",
        "store_url": "file:///b",
        "started_at": T0,
        "host": "h",
        "pid": 1,
        "key_id": None,
        "db_name": "odoo",
    }
    catalog.create_backup(
        backup_id="imp111", location="x/imp111", source="imported", origin=origin, **common
    )
    catalog.create_backup(backup_id="run111", location="x/run111", **common)
    assert (catalog.get("imp111").source, catalog.get("imp111").origin) == ("imported", origin)
    assert (catalog.get("run111").source, catalog.get("run111").origin) == ("run", {})
    # An import that did not complete is discarded; a complete backup never is.
    catalog.discard_backup("imp111")
    catalog.complete_backup(
        "run111",
        objects=[],
        manifest={},
        row_counts={},
        pg_version="15.0",
        odoo_version="17.0",
        finished_at=T0,
    )
    catalog.discard_backup("run111")
    assert [b.id for b in catalog.list_backups()] == ["run111"]

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    with catalog.engine.begin() as conn:
        assert "source" not in {c["name"] for c in inspect(conn).get_columns("backups")}
        conn.execute(text("UPDATE backups SET odoo_version = '16.0'"))
    migrate(catalog.engine)
    old = catalog.get("run111")
    assert (old.source, old.origin, old.odoo_version) == ("run", {}, "16.0")

"""The store queries behind the fleet page's status, on SQLite and a real PostgreSQL:
the newest event of a type per (plant, subject), and the newest verified backup per
(plant, env), and the probe outcome counts behind the SLO burn — grouped in SQL, so a
page of 50 plants costs three queries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import inspect

from plantops.store import open_catalog
from plantops.store.events import PROBE_CHECKED
from plantops.store.server import open_server_store
from tests.fixtures.postgres import PgCluster

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def check_queries(url: str) -> None:
    store = open_server_store(url)
    catalog = open_catalog(url)
    try:
        for i, (plant, env, ok) in enumerate(
            [("a", "prod", True), ("a", "prod", False), ("a", "dev", True), ("b", "prod", True)]
        ):
            store.append_event(
                PROBE_CHECKED,
                plant=plant,
                subject=env,
                data={"ok": ok},
                now=T0 + dt.timedelta(minutes=i),
            )
        store.append_event("plan.written", plant="a", subject="prod", now=T0)
        latest = store.latest_events(PROBE_CHECKED, plants=["a"])
        assert set(latest) == {("a", "prod"), ("a", "dev")}  # not b's, not another type
        assert latest[("a", "prod")].data == {"ok": False}  # the newer of the two
        assert store.newest_event(PROBE_CHECKED, subjects=["dev"]) is not None
        assert store.newest_event("release.created", subjects=["dev"]) is None
        # the SLO burn's counts: (events, not ok) after each edge up to `until`, grouped
        store.append_event(PROBE_CHECKED, plant="a", subject="dev", data={}, now=T0 + MIN * 4)
        store.append_event(PROBE_CHECKED, plant="a", subject="dev", now=T0 + MIN * 20)  # later
        counts = store.outcome_counts(
            PROBE_CHECKED, plants=["a"], edges=[T0 - MIN, T0 + MIN / 2], until=T0 + MIN * 10
        )
        assert counts == {("a", "prod"): [(2, 1), (1, 1)], ("a", "dev"): [(2, 1), (2, 1)]}
        assert store.outcome_counts(PROBE_CHECKED, plants=[], edges=[T0], until=T0) == {}
        indexes = {
            i["name"]: i["column_names"] for i in inspect(store.engine).get_indexes("events")
        }
        assert indexes["ix_events_type_plant_time"] == ["type", "plant", "time"]  # a range

        def backup(bid: str, env: str, hours: int, verdict: str | None) -> None:
            at = T0 - dt.timedelta(hours=hours)
            catalog.create_backup(
                backup_id=bid, plant="a", env=env, tier="standard", fmt="odoo-zip",
                store_url="file:///x", location="x", started_at=at, host="h", pid=1,
                key_id=None, db_name="d",
            )  # fmt: skip
            catalog.complete_backup(
                bid, objects=[], manifest={}, row_counts={}, pg_version="16",
                odoo_version="17.0", finished_at=at,
            )  # fmt: skip
            if verdict:
                catalog.add_verification(
                    bid, status=verdict, started_at=at, finished_at=at, rto_seconds=1.0,
                    rto_objective_seconds=60, rpo_seconds=1, rpo_objective_seconds=60, checks={},
                )  # fmt: skip

        backup("old", "prod", 30, "passed")
        backup("newer", "prod", 5, "passed")
        backup("newest-failed", "prod", 1, "failed")
        backup("unverified", "dev", 2, None)
        found = catalog.newest_verified_at(["a", "b"])
        assert found == {("a", "prod"): T0 - dt.timedelta(hours=5)}
    finally:
        store.close()
        catalog.close()


def test_on_sqlite(tmp_path: Path) -> None:
    check_queries(f"sqlite:///{tmp_path}/state.db")


@pytest.mark.postgres
def test_on_postgresql(pg_cluster: PgCluster, pg_db: str) -> None:
    check_queries(pg_cluster.url(pg_db))

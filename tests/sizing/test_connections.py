"""The Odoo connection model (plantops.sizing.connections) and how sizing uses it.

Regression tests for issue #8 (items 1, 6, 7) and the connection part of issue #9: each
fails on the output before the model (cron db_maxconn 3 with 2 threads, a gevent process
sharing db_maxconn, per-worker memory limits on the threaded cron process, a budget that
ignored the rollout surge pod).
"""

from __future__ import annotations

import configparser
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.render.odoo_conf import render_odoo_conf
from plantops.sizing import InfeasibleSizing, Sizing, size_unit
from plantops.sizing import connections as conn
from tests.render.conftest import Rendered
from tests.sizing.test_odoo_sizing import BASE

MIB = 1024 * 1024


def _conf(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return dict(parser["options"])


def _gevent_pool(s: Sizing) -> int:
    """The gevent process's pool as Odoo's db_connect picks it from the rendered conf."""
    return s.db_maxconn_gevent if s.db_maxconn_gevent is not None else s.db_maxconn


def _total_at_max(s: Sizing) -> int:
    """Recomputed from the pools, not taken from sizing's own total."""
    web_pod = s.workers * s.db_maxconn + _gevent_pool(s)
    cron = s.cron_replicas * s.db_maxconn_cron
    db_init = s.db_maxconn_cron  # the db-init Job runs odoo-cron.conf's pool
    owner = s.connections["tenant_owner_init"]
    return (s.max_web_replicas + 1) * web_pod + cron + db_init + owner


# --- the model ------------------------------------------------------------------------


def test_db_maxconn_gevent_exists_from_17_0() -> None:
    assert [conn.series_model(v).has_db_maxconn_gevent for v in conn.SERIES] == [
        False,
        True,
        True,
        True,
    ]
    assert conn.series_model("16.0").gevent_setting() == "db_maxconn"


def test_cron_thread_needs_listen_cron_job_and_signaling_connections() -> None:
    for series in conn.SERIES:
        one = conn.process_connections(series, conn.Process.THREADED_CRON, 1)
        two = conn.process_connections(series, conn.Process.THREADED_CRON, 2)
        assert (one.idle, one.minimum) == (1, 5)
        assert (two.idle, two.minimum) == (2, 9)
        # the prefork cron worker is one thread with the same connections
        assert conn.process_connections(series, conn.Process.CRON_WORKER).minimum == 5


def test_gevent_and_http_worker_minimums() -> None:
    gevent = conn.process_connections("18.0", conn.Process.GEVENT)
    assert (gevent.idle, gevent.minimum) == (1, 2)  # the bus listener + one websocket cursor
    assert conn.process_connections("18.0", conn.Process.HTTP_WORKER).minimum == 2


def test_unknown_series_and_threadless_cron_are_refused() -> None:
    with pytest.raises(ValueError, match="15.0"):
        conn.series_model("15.0")
    with pytest.raises(ValueError, match="max_cron_threads"):
        conn.process_connections("17.0", conn.Process.THREADED_CRON, 0)


# --- regressions on sizing ------------------------------------------------------------


def test_cron_pool_fits_two_threads_running_jobs() -> None:
    s = size_unit(BASE)  # max_cron_threads = 2: was db_maxconn_cron = 3, the pool full
    assert s.max_cron_threads == 2
    assert s.db_maxconn_cron == 9
    assert any("cron db_maxconn = 2 threads x 4" in n for n in s.notes)


def test_gevent_pool_is_budgeted_on_its_own_where_the_series_has_it() -> None:
    s17 = size_unit(BASE)
    assert s17.db_maxconn_gevent == conn.GEVENT_POOL == 4  # listener + 3 websocket cursors
    assert s17.connections["web_pod"] == s17.workers * s17.db_maxconn + s17.db_maxconn_gevent
    s16 = size_unit(dataclasses.replace(BASE, series="16.0"))
    assert s16.db_maxconn_gevent is None
    assert s16.connections["web_pod"] == (s16.workers + 1) * s16.db_maxconn


def test_cron_memory_limits_are_for_the_whole_process() -> None:
    s = size_unit(BASE)  # 2 GiB cron container, 2 threads; 4 GiB web pods with 5 workers
    reserve = 3 * 72  # main + 2 cron threads: malloc arena and stack each
    assert s.limit_memory_hard_cron == (2048 + reserve) * MIB
    assert s.limit_memory_soft_cron == (1536 + reserve) * MIB
    assert s.limit_memory_soft_cron > s.limit_memory_soft  # not the per-worker figure
    assert s.limit_memory_hard_cron != s.limit_memory_hard


def test_single_replica_rollout_surge_fits_the_budget() -> None:
    # Issue #9: one replica with db_maxconn 62 needed 375 connections once the surge pod
    # started, against 190.
    s = size_unit(dataclasses.replace(BASE, peak_users=10, web_replicas=1, ha=False))
    assert s.max_web_replicas == 1
    assert s.connections["web_pods"] == 2
    assert _total_at_max(s) == s.connections_at_max <= s.connection_budget


def test_infeasible_budget_names_the_figure_to_raise() -> None:
    with pytest.raises(InfeasibleSizing, match=r"at least \d+"):
        size_unit(dataclasses.replace(BASE, peak_users=600, web_replicas=12, pg_max_connections=60))


def test_budget_keeps_postgres_and_cloudnativepg_connections_free() -> None:
    s = size_unit(dataclasses.replace(BASE, databases=3, pg_reserved_connections=3))
    # superuser_reserved_connections 3 + 3 per database for the instance manager's pools
    # ('postgres' and three tenant databases)
    assert s.connections["platform"] == 12
    assert s.connection_budget == 200 - 3 - 12
    assert s.postgres_parameters["superuser_reserved_connections"] == "3"
    vm = size_unit(dataclasses.replace(BASE, kubernetes=False, pg_reserved_connections=3))
    assert vm.connections["platform"] == 1  # pgBackRest
    assert vm.connection_budget == 200 - 3 - 1


# --- the property ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    series=st.sampled_from(conn.SERIES),
    threads=st.integers(1, 8),
    users=st.integers(1, 3000),
    cpu=st.sampled_from([0.5, 1, 2, 4, 8]),
    mem=st.sampled_from([1, 2, 4, 8, 16]),
    cron_mem=st.sampled_from([0.5, 1, 2, 4]),
    replicas=st.integers(1, 6),
    cron_replicas=st.integers(1, 2),
    max_conn=st.integers(20, 1000),
    reserved=st.integers(3, 20),
    databases=st.integers(1, 8),
    pgbouncer=st.booleans(),
    kubernetes=st.booleans(),
    factor=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_no_pool_can_run_dry_and_the_worst_moment_fits_postgres(
    series: str,
    threads: int,
    users: int,
    cpu: float,
    mem: int,
    cron_mem: float,
    replicas: int,
    cron_replicas: int,
    max_conn: int,
    reserved: int,
    databases: int,
    pgbouncer: bool,
    kubernetes: bool,
    factor: float,
) -> None:
    inputs = dataclasses.replace(
        BASE,
        series=series,
        max_cron_threads=threads,
        peak_users=users,
        web_cpu=cpu,
        web_memory_gib=mem,
        cron_memory_gib=cron_mem,
        web_replicas=replicas,
        max_web_replicas=replicas * 3,
        cron_replicas=cron_replicas,
        pg_max_connections=max_conn,
        pg_reserved_connections=reserved,
        databases=databases,
        pgbouncer=pgbouncer,
        kubernetes=kubernetes,
        size_factor=factor,
        ha=replicas > 1,
    )
    try:
        s = size_unit(inputs)
    except InfeasibleSizing as exc:
        assert "raise defaults.postgres_max_connections" in str(exc)
        return
    minimum = conn.process_connections
    assert s.db_maxconn >= minimum(series, conn.Process.HTTP_WORKER).minimum
    assert _gevent_pool(s) >= minimum(series, conn.Process.GEVENT).minimum
    assert s.db_maxconn_cron >= minimum(series, conn.Process.THREADED_CRON, threads).minimum
    assert s.db_maxconn_cron >= minimum(series, conn.Process.STOP_AFTER_INIT).minimum
    assert (s.db_maxconn_gevent is not None) == conn.series_model(series).has_db_maxconn_gevent
    # max replicas + the surge pod + cron + db-init Job + tenant-owner init, every pool full
    assert _total_at_max(s) == s.connections_at_max <= s.connection_budget
    # and the budget leaves PostgreSQL's superuser reserve and the platform's share free
    platform = conn.platform_connections(
        kubernetes=kubernetes, databases=databases, pgbouncer=pgbouncer
    )
    assert s.connection_budget + conn.PG_SUPERUSER_RESERVED + platform <= max_conn
    assert s.connection_budget + reserved <= max_conn
    assert s.max_web_replicas >= s.web_replicas
    reserve = (threads + 1) * 72 * MIB
    assert s.limit_memory_hard_cron == s.cron.memory_limit_mib * MIB + reserve
    assert reserve < s.limit_memory_soft_cron < s.limit_memory_hard_cron


# --- the rendered example fleet -------------------------------------------------------


def test_rendered_configs_follow_the_model(example: Rendered) -> None:
    assert example.deployments
    for dep in example.deployments:
        s = dep.sizing
        web = _conf(render_odoo_conf(dep))
        cron = _conf(render_odoo_conf(dep, cron=True))
        assert int(cron["db_maxconn"]) >= (
            conn.process_connections(
                dep.series, conn.Process.THREADED_CRON, int(cron["max_cron_threads"])
            ).minimum
        ), dep.id
        if conn.series_model(dep.series).has_db_maxconn_gevent:
            assert int(web["db_maxconn_gevent"]) >= conn.GEVENT_MINIMUM, dep.id
        else:
            assert "db_maxconn_gevent" not in web
        assert "db_maxconn_gevent" not in cron
        reserve = (int(cron["max_cron_threads"]) + 1) * 72 * MIB
        assert int(cron["limit_memory_hard"]) == s.cron.memory_limit_mib * MIB + reserve, dep.id
        assert int(cron["limit_memory_soft"]) < int(cron["limit_memory_hard"])
        assert int(web["limit_memory_soft"]) == s.limit_memory_soft
        assert _total_at_max(s) <= s.connection_budget, dep.id


def test_example_fleet_series_16_renders_no_gevent_option(example: Rendered) -> None:
    dep = example.deployments[0]
    sizing = size_unit(
        dataclasses.replace(
            BASE, series="16.0", peak_users=dep.sizing.users, kubernetes=dep.cluster is not None
        )
    )
    old = dataclasses.replace(dep, series="16.0", sizing=sizing)
    assert "db_maxconn_gevent" not in render_odoo_conf(old)

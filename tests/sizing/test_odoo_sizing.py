"""Odoo sizing rules (docs/sizing.md), by example and by property."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.sizing import InfeasibleSizing, SizingInputs, size_unit

MIB = 1024 * 1024

BASE = SizingInputs(
    peak_users=60,
    size_factor=1.0,
    production=True,
    ha=True,
    users_per_worker=6,
    min_workers=2,
    web_replicas=2,
    max_web_replicas=6,
    cron_replicas=1,
    max_cron_threads=2,
    web_cpu=2,
    web_memory_gib=4,
    cron_cpu=1,
    cron_memory_gib=2,
    postgres_instances=2,
    postgres_cpu=2,
    postgres_memory_gib=8,
    postgres_storage_gib=100,
    filestore_gib=100,
    redis_memory_gib=0.5,
    redis_replicas=1,
    pgbouncer=False,
    pg_max_connections=200,
    pg_reserved_connections=10,
    databases=1,
    customization="light",
    limit_time_cpu=600,
    limit_time_real=1200,
    limit_request=65536,
    series="17.0",
    kubernetes=True,
)


def test_workers_follow_the_users_per_worker_ratio() -> None:
    s = size_unit(BASE)
    assert s.workers_needed == 10  # 60 users / 6 per worker
    assert s.web_replicas * s.workers >= 10
    assert s.workers <= 2 * 2 + 1


def test_ratio_is_configurable() -> None:
    s = size_unit(dataclasses.replace(BASE, users_per_worker=3))
    assert s.workers_needed == 20


def test_non_production_is_scaled_and_not_ha() -> None:
    s = size_unit(dataclasses.replace(BASE, production=False, size_factor=0.1))
    assert s.users == 6 and s.web_replicas == 1 and s.max_web_replicas == 1
    assert s.postgres_instances == 1 and s.redis_replicas == 0


def test_memory_limits_stay_inside_the_pod() -> None:
    s = size_unit(BASE)  # 4 GiB pods, 5 workers
    assert s.workers == 5
    assert s.limit_memory_soft == (4096 - 256) // 5 * MIB
    assert s.limit_memory_hard == (3840 - 4 * 325) * MIB  # one heavy worker, four average


def test_small_pod_lowers_hard_limit_below_odoo_default() -> None:
    s = size_unit(dataclasses.replace(BASE, web_memory_gib=2, web_cpu=1))
    usable = 2048 - 256
    assert s.limit_memory_soft == usable // s.workers * MIB
    assert s.limit_memory_hard == (usable - (s.workers - 1) * 325) * MIB


def test_connection_budget_caps_autoscaling() -> None:
    s = size_unit(
        dataclasses.replace(BASE, peak_users=120, max_web_replicas=40, pg_max_connections=160)
    )
    assert s.web_replicas <= s.max_web_replicas < 40
    assert s.connections_at_max <= s.connection_budget
    assert any("capped" in n for n in s.notes)


def test_infeasible_budget_says_what_to_do() -> None:
    with pytest.raises(InfeasibleSizing, match="raise defaults.postgres_max_connections"):
        size_unit(
            dataclasses.replace(BASE, peak_users=2000, web_replicas=20, pg_max_connections=40)
        )


def test_pgbouncer_in_session_mode_does_not_raise_the_budget() -> None:
    base = dataclasses.replace(BASE, pg_reserved_connections=3)
    with_pooler = size_unit(dataclasses.replace(base, pgbouncer=True))
    # Session mode: one server connection per Odoo connection, plus PgBouncer's own
    # auth_query connection per instance - the budget can only shrink.
    assert with_pooler.connection_budget == size_unit(base).connection_budget - 2


@settings(max_examples=200, deadline=None)
@given(
    users=st.integers(1, 3000),
    cpu=st.sampled_from([0.5, 1, 2, 4, 8]),
    mem=st.sampled_from([1, 2, 4, 8, 16]),
    replicas=st.integers(1, 6),
    max_conn=st.integers(100, 1000),
    pgbouncer=st.booleans(),
    factor=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_sizing_invariants(
    users: int, cpu: float, mem: int, replicas: int, max_conn: int, pgbouncer: bool, factor: float
) -> None:
    inputs = dataclasses.replace(
        BASE,
        peak_users=users,
        web_cpu=cpu,
        web_memory_gib=mem,
        web_replicas=replicas,
        max_web_replicas=replicas * 3,
        pg_max_connections=max_conn,
        pgbouncer=pgbouncer,
        size_factor=factor,
        ha=replicas > 1,
    )
    try:
        s = size_unit(inputs)
    except InfeasibleSizing:
        return
    assert 1 <= s.workers <= math.floor(2 * cpu) + 1
    assert s.connections_at_max <= s.connection_budget
    assert s.max_web_replicas >= s.web_replicas
    assert s.db_maxconn >= 2
    usable = s.web.memory_limit_mib - 256
    # every worker at the soft limit, or one at the hard limit and the rest average, fits
    assert s.workers * s.limit_memory_soft <= usable * MIB
    assert s.limit_memory_soft <= s.limit_memory_hard <= 2560 * MIB
    assert s.limit_memory_hard <= max(s.limit_memory_soft, (usable - (s.workers - 1) * 325) * MIB)
    assert s.quota.cpu_limit_m >= s.web.cpu_limit_m * s.max_web_replicas
    assert s.quota.memory_limit_mib >= s.web.memory_limit_mib * s.max_web_replicas


def test_quota_covers_the_rollout_surge_at_hpa_max_and_the_helpers() -> None:
    s = size_unit(dataclasses.replace(BASE, pgbouncer=True))
    # 6 web (HPA max) + 1 surge, cron, 2 PostgreSQL with the backup sidecar, Redis with its
    # replicas (an HA tier in production: failover) and their exporters, 3 Sentinels,
    # 2 + 1 PgBouncer; Guaranteed, so requests = limits everywhere
    redis_pods = 1 + s.redis_replicas
    assert s.redis_replicas > 0 and s.redis_sentinels == 3
    raw = (
        7 * s.web.cpu_limit_m
        + s.cron.cpu_limit_m
        + 2 * (s.postgres.cpu_limit_m + 500)
        + redis_pods * (s.redis.cpu_limit_m + 100)
        + 3 * 100
        + 3 * 250
    )
    assert s.quota.cpu_request_m == s.quota.cpu_limit_m == math.ceil(raw / 100) * 100
    assert s.quota.pods == 6 + 1 + 1 + 2 + redis_pods + 3 + 3
    for helper in (s.init, s.redis_exporter, s.redis_sentinel, s.backup_sidecar, s.pgbouncer_pod):
        assert helper.cpu_request_m == helper.cpu_limit_m
        assert helper.memory_request_mib == helper.memory_limit_mib


def test_single_replica_on_a_volume_has_no_surge_but_room_for_a_hook_pod() -> None:
    single = dataclasses.replace(
        BASE, peak_users=20, ha=False, web_replicas=1, max_web_replicas=None
    )
    s = size_unit(single)
    assert (s.max_web_replicas, s.web_surge) == (1, 0)
    assert s.init.cpu_request_m < s.init.cpu_limit_m  # Burstable helpers off the HA tiers
    assert size_unit(dataclasses.replace(single, filestore_pvc=False)).web_surge == 1
    # one database-initialisation Job pod (a Sync hook before Odoo's wave, never beside a surge)
    assert s.quota.pods == 2 + 1 + 2 + 1


def test_quota_storage_is_what_the_claims_request() -> None:
    s = size_unit(BASE)
    assert s.redis_storage_gib == 2  # 512 MiB x 3, rounded up to GiB
    assert s.quota.storage_gib == 100 * 2 + 100 + 2 * 2
    assert s.quota.pvcs == 2 + 1 + 2
    outside = size_unit(dataclasses.replace(BASE, production=False, ha=False, filestore_pvc=False))
    assert outside.quota.pvcs == 1  # one PostgreSQL instance, no filestore, Redis in memory


def test_web_replicas_stay_within_the_tier_with_a_warning() -> None:
    # 55 users (the EU tenant group's prod) on 1-CPU pods of 3 workers need 4 replicas;
    # the standard tier allows 3: capped there, and the plan is told.
    s = size_unit(
        dataclasses.replace(
            BASE,
            peak_users=55,
            ha=False,
            web_replicas=1,
            max_web_replicas=3,
            web_cpu=1,
            web_memory_gib=2,
        )
    )
    assert s.web_replicas == 3 and s.max_web_replicas == 3 and s.workers == 3
    assert s.warnings and "max_web_replicas 3" in s.warnings[0]


def test_postgres_storage_and_memory_follow_the_volume() -> None:
    quiet = size_unit(BASE)
    busy = size_unit(dataclasses.replace(BASE, orders_per_day=6500, stock_moves_per_day=120_000))
    assert quiet.postgres_storage_gib == 100  # the profile is the floor
    assert busy.postgres_storage_gib > 500 and busy.postgres.memory_limit_mib > 8192
    assert busy.data_gib > quiet.data_gib and busy.wal_gib_per_day > 0
    assert any("orders" in n and "stock moves" in n for n in busy.notes)
    assert any(n.startswith("postgres storage = max(profile 100") for n in busy.notes)


def test_storage_grows_with_the_horizon_and_growth() -> None:
    one = size_unit(dataclasses.replace(BASE, orders_per_day=5000, horizon_years=1))
    five = size_unit(
        dataclasses.replace(BASE, orders_per_day=5000, horizon_years=5, growth_percent=20)
    )
    assert five.postgres_storage_gib > 5 * (one.postgres_storage_gib - 10)


def test_redis_memory_follows_sessions() -> None:
    s = size_unit(dataclasses.replace(BASE, named_users=50_000))
    # 50,000 users x 3 sessions x 4 KiB = 586 MiB, / 75 % maxmemory = 782 MiB > 512
    assert s.redis.memory_limit_mib == 782
    assert size_unit(dataclasses.replace(BASE, named_users=100)).redis.memory_limit_mib == 512


def test_redis_replicas_only_where_failover_is_rendered() -> None:
    ha = size_unit(dataclasses.replace(BASE, redis_replicas=2))
    assert ha.redis_replicas == 2 and ha.redis_sentinels == 3
    not_ha = size_unit(dataclasses.replace(BASE, redis_replicas=2, ha=False))
    vm = size_unit(dataclasses.replace(BASE, redis_replicas=2, kubernetes=False))
    assert not_ha.redis_replicas == vm.redis_replicas == 0 == not_ha.redis_sentinels

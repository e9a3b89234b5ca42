"""The connection budget against a real PostgreSQL with the rendered max_connections.

For the example deployment that needs the most connections, a cluster is started with the
``max_connections`` and ``superuser_reserved_connections`` of its rendered CloudNativePG
Cluster. Every connection sizing allows at the worst moment (max replicas + the rollout
surge pod, cron, db-init Job, tenant-owner init, each pool full) is opened as an ordinary
login role, as Odoo's are, beside the platform's superuser connections (instance manager,
PgBouncer auth). All must be admitted; then ordinary connections are opened until
PostgreSQL refuses one, which must happen exactly where the model puts the reserve.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
import pytest

from plantops.plan import Deployment
from tests.fixtures.postgres import PgCluster, running_cluster
from tests.render.conftest import Rendered

ROLE = "odoo_budget"


def _parameters(example: Rendered, dep: Deployment) -> dict[str, Any]:
    cluster = next(o for d, _p, o in example.objects if d.id == dep.id and o["kind"] == "Cluster")
    params: dict[str, Any] = cluster["spec"]["postgresql"]["parameters"]
    return params


def _as_odoo(pg: PgCluster) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"postgresql://{ROLE}@127.0.0.1:{pg.port}/postgres", autocommit=True)


def _client_backends(pg: PgCluster, role: str) -> int:
    with pg.connect() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND usename = %s",
            (role,),
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_connections_at_maximum_fit_the_rendered_max_connections(example: Rendered) -> None:
    on_kubernetes = [d for d in example.deployments if d.cluster is not None]
    dep = max(
        on_kubernetes,
        key=lambda d: d.sizing.connections_at_max + d.sizing.connections["platform"],
    )
    s = dep.sizing
    params = _parameters(example, dep)
    max_connections = int(params["max_connections"])
    superuser_reserved = int(params["superuser_reserved_connections"])
    assert s.connections_at_max <= s.connection_budget < max_connections
    settings = {
        "max_connections": str(max_connections),
        "superuser_reserved_connections": str(superuser_reserved),
    }
    with running_cluster("plantops-pg-budget-", settings) as pg, contextlib.ExitStack() as stack:
        with pg.connect() as admin:
            admin.execute(f"CREATE ROLE {ROLE} LOGIN")
        odoo = [stack.enter_context(_as_odoo(pg)) for _ in range(s.connections_at_max)]
        platform = [stack.enter_context(pg.connect()) for _ in range(s.connections["platform"])]
        assert _client_backends(pg, ROLE) == s.connections_at_max
        for c in odoo[:: max(1, len(odoo) // 10)] + platform:
            assert c.execute("SELECT 1").fetchone() == (1,)

        # What is left for ordinary roles is max_connections - superuser reserve - in use;
        # the budget kept the platform's share out of it, so there is room still.
        extra: list[psycopg.Connection[tuple[object, ...]]] = []
        with pytest.raises(psycopg.OperationalError, match="reserved"):
            for _ in range(max_connections):
                extra.append(stack.enter_context(_as_odoo(pg)))
        in_use = len(odoo) + len(platform) + len(extra)
        assert in_use == max_connections - superuser_reserved
        assert len(extra) >= s.connection_budget - s.connections_at_max
        # the reserve still admits a superuser (the operator) when ordinary slots are full
        with pg.connect() as operator:
            assert operator.execute("SELECT 1").fetchone() == (1,)

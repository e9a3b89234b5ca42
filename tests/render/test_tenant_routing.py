"""Host routing of a shared Odoo to each plant's database.

Odoo (16-18, ``odoo/service/db.py`` ``list_dbs``) lists the ``db_name`` databases only
when ``dbfilter`` is empty; with a ``dbfilter`` it lists the databases *owned by the
login role*. A tenant group's Odoo logs in as ``odoo``, which owns none (each plant's
database is owned by the plant's role), so a ``dbfilter`` there routes nowhere. Such
deployments set no ``dbfilter``: Odoo exposes exactly ``db_name`` (the tenant
databases, also the cron list), and ``dbfilter_from_header`` (OCA/server-tools) narrows
that to the ``X-Odoo-dbfilter`` regex Traefik sets per host. Deployments that log in as
the database owner keep ``dbfilter = ^%d$``.

``_odoo_databases`` transcribes Odoo's ``list_dbs`` + ``http.db_filter`` and the OCA
override; the tests feed it the rendered odoo.conf, Database owners and Traefik headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from plantops.plan import Deployment, Tenant
from plantops.render.kubernetes.traefik import DBFILTER_HEADER_ALIASES
from plantops.render.odoo_conf import DBFILTER_HEADER, HEADER_DBFILTER_MODULE
from tests.fixtures.postgres import PgCluster, pg_bindir, running_cluster
from tests.render.conftest import Rendered
from tests.render.test_tenant_ownership import (
    _as,
    _create_as_cloudnativepg,
    _rendered_plan,
    _shared_prod,
)

ODOO_TEMPLATES = ("postgres", "template0")  # list_dbs skips these (db_template default)
# odoo/service/db.py list_dbs, when dbfilter is set (or db_name empty); Odoo passes the
# templates as a psycopg2 tuple to "not in %s", psycopg 3 takes a list with "<> ALL".
LIST_DBS_SQL = (
    "select datname from pg_database where datdba=(select usesysid from pg_user where "
    "usename=current_user) and not datistemplate and datallowconn and datname <> ALL(%s) "
    "order by datname"
)


def _conf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if " = " in line or line.endswith(" ="):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _confs(example: Rendered, dep: Deployment) -> list[dict[str, str]]:
    (cm,) = [
        o
        for d, _p, o in example.objects
        if d.id == dep.id and o["kind"] == "ConfigMap" and "odoo.conf" in o.get("data", {})
    ]
    return [_conf(cm["data"]["odoo.conf"]), _conf(cm["data"]["odoo-cron.conf"])]


def _objects(example: Rendered, dep: Deployment, kind: str) -> list[dict[str, Any]]:
    return [o for d, _p, o in example.objects if d.id == dep.id and o["kind"] == kind]


def _tls_route(example: Rendered, dep: Deployment, tenant: Tenant) -> dict[str, Any]:
    (route,) = [
        o for o in _objects(example, dep, "IngressRoute") if o["metadata"]["name"] == tenant.plant
    ]
    return route


def _request_headers(example: Rendered, dep: Deployment, names: list[str]) -> dict[str, str]:
    """The request headers the route's Middlewares set (Traefik: last write wins)."""
    by_name = {o["metadata"]["name"]: o["spec"] for o in _objects(example, dep, "Middleware")}
    headers: dict[str, str] = {}
    for n in names:
        headers.update(by_name[n].get("headers", {}).get("customRequestHeaders", {}))
    return headers


def _odoo_databases(
    conf: Mapping[str, str], owned_by_login: set[str], host: str, header: str | None
) -> list[str]:
    """Odoo 17/18: ``http.db_list(force=True, host)`` with ``dbfilter_from_header`` loaded."""
    dbfilter, db_name = conf.get("dbfilter", ""), conf.get("db_name", "")
    # odoo/service/db.py list_dbs(force=True)
    if not dbfilter and db_name:
        dbs = sorted(d.strip() for d in db_name.split(","))
    else:
        dbs = sorted(owned_by_login - set(ODOO_TEMPLATES))
    # odoo/http.py db_filter
    if dbfilter:
        h = host.partition(":")[0].removeprefix("www.")
        d = h.partition(".")[0]
        pattern = re.compile(dbfilter.replace("%h", re.escape(h)).replace("%d", re.escape(d)))
        dbs = [db for db in dbs if pattern.match(db)]
    elif db_name:
        dbs = sorted({d.strip() for d in db_name.split(",")}.intersection(dbs))
    # dbfilter_from_header: only with proxy_mode and listed server-wide
    modules = conf.get("server_wide_modules", "").split(",")
    if header and conf.get("proxy_mode") == "True" and HEADER_DBFILTER_MODULE in modules:
        dbs = [db for db in dbs if re.match(header, db)]
    return dbs


def _owned_by_login(example: Rendered, dep: Deployment, conf: Mapping[str, str]) -> set[str]:
    return {
        o["spec"]["name"]
        for o in _objects(example, dep, "Database")
        if o["spec"]["owner"] == conf["db_user"]
    }


def _tenant_groups(example: Rendered) -> list[Deployment]:
    groups = [d for d in example.deployments if len(d.tenants) > 1]
    assert groups
    return groups


def test_tenant_group_odoo_conf_exposes_exactly_its_tenants(example: Rendered) -> None:
    for dep in _tenant_groups(example):
        assert dep.pattern == "shared-multitenant"
        for conf in _confs(example, dep):
            assert "dbfilter" not in conf, dep.id
            assert conf["db_name"].split(",") == [t.database for t in dep.tenants]
            assert conf["db_user"] == "odoo"
            assert conf["proxy_mode"] == "True"
            assert HEADER_DBFILTER_MODULE in conf["server_wide_modules"].split(",")
            if dep.production:
                assert conf["list_db"] == "False"
        # the login role owns no database: a dbfilter would find nothing to filter
        assert not _owned_by_login(example, dep, _confs(example, dep)[0])


def test_each_tenant_host_reaches_exactly_its_database(example: Rendered) -> None:
    for dep in _tenant_groups(example):
        conf = _confs(example, dep)[0]
        owned = _owned_by_login(example, dep, conf)
        for tenant in dep.tenants:
            route = _tls_route(example, dep, tenant)
            for r in route["spec"]["routes"]:
                names = [m["name"] for m in r["middlewares"]]
                dbfilters = [n for n in names if "-dbfilter-" in n]
                assert dbfilters == [f"{dep.unit}-dbfilter-{tenant.plant}"], r["match"]
                headers = _request_headers(example, dep, names)
                assert headers[DBFILTER_HEADER] == f"^{tenant.database}$"
                # underscore spellings a WSGI server could merge into the same key: deleted
                assert all(headers[a] == "" for a in DBFILTER_HEADER_ALIASES)
                got = _odoo_databases(conf, owned, tenant.host, headers[DBFILTER_HEADER])
                assert got == [tenant.database], (tenant.plant, r["match"])
            # without the header Odoo would not pick one (and list_db is off in production)
            assert len(_odoo_databases(conf, owned, tenant.host, None)) == len(dep.tenants)
            # the old configuration routed nowhere: dbfilter on, login owns nothing
            assert _odoo_databases({**conf, "dbfilter": "^%d$"}, owned, tenant.host, None) == []
        # one header Middleware per tenant, labelled with its plant
        tenant_mws = [
            o for o in _objects(example, dep, "Middleware") if "-dbfilter-" in o["metadata"]["name"]
        ]
        assert sorted(o["metadata"]["labels"]["plantops.io/plant"] for o in tenant_mws) == sorted(
            t.plant for t in dep.tenants
        )


def test_a_client_cannot_pick_another_tenant(example: Rendered) -> None:
    dep = _shared_prod(example)
    conf = _confs(example, dep)[0]
    owned = _owned_by_login(example, dep, conf)
    a, b = dep.tenants[:2]
    route = _tls_route(example, dep, a)
    names = [m["name"] for m in route["spec"]["routes"][-1]["middlewares"]]
    # Traefik sets the header: a client's own X-Odoo-dbfilter (any case) is replaced
    client = {"x-odoo-dbfilter": f"^{b.database}$"}
    forwarded = {k.lower(): v for k, v in client.items()}
    forwarded.update({k.lower(): v for k, v in _request_headers(example, dep, names).items()})
    assert forwarded["x-odoo-dbfilter"] == f"^{a.database}$"
    assert _odoo_databases(conf, owned, b.host, forwarded["x-odoo-dbfilter"]) == [a.database]
    # Odoo 18's X-Odoo-Database header goes through the same db_filter
    assert [d for d in [b.database] if re.match(forwarded["x-odoo-dbfilter"], d)] == []


def test_deployments_logging_in_as_the_owner_keep_host_dbfilter(example: Rendered) -> None:
    single = [d for d in example.deployments if len(d.tenants) == 1]
    assert {d.pattern for d in single} >= {
        "dedicated-namespace",
        "dedicated-cluster",
        "dedicated-environment",
    }
    for dep in single:
        (tenant,) = dep.tenants
        if dep.cluster is None:  # VM: the config files themselves
            texts = [
                example.files[f"{dep.dir}/odoo.conf"],
                example.files[f"{dep.dir}/odoo-cron.conf"],
            ]
            confs = [_conf(t) for t in texts]
            owned = {tenant.database}  # the init script creates it owned by the plant role
        else:
            confs = _confs(example, dep)
            owned = _owned_by_login(example, dep, confs[0])
        for conf in confs:
            assert conf["dbfilter"] == "^%d$", dep.id
            assert conf["db_user"] == tenant.database.replace("-", "_")
            assert HEADER_DBFILTER_MODULE not in conf["server_wide_modules"].split(",")
        assert owned == {tenant.database}
        # %d is the host's first label: the plant code, i.e. the database
        assert _odoo_databases(confs[0], owned, tenant.host, None) == [tenant.database]
        for o in _objects(example, dep, "Middleware"):
            assert "-dbfilter-" not in o["metadata"]["name"]
            assert DBFILTER_HEADER not in o["spec"].get("headers", {}).get(
                "customRequestHeaders", {}
            )
        for o in _objects(example, dep, "IngressRoute"):
            for r in o["spec"]["routes"]:
                assert not any("-dbfilter-" in m["name"] for m in r["middlewares"])
    for dep, _path, compose in example.compose:
        traefik = example.files[f"{dep.dir}/traefik/dynamic.yaml"]
        assert DBFILTER_HEADER not in traefik and "dbfilter-" not in traefik
        assert compose


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with running_cluster("plantops-routing-") as cluster:
        yield cluster


def _have_postgres() -> bool:
    try:
        pg_bindir()
    except RuntimeError:
        return False
    return True


@pytest.mark.skipif(not _have_postgres(), reason="PostgreSQL server binaries not installed")
def test_odoo_database_listing_on_real_postgres(example: Rendered, pg: PgCluster) -> None:
    """Odoo's own listing query, run as each login role against the rendered roles."""
    roles, databases, _command = _rendered_plan(example)
    _create_as_cloudnativepg(pg, roles, databases)
    with _as(pg, "odoo", "postgres") as conn:
        assert conn.execute(LIST_DBS_SQL, (list(ODOO_TEMPLATES),)).fetchall() == []
    for d in databases:
        with _as(pg, d["owner"], "postgres") as conn:
            assert conn.execute(LIST_DBS_SQL, (list(ODOO_TEMPLATES),)).fetchall() == [(d["name"],)]

"""IngressRoutes and the VM file provider are one route model, translated twice.

So what ``test_traefik_real.py`` proves of the VM configuration on a real Traefik holds
for the IngressRoutes: the same rule strings, priorities, middleware chains (names and
specs) and backend ports, read back out of both rendered forms.
"""

from __future__ import annotations

from typing import Any

import yaml

from plantops.plan import Deployment
from plantops.render.compose.stack import TRAEFIK_SERVICES, render_traefik_dynamic
from plantops.render.kubernetes.common import GEVENT_PORT, HTTP_PORT
from plantops.render.kubernetes.traefik import (
    PRIORITY,
    render_ingress_routes,
    render_middlewares,
    route_model,
)
from tests.render.conftest import Rendered
from tests.render.test_security import route_matches

Row = tuple[str, str, str, int, tuple[str, ...], int, bool]
"""plant, entry point, rule, priority, middleware chain, Odoo port, TLS."""


def _short(dep: Deployment, name: str) -> str:
    prefix = f"{dep.unit}-"
    assert name.startswith(prefix), name
    return name.removeprefix(prefix)


def _from_ingress_routes(dep: Deployment, objs: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for o in objs:
        assert o["kind"] == "IngressRoute"
        spec = o["spec"]
        (entry_point,) = spec["entryPoints"]
        for r in spec["routes"]:
            ((svc),) = r["services"]
            rows.append(
                (
                    o["metadata"]["labels"]["plantops.io/plant"],
                    entry_point,
                    r["match"],
                    r["priority"],
                    tuple(_short(dep, m["name"]) for m in r["middlewares"]),
                    svc["port"],
                    "tls" in spec,
                )
            )
    return sorted(rows)


def _from_file_provider(dep: Deployment, doc: dict[str, Any]) -> list[Row]:
    port_of = {svc: port for port, svc in TRAEFIK_SERVICES.items()}
    rows = []
    for router_name, r in doc["http"]["routers"].items():
        (entry_point,) = r["entryPoints"]
        plant = next(t.plant for t in dep.tenants if router_name.startswith(f"{t.plant}-"))
        rows.append(
            (
                plant,
                entry_point,
                r["rule"],
                r["priority"],
                tuple(r["middlewares"]),
                port_of[r["service"]],
                "tls" in r,
            )
        )
    return sorted(rows)


def _from_model(dep: Deployment, example: Rendered) -> list[Row]:
    return sorted(
        (r.plant, r.entry_point, r.rule, r.priority, r.middlewares, r.port, r.tls)
        for r in route_model(dep, example.ctx).routes
    )


def test_ingress_routes_and_file_provider_are_the_same_model(example: Rendered) -> None:
    vm_seen = k8s_seen = 0
    for dep in example.deployments:
        model = _from_model(dep, example)
        if dep.cluster is None:
            vm_seen += 1
            # What the VM directory holds, and what the IngressRoutes would be for it.
            on_disk = yaml.safe_load(example.files[f"{dep.dir}/traefik/dynamic.yaml"])
            k8s = _from_ingress_routes(dep, render_ingress_routes(dep, example.ctx))
            vm = _from_file_provider(dep, on_disk)
        else:
            k8s_seen += 1
            written = [o for d, _, o in example.objects if d is dep and o["kind"] == "IngressRoute"]
            k8s = _from_ingress_routes(dep, written)
            vm = _from_file_provider(dep, render_traefik_dynamic(dep, example.ctx))
        assert k8s == vm == model, dep.id
    assert vm_seen and k8s_seen


def test_middlewares_are_the_same_specs(example: Rendered) -> None:
    for dep in example.deployments:
        k8s = {
            _short(dep, o["metadata"]["name"]): o["spec"]
            for o in render_middlewares(dep, example.ctx)
        }
        vm = render_traefik_dynamic(dep, example.ctx)["http"]["middlewares"]
        model = {m.name: dict(m.spec) for m in route_model(dep, example.ctx).middlewares}
        assert k8s == vm == model, dep.id
        used = {n for r in route_model(dep, example.ctx).routes for n in r.middlewares}
        assert used == set(model), dep.id  # none missing, none unused


def test_every_route_has_an_explicit_priority_in_model_order(example: Rendered) -> None:
    """Traefik's default priority is the rule's length (GetRulePriority): never rely on it."""
    for dep in example.deployments:
        for r in route_model(dep, example.ctx).routes:
            assert r.priority == PRIORITY[r.what], (dep.id, r.what)
            assert r.port == (GEVENT_PORT if r.what == "websocket" else HTTP_PORT)
            assert r.middlewares[0] == ("secure-headers" if r.tls else "redirect-https")


def _odoo_conf(dep: Deployment, example: Rendered) -> str:
    if dep.cluster is None:
        return example.files[f"{dep.dir}/odoo.conf"]
    (text,) = {
        o["data"]["odoo.conf"]
        for d, _, o in example.objects
        if d is dep and o["kind"] == "ConfigMap" and "odoo.conf" in o.get("data", {})
    }
    return text


def test_jsonrpc_is_an_admin_path_wherever_odoo_lists_databases(example: Rendered) -> None:
    """/jsonrpc carries the db service in its body: admin-only where list_db is on."""
    seen = set()
    for dep in example.deployments:
        list_db = "\nlist_db = True\n" in _odoo_conf(dep, example)
        seen.add(list_db)
        for t in dep.tenants:
            for path in ("/jsonrpc", "/xmlrpc/db", "/xmlrpc/2/db", "/web/database/drop"):
                hits = [
                    r
                    for r in route_model(dep, example.ctx).of_plant(t.plant, tls=True)
                    if route_matches(r.rule, t.host, path)
                ]
                admin_only = list_db or path != "/jsonrpc"
                if dep.production and admin_only:
                    assert not hits, (dep.id, path)
                    continue
                best = max(hits, key=lambda r: r.priority)
                assert ("admin-allowlist" in best.middlewares) is admin_only, (dep.id, path)
                assert "rate-limit" in best.middlewares, (dep.id, path)
            assert not any(
                route_matches(r.rule, t.host, "/xmlrpc%2Fdb")
                for r in route_model(dep, example.ctx).routes
                if r.tls
            ), dep.id
    assert seen == {True, False}

"""Traefik v3: one route model, translated into IngressRoutes (Kubernetes) and the file
provider's routers (VM plants, ``compose.stack.render_traefik_dynamic``).

:func:`route_model` is the single source: every rule string, priority, middleware chain
and backend port is decided there, as plain data; the two renderers only translate it
(names, object envelopes). A test proves both outputs are the same model, so the test
that runs the VM configuration through a real Traefik covers the IngressRoutes too.

Routing per host, highest priority first:

* admin (``/web/database``, the XML-RPC ``db`` service, and ``/jsonrpc`` wherever
  ``list_db`` is on): outside production only, behind an ``ipAllowList`` of the fleet's
  admin networks; in production no route matches them at all, so Traefik answers 404;
* login and RPC (``/web/login``, ``/web/session/authenticate``, ``/web/reset_password``,
  ``/xmlrpc``, ``/jsonrpc``): rate limited;
* ``/websocket``: to the gevent port 8072;
* everything else: to 8069, compressed.

Why ``/jsonrpc`` moves with ``list_db``: ``/xmlrpc/<service>`` carries the service in the
path, but ``/jsonrpc`` carries it in the JSON body (``odoo/addons/base/controllers/rpc.py``
``RPC.jsonrpc`` -> ``odoo.http.dispatch_rpc(service, ...)``), which Traefik cannot match.
Its ``db`` service (``odoo/service/db.py`` ``dispatch``) creates, duplicates, drops, dumps
and restores databases behind ``check_db_management_enabled``, i.e. only while
``list_db`` is on; so where it is on, the whole of ``/jsonrpc`` is an admin path.
Elsewhere Odoo refuses those methods itself and ``/jsonrpc`` stays public, rate limited.

No route serves a path with an encoded slash (``%2F``): Traefik since v3.4.1 matches
rules against a routing path that keeps reserved characters encoded
(``pkg/muxer/http/mux.go`` ``withRoutingPath``) and forwards the raw path, while Odoo's
servers decode it (``werkzeug.serving.WSGIRequestHandler.make_environ``:
``unquote(path)``; gevent's ``pywsgi`` alike), so ``/xmlrpc%2Fdb`` would pass every
``PathPrefix`` guard and reach the ``db`` service. Traefik 3.3 matched the decoded path,
where the guard never fires and is not needed.

``/metrics`` (scraped in-cluster by Prometheus) is never routed. Every route starts with
the secure-headers Middleware (HSTS), so refusals (403, 429) carry it too; plain HTTP
only redirects to HTTPS.

A tenant group's Odoo has no ``dbfilter`` (see ``odoo_conf.routes_by_header``): every
route of a plant's host also carries that plant's ``dbfilter-<plant>`` Middleware, which
sets ``X-Odoo-dbfilter: ^<database>$`` for ``dbfilter_from_header``. Traefik *sets* the
header, replacing whatever the client sent, and deletes the underscore spellings, which
a WSGI server may merge into the same ``HTTP_X_ODOO_DBFILTER`` key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import GEVENT_PORT, HTTP_PORT, WAVE_INGRESS, name, wave
from plantops.render.kubernetes.odoo import web_service
from plantops.render.odoo_conf import DBFILTER_HEADER, routes_by_header, tenant_dbfilter

if TYPE_CHECKING:
    from plantops.plan import Deployment, Tenant
    from plantops.render.context import RenderContext

# odoo/addons/web/controllers/database.py Database: /web/database/{selector,manager,create,
# duplicate,drop,backup,restore,change_password,list}; change_password checks only the
# master password, not list_db, so this prefix is admin-only whatever list_db says.
DATABASE_MANAGER = "/web/database"
# odoo/addons/base/controllers/rpc.py RPC.xmlrpc_1 / xmlrpc_2: /xmlrpc/<service> and
# /xmlrpc/2/<service>, the service named in the path.
XMLRPC_DB = ("/xmlrpc/db", "/xmlrpc/2/db")
# RPC.jsonrpc: the service is in the body (params.service).
JSONRPC = "/jsonrpc"
ADMIN_PATHS = (DATABASE_MANAGER, *XMLRPC_DB)
"""Admin whatever ``list_db`` says; :func:`admin_paths` adds ``/jsonrpc`` where it is on."""
NEVER_ROUTED = ("/metrics",)
# Password checks an anonymous client can repeat: the login form, the JSON login API
# clients use (odoo/addons/web/controllers/session.py Session.authenticate), password
# reset, and the RPC entry points (common.authenticate/login, object with a password).
RATE_LIMITED_PATHS = (
    "/web/login",
    "/web/session/authenticate",
    "/web/reset_password",
    "/xmlrpc",
    JSONRPC,
)
WEBSOCKET = "/websocket"
# Go regexp on Traefik's routing path, where %2F stays encoded (see the module docstring).
NO_ENCODED_SLASH = "!PathRegexp(`(?i)%2f`)"
HSTS_SECONDS = 31536000
CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
]
# Nobody: what an allow-list holds when the fleet names no admin networks.
NOBODY = ["127.0.0.1/32"]
# Other spellings of X-Odoo-dbfilter that CGI/WSGI naming (upper case, "-" -> "_") maps to
# the same environ key; servers that keep them (Werkzeug before 2.3, for one) join the
# values with commas, which would let a client append an alternative to the regex.
DBFILTER_HEADER_ALIASES = ("X-Odoo_dbfilter", "X_Odoo-dbfilter", "X_Odoo_dbfilter")

# Priorities (Traefik picks the highest matching router; without one it uses the rule's
# length, pkg/muxer/http/mux.go GetRulePriority, which would let a long ordinary rule win).
PRIORITY = {"admin": 400, "login": 300, "websocket": 200, "web": 100, "http": 10}


@dataclass(frozen=True)
class Middleware:
    """One Traefik middleware: short name (the renderers prefix it) and its spec."""

    name: str
    spec: Mapping[str, Any]
    plant: str | None = None
    """The plant it belongs to, for a tenant's ``dbfilter`` middleware."""


@dataclass(frozen=True)
class Route:
    """One router: what it matches, in which order, through which middlewares, to where."""

    plant: str
    what: str
    """admin | login | websocket | web | http (the plain-HTTP redirect)."""
    entry_point: str
    rule: str
    priority: int
    middlewares: tuple[str, ...]
    """Short middleware names, outermost first."""
    port: int
    tls: bool


@dataclass(frozen=True)
class RouteModel:
    middlewares: tuple[Middleware, ...]
    routes: tuple[Route, ...]

    def of_plant(self, plant: str, *, tls: bool) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.plant == plant and r.tls is tls)


def mw(dep: Deployment, what: str) -> str:
    return name(dep, what)


def tls_option(dep: Deployment) -> str:
    return name(dep, "tls")


def cert_secret(tenant: Tenant) -> str:
    return f"{tenant.plant}-tls"


def dbfilter_middleware(tenant: Tenant) -> str:
    return f"dbfilter-{tenant.plant}"


def dbfilter_middleware_spec(tenant: Tenant) -> dict[str, Any]:
    """Request header naming exactly the tenant's database; a client's value never survives."""
    headers = {DBFILTER_HEADER: tenant_dbfilter(tenant.database)}
    headers.update({alias: "" for alias in DBFILTER_HEADER_ALIASES})  # "" deletes
    return {"headers": {"customRequestHeaders": headers}}


def admin_routable(dep: Deployment) -> bool:
    return not dep.production


def lists_databases(dep: Deployment) -> bool:
    """Odoo's ``list_db`` for this deployment (``odoo_conf.render_odoo_conf`` writes it)."""
    return dep.environment.list_db and not dep.production


def admin_paths(dep: Deployment) -> tuple[str, ...]:
    """Paths only the admin networks may reach (and nobody in production)."""
    return (*ADMIN_PATHS, JSONRPC) if lists_databases(dep) else ADMIN_PATHS


def blocked_paths(dep: Deployment) -> tuple[str, ...]:
    """Paths no ordinary route may serve (admin paths have their own guarded route)."""
    return (*NEVER_ROUTED, *admin_paths(dep))


def _any_prefix(paths: tuple[str, ...]) -> str:
    return "(" + " || ".join(f"PathPrefix(`{p}`)" for p in paths) + ")"


def _none_of(paths: tuple[str, ...]) -> str:
    return " && ".join(f"!PathPrefix(`{p}`)" for p in paths)


def middlewares(dep: Deployment, ctx: RenderContext) -> tuple[Middleware, ...]:
    ing = ctx.platform.ingress
    out: list[Middleware] = []
    if admin_routable(dep):
        # No ipStrategy: Traefik then judges the TCP peer (pkg/config/dynamic/middlewares.go
        # IPStrategy.Get -> RemoteAddrStrategy), which a client cannot forge; the
        # X-Forwarded-For of an untrusted peer is dropped before any middleware runs
        # (pkg/middlewares/forwardedheaders XForwarded.ServeHTTP).
        cidrs = list(ctx.defaults.admin_cidrs) or NOBODY
        out.append(Middleware("admin-allowlist", {"ipAllowList": {"sourceRange": cidrs}}))
    out += [
        Middleware("compress", {"compress": {"excludedContentTypes": ["text/event-stream"]}}),
        Middleware(
            "rate-limit",
            {
                # Per client address (default sourceCriterion), in memory, per router.
                "rateLimit": {
                    "average": ing.login_rate_average,
                    "burst": ing.login_rate_burst,
                    "period": "1s",
                }
            },
        ),
        Middleware("redirect-https", {"redirectScheme": {"permanent": True, "scheme": "https"}}),
        Middleware(
            "secure-headers",
            {
                "headers": {
                    "contentTypeNosniff": True,
                    "customFrameOptionsValue": "SAMEORIGIN",
                    "customRequestHeaders": {"X-Forwarded-Proto": "https"},
                    "customResponseHeaders": {"Server": "", "X-Powered-By": ""},
                    "forceSTSHeader": True,
                    "permissionsPolicy": "camera=(), geolocation=(), microphone=()",
                    "referrerPolicy": "strict-origin-when-cross-origin",
                    "stsIncludeSubdomains": True,
                    "stsSeconds": HSTS_SECONDS,
                }
            },
        ),
    ]
    if routes_by_header(dep):
        out += [
            Middleware(dbfilter_middleware(t), dbfilter_middleware_spec(t), t.plant)
            for t in dep.tenants
        ]
    return tuple(out)


def _host_routes(dep: Deployment, ctx: RenderContext, tenant: Tenant) -> list[Route]:
    ing = ctx.platform.ingress
    host = f"Host(`{tenant.host}`)"
    ordinary = _none_of(blocked_paths(dep))
    login = tuple(p for p in RATE_LIMITED_PATHS if p not in admin_paths(dep))
    tail = (dbfilter_middleware(tenant),) if routes_by_header(dep) else ()
    # (what, rule, middlewares, port)
    wanted: list[tuple[str, str, tuple[str, ...], int]] = []
    if admin_routable(dep):
        wanted.append(
            (
                "admin",
                f"{host} && {_any_prefix(admin_paths(dep))} && {NO_ENCODED_SLASH}",
                ("secure-headers", "admin-allowlist", "rate-limit"),
                HTTP_PORT,
            )
        )
    wanted += [
        (
            "login",
            f"{host} && {_any_prefix(login)} && {ordinary} && {NO_ENCODED_SLASH}",
            ("secure-headers", "rate-limit"),
            HTTP_PORT,
        ),
        (
            "websocket",
            f"{host} && PathPrefix(`{WEBSOCKET}`) && {NO_ENCODED_SLASH}",
            ("secure-headers",),
            GEVENT_PORT,
        ),
        (
            "web",
            f"{host} && {ordinary} && {NO_ENCODED_SLASH}",
            ("secure-headers", "compress"),
            HTTP_PORT,
        ),
    ]
    routes = [
        Route(
            tenant.plant,
            what,
            ing.entry_point,
            rule,
            PRIORITY[what],
            (*chain, *tail),
            port,
            tls=True,
        )
        for what, rule, chain, port in wanted
    ]
    routes.append(
        Route(
            tenant.plant,
            "http",
            ing.http_entry_point,
            host,
            PRIORITY["http"],
            ("redirect-https",),
            HTTP_PORT,
            tls=False,
        )
    )
    return routes


def route_model(dep: Deployment, ctx: RenderContext) -> RouteModel:
    """Every middleware and router of a deployment's ingress, for both renderers."""
    routes = [r for t in dep.tenants for r in _host_routes(dep, ctx, t)]
    return RouteModel(middlewares(dep, ctx), tuple(routes))


def tls_option_spec() -> dict[str, Any]:
    return {
        "cipherSuites": CIPHER_SUITES,
        "curvePreferences": ["X25519", "CurveP256"],
        "minVersion": "VersionTLS12",
        "sniStrict": True,
    }


def render_middlewares(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    return [
        k8s_object(
            dep,
            "traefik.io/v1alpha1",
            "Middleware",
            mw(dep, m.name),
            "ingress",
            labels={"plantops.io/plant": m.plant} if m.plant else None,
            annotations=wave(WAVE_INGRESS),
            body={"spec": dict(m.spec)},
        )
        for m in route_model(dep, ctx).middlewares
    ]


def render_tls_option(dep: Deployment) -> dict[str, Any]:
    return k8s_object(
        dep,
        "traefik.io/v1alpha1",
        "TLSOption",
        tls_option(dep),
        "ingress",
        annotations=wave(WAVE_INGRESS),
        body={"spec": tls_option_spec()},
    )


def _k8s_route(dep: Deployment, r: Route) -> dict[str, Any]:
    return {
        "kind": "Rule",
        "match": r.rule,
        "middlewares": [{"name": mw(dep, n)} for n in r.middlewares],
        "priority": r.priority,
        "services": [{"kind": "Service", "name": web_service(dep), "port": r.port}],
    }


def render_ingress_routes(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    model = route_model(dep, ctx)
    objs = []
    for t in dep.tenants:
        for tls in (True, False):
            routes = model.of_plant(t.plant, tls=tls)
            spec: dict[str, Any] = {
                "entryPoints": sorted({r.entry_point for r in routes}),
                "routes": [_k8s_route(dep, r) for r in routes],
            }
            if tls:
                spec["tls"] = {
                    "options": {"name": tls_option(dep), "namespace": dep.namespace},
                    "secretName": cert_secret(t),
                }
            objs.append(
                k8s_object(
                    dep,
                    "traefik.io/v1alpha1",
                    "IngressRoute",
                    t.plant if tls else f"{t.plant}-http",
                    "ingress",
                    labels={"plantops.io/plant": t.plant},
                    annotations=wave(WAVE_INGRESS),
                    body={"spec": spec},
                )
            )
    return objs


def render_certificates(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    issuer = ctx.platform.ingress.cluster_issuer
    return [
        k8s_object(
            dep,
            "cert-manager.io/v1",
            "Certificate",
            t.plant,
            "ingress",
            labels={"plantops.io/plant": t.plant},
            annotations=wave(WAVE_INGRESS),
            body={
                "spec": {
                    "dnsNames": [t.host],
                    "issuerRef": {
                        "group": "cert-manager.io",
                        "kind": "ClusterIssuer",
                        "name": issuer,
                    },
                    "privateKey": {"algorithm": "ECDSA", "rotationPolicy": "Always", "size": 256},
                    "secretName": cert_secret(t),
                }
            },
        )
        for t in dep.tenants
    ]

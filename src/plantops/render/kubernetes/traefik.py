"""Traefik v3: IngressRoutes per host, hardening Middlewares and a TLSOption.

Routing per host, highest priority first:

* admin paths (``/web/database``, the XML-RPC ``db`` service): outside production
  only, behind an ``ipAllowList`` of the fleet's admin networks; in production no
  route matches them at all, so Traefik answers 404;
* login and RPC (``/web/login``, ``/xmlrpc``, ``/jsonrpc``): rate limited;
* ``/websocket``: to the gevent port 8072;
* everything else: to 8069, compressed.

``/metrics`` (scraped in-cluster by Prometheus) is never routed. Every route carries
the secure-headers Middleware (HSTS); plain HTTP only redirects to HTTPS.

A tenant group's Odoo has no ``dbfilter`` (see ``odoo_conf.routes_by_header``): every
route of a plant's host also carries that plant's ``dbfilter-<plant>`` Middleware, which
sets ``X-Odoo-dbfilter: ^<database>$`` for ``dbfilter_from_header``. Traefik *sets* the
header, replacing whatever the client sent, and deletes the underscore spellings, which
a WSGI server may merge into the same ``HTTP_X_ODOO_DBFILTER`` key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import GEVENT_PORT, HTTP_PORT, WAVE_INGRESS, name, wave
from plantops.render.kubernetes.odoo import web_service
from plantops.render.odoo_conf import DBFILTER_HEADER, routes_by_header, tenant_dbfilter

if TYPE_CHECKING:
    from plantops.plan import Deployment, Tenant
    from plantops.render.context import RenderContext

ADMIN_PATHS = ("/web/database", "/xmlrpc/db", "/xmlrpc/2/db")
NEVER_ROUTED = ("/metrics",)
RATE_LIMITED_PATHS = ("/web/login", "/web/reset_password", "/xmlrpc", "/jsonrpc")
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


def blocked_paths(dep: Deployment) -> tuple[str, ...]:
    """Paths no ordinary route may serve (admin paths have their own guarded route)."""
    return (*NEVER_ROUTED, *ADMIN_PATHS)


def _any_prefix(paths: tuple[str, ...]) -> str:
    return "(" + " || ".join(f"PathPrefix(`{p}`)" for p in paths) + ")"


def _none_of(paths: tuple[str, ...]) -> str:
    return " && ".join(f"!PathPrefix(`{p}`)" for p in paths)


def middleware_specs(dep: Deployment, ctx: RenderContext) -> list[tuple[str, dict[str, Any]]]:
    """(short name, Traefik middleware spec): shared by the CRDs and the VM file provider."""
    ing = ctx.platform.ingress
    specs: list[tuple[str, dict[str, Any]]] = []
    if admin_routable(dep):
        cidrs = list(ctx.defaults.admin_cidrs) or NOBODY
        specs.append(("admin-allowlist", {"ipAllowList": {"sourceRange": cidrs}}))
    specs += [
        ("compress", {"compress": {"excludedContentTypes": ["text/event-stream"]}}),
        (
            "rate-limit",
            {
                "rateLimit": {
                    "average": ing.login_rate_average,
                    "burst": ing.login_rate_burst,
                    "period": "1s",
                }
            },
        ),
        ("redirect-https", {"redirectScheme": {"permanent": True, "scheme": "https"}}),
        (
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
        specs += [(dbfilter_middleware(t), dbfilter_middleware_spec(t)) for t in dep.tenants]
    return specs


def tls_option_spec() -> dict[str, Any]:
    return {
        "cipherSuites": CIPHER_SUITES,
        "curvePreferences": ["X25519", "CurveP256"],
        "minVersion": "VersionTLS12",
        "sniStrict": True,
    }


def render_middlewares(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    plant_of = {dbfilter_middleware(t): t.plant for t in dep.tenants}
    return [
        k8s_object(
            dep,
            "traefik.io/v1alpha1",
            "Middleware",
            mw(dep, what),
            "ingress",
            labels={"plantops.io/plant": plant_of[what]} if what in plant_of else None,
            annotations=wave(WAVE_INGRESS),
            body={"spec": spec},
        )
        for what, spec in middleware_specs(dep, ctx)
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


def route_specs(dep: Deployment, tenant: Tenant) -> list[dict[str, Any]]:
    """Routes of one host: match, priority, middleware short names and the Odoo port."""
    host = f"Host(`{tenant.host}`)"
    ordinary = _none_of(blocked_paths(dep))
    out: list[dict[str, Any]] = []
    if admin_routable(dep):
        out.append(
            {
                "match": f"{host} && {_any_prefix(ADMIN_PATHS)}",
                "middlewares": ["admin-allowlist", "rate-limit", "secure-headers"],
                "port": HTTP_PORT,
                "priority": 400,
                "what": "admin",
            }
        )
    out += [
        {
            "match": f"{host} && {_any_prefix(RATE_LIMITED_PATHS)} && {ordinary}",
            "middlewares": ["rate-limit", "secure-headers"],
            "port": HTTP_PORT,
            "priority": 300,
            "what": "login",
        },
        {
            "match": f"{host} && PathPrefix(`/websocket`)",
            "middlewares": ["secure-headers"],
            "port": GEVENT_PORT,
            "priority": 200,
            "what": "websocket",
        },
        {
            "match": f"{host} && {ordinary}",
            "middlewares": ["secure-headers", "compress"],
            "port": HTTP_PORT,
            "priority": 100,
            "what": "web",
        },
    ]
    if routes_by_header(dep):
        for r in out:
            r["middlewares"].append(dbfilter_middleware(tenant))
    return out


def _service(dep: Deployment, port: int) -> list[dict[str, Any]]:
    return [{"kind": "Service", "name": web_service(dep), "port": port}]


def _refs(dep: Deployment, *names: str) -> list[dict[str, str]]:
    return [{"name": mw(dep, n)} for n in names]


def routes(dep: Deployment, tenant: Tenant) -> list[dict[str, Any]]:
    return [
        {
            "kind": "Rule",
            "match": r["match"],
            "middlewares": _refs(dep, *r["middlewares"]),
            "priority": r["priority"],
            "services": _service(dep, r["port"]),
        }
        for r in route_specs(dep, tenant)
    ]


def render_ingress_routes(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    ing = ctx.platform.ingress
    objs = []
    for t in dep.tenants:
        objs.append(
            k8s_object(
                dep,
                "traefik.io/v1alpha1",
                "IngressRoute",
                t.plant,
                "ingress",
                labels={"plantops.io/plant": t.plant},
                annotations=wave(WAVE_INGRESS),
                body={
                    "spec": {
                        "entryPoints": [ing.entry_point],
                        "routes": routes(dep, t),
                        "tls": {
                            "options": {"name": tls_option(dep), "namespace": dep.namespace},
                            "secretName": cert_secret(t),
                        },
                    }
                },
            )
        )
        objs.append(
            k8s_object(
                dep,
                "traefik.io/v1alpha1",
                "IngressRoute",
                f"{t.plant}-http",
                "ingress",
                labels={"plantops.io/plant": t.plant},
                annotations=wave(WAVE_INGRESS),
                body={
                    "spec": {
                        "entryPoints": [ing.http_entry_point],
                        "routes": [
                            {
                                "kind": "Rule",
                                "match": f"Host(`{t.host}`)",
                                "middlewares": _refs(dep, "redirect-https"),
                                "services": _service(dep, HTTP_PORT),
                            }
                        ],
                    }
                },
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

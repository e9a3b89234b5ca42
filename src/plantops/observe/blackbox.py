"""blackbox_exporter at scale: the module configuration that reproduces the prober's
unauthenticated checks, and one Prometheus Operator ``Probe`` per deployment and module.

Modules (prometheus/blackbox_exporter CONFIGURATION.md, ``http_probe``):

* ``odoo_health``: ``GET /web/health`` -> 200 with ``"status": "pass"``
  (odoo/addons/web/controllers/home.py ``Home.health``);
* ``odoo_login``: ``GET /web/login`` -> 200 (no redirect: a redirect means no database
  matched the host) carrying Odoo's CSRF token shape (odoo/http.py ``Request.csrf_token``);
* ``odoo_version_<series>``: the JSON-RPC ``/web/webclient/version_info`` call answering
  the expected ``server_serie`` (odoo/service/common.py ``exp_version``; Odoo writes JSON
  with ``json.dumps``' default ``": "`` separator, odoo/http.py ``make_json_response``);
* ``odoo_dbmanager_blocked``: ``/web/database/manager`` -> 403 or 404 through the ingress.

The business check needs a password and stays with ``plantops probe run``.
Each Probe relabels its targets' host to ``plantops_plant`` (hosts are
``<plant>.<domain>`` or ``<plant>.<env>.<domain>``, plan.deployments ``_host``), so a
tenant group's one Probe per module still names the plant: the Prometheus Operator
appends ``staticConfig.relabelingConfigs`` after its own ``__address__ ->
__param_target`` rule (pkg/prometheus/promcfg.go ``generateProbeConfig``). Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import name
from plantops.render.kubernetes.monitoring import PLANT_LABEL, prober_url

if TYPE_CHECKING:
    from collections.abc import Iterable

    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

JSONRPC_CALL = '{"jsonrpc": "2.0", "method": "call", "params": {}, "id": 1}'
CSRF_REGEXP = 'name="csrf_token" value="[0-9a-f]{40}o[0-9]*"'
INTERVAL = "60s"


def version_module(series: str) -> str:
    return f"odoo_version_{series.replace('.', '_')}"


def _http(timeout: str, http: dict[str, Any]) -> dict[str, Any]:
    return {
        "prober": "http",
        "timeout": timeout,
        "http": {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": True, **http},
    }


def blackbox_modules(series: Iterable[str], timeout: str = "10s") -> dict[str, Any]:
    modules: dict[str, Any] = {
        "odoo_health": _http(
            timeout,
            {
                "method": "GET",
                "valid_status_codes": [200],
                "follow_redirects": False,
                "fail_if_body_not_matches_regexp": ['"status":\\s*"pass"'],
            },
        ),
        "odoo_login": _http(
            timeout,
            {
                "method": "GET",
                "valid_status_codes": [200],
                "follow_redirects": False,
                "fail_if_body_not_matches_regexp": [CSRF_REGEXP],
            },
        ),
        "odoo_dbmanager_blocked": _http(
            timeout,
            {"method": "GET", "valid_status_codes": [403, 404], "follow_redirects": False},
        ),
    }
    for s in sorted(set(series)):
        modules[version_module(s)] = _http(
            timeout,
            {
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": JSONRPC_CALL,
                "valid_status_codes": [200],
                "follow_redirects": False,
                "fail_if_body_not_matches_regexp": [
                    '"server_serie":\\s*"' + s.replace(".", "\\.") + '"'
                ],
            },
        )
    return {"modules": modules}


def probe_paths(dep: Deployment) -> dict[str, str]:
    """module -> path probed on every plant host of the deployment."""
    return {
        "odoo_health": "/web/health",
        "odoo_login": "/web/login",
        version_module(dep.series): "/web/webclient/version_info",
        "odoo_dbmanager_blocked": "/web/database/manager",
    }


def render_blackbox_probes(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    objs = []
    for module, path in probe_paths(dep).items():
        check = module.removeprefix("odoo_").split("_")[0]
        objs.append(
            k8s_object(
                dep,
                "monitoring.coreos.com/v1",
                "Probe",
                name(dep, f"synthetic-{check}"),
                "web",
                body={
                    "spec": {
                        "interval": INTERVAL,
                        "module": module,
                        "prober": {"url": prober_url(ctx)},
                        "targets": {
                            "staticConfig": {
                                "labels": {"plantops_check": check},
                                "static": sorted(f"https://{t.host}{path}" for t in dep.tenants),
                                "relabelingConfigs": [
                                    {
                                        "sourceLabels": ["__param_target"],
                                        "regex": "https://([^./]+)\\..*",
                                        "targetLabel": PLANT_LABEL,
                                        "replacement": "$1",
                                        "action": "replace",
                                    }
                                ],
                            }
                        },
                    }
                },
            )
        )
    return objs


__all__ = ["blackbox_modules", "probe_paths", "render_blackbox_probes", "version_module"]

"""All files of one deployment, in apply order, plus the fleet-wide Argo CD projects.

Apply order (and Argo CD sync waves): namespace, quota, identities, secrets, config and
network policy → data services (filestore, PostgreSQL, Redis) → Odoo → ingress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantops.render.argocd import application_name, render_application, render_projects
from plantops.render.compose import render_vm_files
from plantops.render.core import RenderedFile, dump_json, dump_yaml, object_file
from plantops.render.kubernetes.cloudnativepg import render_cloudnativepg
from plantops.render.kubernetes.config import render_odoo_configmap
from plantops.render.kubernetes.externalsecrets import render_external_secrets
from plantops.render.kubernetes.monitoring import render_monitors, render_prometheus_rule
from plantops.render.kubernetes.namespace import (
    render_limit_range,
    render_namespace,
    render_resource_quota,
)
from plantops.render.kubernetes.networkpolicies import render_network_policies
from plantops.render.kubernetes.odoo import (
    render_odoo_cron,
    render_odoo_hpa,
    render_odoo_pdb,
    render_odoo_service,
    render_odoo_web,
)
from plantops.render.kubernetes.redis import render_redis
from plantops.render.kubernetes.serviceaccount import render_service_accounts
from plantops.render.kubernetes.storage import render_filestore
from plantops.render.kubernetes.traefik import (
    render_certificates,
    render_ingress_routes,
    render_middlewares,
    render_tls_option,
)
from plantops.render.odoo_conf import render_odoo_conf

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

ARGOCD_DIR = "argocd"


def render_kubernetes_objects(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """Kubernetes objects of a deployment, in apply order."""
    return [
        render_namespace(dep),
        render_resource_quota(dep),
        render_limit_range(dep),
        *render_service_accounts(dep),
        *render_external_secrets(dep, ctx),
        render_odoo_configmap(dep),
        *render_network_policies(dep, ctx),
        *render_filestore(dep, ctx),
        *render_cloudnativepg(dep, ctx),
        *render_redis(dep, ctx),
        render_odoo_service(dep),
        render_odoo_web(dep, ctx),
        render_odoo_cron(dep, ctx),
        *render_odoo_pdb(dep),
        *render_odoo_hpa(dep),
        *render_monitors(dep),
        render_prometheus_rule(dep),
        *render_middlewares(dep, ctx),
        render_tls_option(dep),
        *render_certificates(dep, ctx),
        *render_ingress_routes(dep, ctx),
    ]


@dataclass(frozen=True)
class RenderedDeployment:
    """The files of a deployment and, for checking, the objects behind them."""

    files: list[RenderedFile]
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    compose: tuple[str, dict[str, Any]] | None = None


def application_path(dep: Deployment) -> str:
    assert dep.cluster is not None
    return f"{ARGOCD_DIR}/applications/{dep.cluster.name}/{application_name(dep)}.yaml"


def render_deployment_full(dep: Deployment, ctx: RenderContext) -> RenderedDeployment:
    files = [RenderedFile(f"{dep.dir}/deployment.json", dump_json(dep.as_dict()))]
    if dep.cluster is None:
        files.append(RenderedFile(f"{dep.dir}/odoo.conf", render_odoo_conf(dep)))
        files.append(RenderedFile(f"{dep.dir}/odoo-cron.conf", render_odoo_conf(dep, cron=True)))
        compose, vm_files = render_vm_files(dep, ctx)
        files += [RenderedFile(f"{dep.dir}/{rel}", text) for rel, text in vm_files.items()]
        return RenderedDeployment(files, [], (f"{dep.dir}/compose.yaml", compose))
    objects = render_kubernetes_objects(dep, ctx)
    obj_files = [object_file(dep, o) for o in objects]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f.path.rsplit("/", 1)[1] for f in obj_files],
    }
    files.extend(obj_files)
    files.append(RenderedFile(f"{dep.dir}/kustomization.yaml", dump_yaml(kustomization)))
    app = render_application(dep, ctx)
    files.append(RenderedFile(application_path(dep), dump_yaml(app)))
    pairs = [(f.path, o) for f, o in zip(obj_files, objects, strict=True)]
    pairs.append((application_path(dep), app))
    return RenderedDeployment(files, pairs)


def render_deployment(dep: Deployment, ctx: RenderContext) -> list[RenderedFile]:
    return render_deployment_full(dep, ctx).files


def render_fleet_objects(
    deps: Sequence[Deployment], ctx: RenderContext
) -> list[tuple[str, dict[str, Any]]]:
    """Fleet-wide objects (the Argo CD AppProjects), with their paths."""
    return [
        (f"{ARGOCD_DIR}/projects/appproject-{p['metadata']['name']}.yaml", p)
        for p in render_projects(deps, ctx)
    ]


def render_fleet_files(deps: Sequence[Deployment], ctx: RenderContext) -> list[RenderedFile]:
    return [RenderedFile(path, dump_yaml(obj)) for path, obj in render_fleet_objects(deps, ctx)]

"""All files of one deployment, in apply order, plus the fleet-wide Argo CD projects.

Apply order (and Argo CD sync waves): namespace, quota, identities, secrets, config and
network policy → data services (filestore, PostgreSQL, Redis) → database initialisation
(a Sync-hook Job per database) → Odoo → monitoring → ingress. A pinned release that
changes the image or updates modules adds its upgrade (``upgrade.yaml``: PreSync hooks,
which Argo CD runs before all of these; render.kubernetes.upgrade).

A Kubernetes deployment directory holds one multi-document YAML file per component
(``namespace.yaml``, ``secrets.yaml``, … ``ingress.yaml``, see ``render_components``),
listed in apply order by its ``kustomization.yaml`` — the Kubernetes configuration
best practice of grouping related objects into one file, and far fewer files to write
than one per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantops.render.argocd import (
    application_name,
    generator_glob,
    render_application,
    render_applicationset,
    render_projects,
)
from plantops.render.argocd.applicationset import ARGOCD_DIR
from plantops.render.compose import render_vm_files
from plantops.render.core import RenderedFile, component_file, dump_json, dump_yaml
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
    render_db_init_jobs,
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
from plantops.render.kubernetes.upgrade import render_upgrade_hooks
from plantops.render.odoo_conf import render_odoo_conf

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext


def render_components(dep: Deployment, ctx: RenderContext) -> dict[str, list[dict[str, Any]]]:
    """Kubernetes objects of a deployment by component (the file stem they are written
    to), components and objects in apply order. Components without objects are left out.
    """
    components: dict[str, list[dict[str, Any]]] = {
        "namespace": [
            render_namespace(dep),
            render_resource_quota(dep),
            render_limit_range(dep),
            *render_service_accounts(dep),
        ],
        "secrets": render_external_secrets(dep, ctx),
        "config": [render_odoo_configmap(dep)],
        "network-policies": render_network_policies(dep, ctx),
        "filestore": render_filestore(dep, ctx),
        "postgresql": render_cloudnativepg(dep, ctx),
        "redis": render_redis(dep, ctx),
        "upgrade": render_upgrade_hooks(dep, ctx),
        "db-init": render_db_init_jobs(dep, ctx),
        "odoo": [
            render_odoo_service(dep),
            render_odoo_web(dep, ctx),
            render_odoo_cron(dep, ctx),
            *render_odoo_pdb(dep),
            *render_odoo_hpa(dep),
        ],
        "monitoring": [*render_monitors(dep, ctx), render_prometheus_rule(dep)],
        "ingress": [
            *render_middlewares(dep, ctx),
            render_tls_option(dep),
            *render_certificates(dep, ctx),
            *render_ingress_routes(dep, ctx),
        ],
    }
    return {name: objects for name, objects in components.items() if objects}


def render_kubernetes_objects(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """Kubernetes objects of a deployment, in apply order."""
    return [obj for objects in render_components(dep, ctx).values() for obj in objects]


@dataclass(frozen=True)
class RenderedDeployment:
    """The files of a deployment and, for checking, the objects behind them.

    ``objects`` pairs every object with the file it is written to; a component file
    holds several YAML documents, and ``document_indexes[i]`` is the position of
    ``objects[i]`` among them (from 0).
    """

    files: list[RenderedFile]
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    compose: tuple[str, dict[str, Any]] | None = None
    document_indexes: list[int] = field(default_factory=list)

    def documents(self) -> list[tuple[str, int, dict[str, Any]]]:
        """``(file, document index, object)`` for every object."""
        indexes = self.document_indexes or [0] * len(self.objects)
        return [(path, i, obj) for (path, obj), i in zip(self.objects, indexes, strict=True)]


def application_path(dep: Deployment) -> str:
    """The deployment's Application, as the generator file its cluster's ApplicationSet
    reads (JSON: what the Git files generator parses, and no manifest to apply by hand)."""
    assert dep.cluster is not None
    return generator_glob(dep.cluster.name).replace("*", application_name(dep))


def render_deployment_full(dep: Deployment, ctx: RenderContext) -> RenderedDeployment:
    files = [RenderedFile(f"{dep.dir}/deployment.json", dump_json(dep.as_dict()))]
    if dep.cluster is None:
        files.append(RenderedFile(f"{dep.dir}/odoo.conf", render_odoo_conf(dep)))
        files.append(RenderedFile(f"{dep.dir}/odoo-cron.conf", render_odoo_conf(dep, cron=True)))
        compose, vm_files = render_vm_files(dep, ctx)
        files += [RenderedFile(f"{dep.dir}/{rel}", text) for rel, text in vm_files.items()]
        return RenderedDeployment(files, [], (f"{dep.dir}/compose.yaml", compose))
    pairs: list[tuple[str, dict[str, Any]]] = []
    indexes: list[int] = []
    resources: list[str] = []
    for component, objects in render_components(dep, ctx).items():
        file = component_file(dep, component, objects)
        files.append(file)
        resources.append(file.path.rsplit("/", 1)[1])
        pairs += [(file.path, obj) for obj in objects]
        indexes += range(len(objects))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    files.append(RenderedFile(f"{dep.dir}/kustomization.yaml", dump_yaml(kustomization)))
    app = render_application(dep, ctx)
    files.append(RenderedFile(application_path(dep), dump_json(app)))
    pairs.append((application_path(dep), app))
    indexes.append(0)
    return RenderedDeployment(files, pairs, document_indexes=indexes)


def render_deployment(dep: Deployment, ctx: RenderContext) -> list[RenderedFile]:
    return render_deployment_full(dep, ctx).files


def render_fleet_objects(
    deps: Sequence[Deployment], ctx: RenderContext
) -> list[tuple[str, dict[str, Any]]]:
    """Fleet-wide objects with their paths: the Argo CD AppProjects and one
    ApplicationSet per cluster that runs a Kubernetes deployment."""
    clusters = sorted({d.cluster.name for d in deps if d.cluster is not None})
    return [
        *(
            (f"{ARGOCD_DIR}/applicationsets/{c}.yaml", render_applicationset(c, ctx))
            for c in clusters
        ),
        *(
            (f"{ARGOCD_DIR}/projects/appproject-{p['metadata']['name']}.yaml", p)
            for p in render_projects(deps, ctx)
        ),
    ]


def render_fleet_files(deps: Sequence[Deployment], ctx: RenderContext) -> list[RenderedFile]:
    return [RenderedFile(path, dump_yaml(obj)) for path, obj in render_fleet_objects(deps, ctx)]

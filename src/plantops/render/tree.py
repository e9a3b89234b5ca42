"""All files of one deployment, in apply order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import RenderedFile, dump_json, dump_yaml, object_file
from plantops.render.kubernetes.config import render_odoo_configmap
from plantops.render.kubernetes.namespace import (
    render_limit_range,
    render_namespace,
    render_resource_quota,
)
from plantops.render.odoo_conf import render_odoo_conf

if TYPE_CHECKING:
    from plantops.plan import Deployment


def render_kubernetes_objects(dep: Deployment) -> list[dict[str, Any]]:
    """Kubernetes objects of a deployment, in apply order."""
    return [
        render_namespace(dep),
        render_resource_quota(dep),
        render_limit_range(dep),
        render_odoo_configmap(dep),
    ]


def render_deployment(dep: Deployment) -> list[RenderedFile]:
    files = [RenderedFile(f"{dep.dir}/deployment.json", dump_json(dep.as_dict()))]
    if dep.cluster is None:
        files.append(RenderedFile(f"{dep.dir}/odoo.conf", render_odoo_conf(dep)))
        files.append(RenderedFile(f"{dep.dir}/odoo-cron.conf", render_odoo_conf(dep, cron=True)))
        return files
    objects = render_kubernetes_objects(dep)
    obj_files = [object_file(dep, o) for o in objects]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f.path.rsplit("/", 1)[1] for f in obj_files],
    }
    files.extend(obj_files)
    files.append(RenderedFile(f"{dep.dir}/kustomization.yaml", dump_yaml(kustomization)))
    return files

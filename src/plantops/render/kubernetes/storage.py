"""Storage choices (classes, access modes) and the filestore PersistentVolumeClaim.

Odoo's filestore is shared by the web and cron pods. With one web replica a
ReadWriteOnce volume suffices: the cron pod is scheduled next to the web pod. With
more web replicas the volume must be ReadWriteMany, or the fleet puts the filestore
in object storage instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import data_wave, name
from plantops.sizing.cost import filestore_storage_class, postgres_storage_class

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext


def filestore_claim(dep: Deployment) -> str:
    return name(dep, "filestore")


def filestore_on_pvc(ctx: RenderContext) -> bool:
    return ctx.platform.storage.filestore == "pvc"


def filestore_needs_rwx(dep: Deployment) -> bool:
    return dep.filestore_needs_rwx


def postgres_class(dep: Deployment, ctx: RenderContext) -> str:
    assert dep.cluster is not None
    return postgres_storage_class(dep.cluster, ctx.platform.storage)


def filestore_class(dep: Deployment, ctx: RenderContext) -> str:
    """The class of the filestore volume (check.preflight has made sure it exists).

    The choice lives in plantops.sizing.cost, which prices the same volume."""
    assert dep.cluster is not None
    return filestore_storage_class(dep.cluster, ctx.platform.storage, dep.sizing.max_web_replicas)


def render_filestore(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    if not filestore_on_pvc(ctx):
        return []
    mode = "ReadWriteMany" if filestore_needs_rwx(dep) else "ReadWriteOnce"
    spec = {
        "accessModes": [mode],
        "resources": {"requests": {"storage": f"{dep.sizing.filestore_gib}Gi"}},
        "storageClassName": filestore_class(dep, ctx),
    }
    return [
        k8s_object(
            dep,
            "v1",
            "PersistentVolumeClaim",
            filestore_claim(dep),
            "filestore",
            annotations=data_wave(dep),
            body={"spec": spec},
        )
    ]

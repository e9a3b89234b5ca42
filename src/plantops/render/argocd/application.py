"""One Argo CD Application per deployment, pointing at its directory of the tree.

The Application is not applied from the tree: it is written as the generator file the
cluster's ApplicationSet reads (see ``applicationset.py``), which creates, updates and
deletes it. So it carries no ``resources-finalizer``: deleting it never cascades.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import standard_labels
from plantops.render.kubernetes.odoo import has_hpa, web_name

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

# Relative to the source path: this deployment's directory is all its manifests come
# from (argo-cd util/app/path/path.go GetSourceRefreshPaths joins a relative entry to
# spec.source.path; controller/state.go appStateManager.evaluateRevisionChanges asks the repo
# server, UpdateRevisionForPaths, whether a new commit touched it and keeps the cached
# manifests when not). Without it every commit to the tree regenerates every Application.
MANIFEST_GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"


def target_revision(dep: Deployment, ctx: RenderContext) -> str:
    """The revision of the tree this deployment runs: its environment's pin, else the
    fleet's ``platform.gitops_revision``."""
    return dep.environment.target_revision or ctx.platform.gitops_revision


def application_name(dep: Deployment) -> str:
    cluster = dep.cluster.name if dep.cluster else "vm"
    return f"{cluster}-{dep.namespace}"


def project_name(dep: Deployment) -> str:
    """One AppProject per deployment unit: a plant, or a tenant group sharing one Odoo.

    A project per tier listed every destination and sync window of the tier's plants and
    outgrew the apply limits (~0.7 MB at 700 plants); a unit's project is bounded by the
    unit (its environments and its plants' windows), whatever the size of the fleet.
    """
    if dep.pattern == "shared-multitenant":
        return f"group-{dep.unit.removeprefix('shared-')}"
    return f"plant-{dep.unit}"


def _automated(dep: Deployment) -> dict[str, Any]:
    """Automated sync, except for the production of a change-controlled plant.

    Without ``automated`` Argo CD never syncs on its own: argo-cd controller/appcontroller.go
    ``ApplicationController.autoSync`` returns first thing when ``SyncPolicy.Automated`` is
    nil (since 3.1 through ``SyncPolicy.IsAutomatedSyncEnabled``). The gated release syncs
    it, and that sync still gets ``retry`` and ``syncOptions`` (server/application/
    application.go ``Server.Sync`` reads both from the policy). Not
    ``automated: {enabled: false}``: controllers before 3.1 only test ``Automated == nil``
    and would sync automatically anyway.
    """
    if dep.production and any(c.production_sync == "manual" for c in dep.classifications):
        return {}
    # Prune stays on: in production the data services carry Prune=false,Delete=false.
    return {"automated": {"prune": True, "selfHeal": True}}


def render_application(dep: Deployment, ctx: RenderContext) -> dict[str, Any]:
    assert dep.cluster is not None
    spec: dict[str, Any] = {
        "destination": {"name": dep.cluster.name, "namespace": dep.namespace},
        "project": project_name(dep),
        "revisionHistoryLimit": 10,
        "source": {
            "path": dep.dir,
            "repoURL": ctx.gitops_repo,
            "targetRevision": target_revision(dep, ctx),
        },
        "syncPolicy": {
            **_automated(dep),
            "retry": {
                "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"},
                "limit": 5,
            },
            "syncOptions": [
                "CreateNamespace=false",
                "PruneLast=true",
                "RespectIgnoreDifferences=true",
                "ServerSideApply=true",
            ],
        },
    }
    if has_hpa(dep):
        spec["ignoreDifferences"] = [
            {
                "group": "apps",
                "jqPathExpressions": [".spec.replicas"],
                "kind": "Deployment",
                "name": web_name(dep),
                "namespace": dep.namespace,
            }
        ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "annotations": {MANIFEST_GENERATE_PATHS: "."},
            "labels": standard_labels(dep, "gitops"),
            "name": application_name(dep),
            "namespace": ctx.platform.argocd_namespace,
        },
        "spec": dict(sorted(spec.items())),
    }

"""One Argo CD Application per deployment, pointing at its directory of the tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import standard_labels
from plantops.render.kubernetes.odoo import has_hpa, web_name

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

DEDICATED = ("dedicated-cluster", "dedicated-environment")


def application_name(dep: Deployment) -> str:
    cluster = dep.cluster.name if dep.cluster else "vm"
    return f"{cluster}-{dep.namespace}"


def project_name(dep: Deployment) -> str:
    """Dedicated-cluster patterns get a project per plant; the others one per tier."""
    if dep.pattern in DEDICATED:
        return f"plant-{dep.unit}"
    return f"tier-{dep.tier}"


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
            "targetRevision": ctx.platform.gitops_revision,
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
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            "labels": standard_labels(dep, "gitops"),
            "name": application_name(dep),
            "namespace": ctx.platform.argocd_namespace,
        },
        "spec": dict(sorted(spec.items())),
    }

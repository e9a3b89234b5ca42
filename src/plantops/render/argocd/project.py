"""AppProjects: one per deployment unit (a plant, or a tenant group sharing one Odoo).

A project lists exactly the destinations of its deployments, allows Namespace as
the only cluster-scoped kind, forbids Argo CD from managing Secrets (they come from
External Secrets) and carries the sync windows of its production applications. Its
size is bounded by its unit (a few environments, the windows of its plants), never by
the fleet: every object must fit the 262,144 bytes of kubectl's last-applied annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plantops.render.argocd.application import application_name, project_name
from plantops.render.argocd.windows import sync_windows
from plantops.render.core import MANAGED_BY

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext


def _labels(deps: Sequence[Deployment]) -> dict[str, str]:
    first = deps[0]
    labels = {
        "app.kubernetes.io/component": "gitops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "odoo",
        "app.kubernetes.io/part-of": "plantops",
        "plantops.io/tier": first.tier,
    }
    labels["plantops.io/pattern"] = first.pattern
    if first.pattern == "shared-multitenant":
        labels["plantops.io/tenant-group"] = first.unit.removeprefix("shared-")
    else:
        labels["plantops.io/plant"] = first.unit
    return labels


def render_projects(deps: Sequence[Deployment], ctx: RenderContext) -> list[dict[str, Any]]:
    groups: dict[str, list[Deployment]] = {}
    for dep in deps:
        if dep.cluster is not None:
            groups.setdefault(project_name(dep), []).append(dep)
    out = []
    for proj, members in sorted(groups.items()):
        members.sort(key=lambda d: d.id)
        windows = [w for d in members for w in sync_windows(d, application_name(d))]
        spec: dict[str, Any] = {
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "description": (f"plantops {proj}: {len(members)} deployment(s)"),
            "destinations": [
                {"name": d.cluster.name, "namespace": d.namespace}
                for d in members
                if d.cluster is not None
            ],
            "namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}],
            "orphanedResources": {"warn": True},
            "sourceRepos": [ctx.gitops_repo],
        }
        if windows:
            spec["syncWindows"] = windows
        out.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {
                    "labels": _labels(members),
                    "name": proj,
                    "namespace": ctx.platform.argocd_namespace,
                },
                "spec": spec,
            }
        )
    return out
